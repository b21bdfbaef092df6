# Environment of the hub and the tests (sourced after lib.sh).
# configurable-http-proxy is in .venv/node whichever JupyterHub runs (lib.sh: VENV).
export PATH="$VENV/bin:$ROOT/.venv/node/bin:$PATH"
export JUPYTERHUB_STATE_DIR="$STATE_DIR"
