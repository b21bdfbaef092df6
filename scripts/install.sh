#!/usr/bin/env bash
# Install the project into .venv (re-run only when pyproject.toml changes) and make sure
# configurable-http-proxy, which JupyterHub starts, is on PATH. With HUB_JUPYTERHUB=5.5, into
# .venv-compat with JupyterHub 5.5.x (the `jupyterhub55` extra; lib.sh chooses).
source "$(dirname "$0")/lib.sh"

stamp="$VENV/.installed-$( (hash_inputs "$ROOT/pyproject.toml"; echo "$HUB_EXTRAS $HUB_REQUIREMENT") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      [ "$(id -u)" = 0 ] || fail "python3 -m venv failed: install your distribution's python3-venv package"
      say "installing python3-venv (apt)"
      with_progress "$STATE_DIR/apt-venv.log" bash -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv'
      python3 -m venv "$VENV"
    fi
  fi
  say "installing the project into ${VENV#"$ROOT"/}"
  with_progress "$STATE_DIR/pip.log" "$VENV/bin/pip" install --disable-pip-version-check -e "$ROOT[$HUB_EXTRAS]" "$HUB_REQUIREMENT"
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi

if ! command -v configurable-http-proxy >/dev/null 2>&1 && [ ! -x "$ROOT/.venv/node/bin/configurable-http-proxy" ]; then
  command -v npm >/dev/null 2>&1 || fail "npm is needed to install configurable-http-proxy (apt-get install npm)"
  say "installing configurable-http-proxy (npm) into $ROOT/.venv/node"
  with_progress "$STATE_DIR/npm.log" npm install --global --prefix "$ROOT/.venv/node" configurable-http-proxy
fi
