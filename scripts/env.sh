# Environment of the hub and the tests (sourced after lib.sh).
export PATH="$ROOT/.venv/bin:$ROOT/.venv/node/bin:$PATH"
export JUPYTERHUB_STATE_DIR="$STATE_DIR"
