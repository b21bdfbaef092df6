#!/usr/bin/env bash
# `make test-compat`: the platform on JupyterHub 5.5.x (HUB_JUPYTERHUB=5.5, in .venv-compat):
# the unit tests, then a short integration subset: sign-up, approval, login, lockout and
# password changes; spawn; a broadcast; a restart; a volume reset; a privileged revocation.
# `make test` runs everything on the default, JupyterHub 6.
export HUB_JUPYTERHUB=5.5
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/env.sh"

"$ROOT/scripts/engine.sh"
"$ROOT/scripts/install.sh"
HUB_JUPYTERHUB=6 "$ROOT/scripts/install.sh" # hubctl of the tests' harness (.venv/bin/hubctl)
LAB_IMAGES="minimal" "$ROOT/scripts/images.sh"
if [ "${JHDS_SKIP_POSTGRES:-}" != 1 ]; then
  JHDS_TEST_POSTGRES_URL="$("$ROOT/scripts/postgres.sh")"
  export JHDS_TEST_POSTGRES_URL
fi
cd "$ROOT"

pause_reconciler_of_make_up

say "JupyterHub $(python -c 'import jupyterhub; print(jupyterhub.__version__)') from ${VENV#"$ROOT"/}: unit tests"
pytest tests/unit -q -n 2
say "integration subset on JupyterHub 5.5"
pytest -q --durations=5 \
  tests/integration/test_auth.py \
  tests/integration/test_spawn.py \
  "tests/integration/test_broadcast.py::test_broadcast_to_everyone_reaches_each_running_lab_once" \
  "tests/integration/test_selfservice.py::test_reset_cache_removes_only_that_volume_of_that_user" \
  "tests/integration/test_selfservice.py::test_restart_keeps_data_and_the_hub_coherent" \
  "tests/integration/test_privileged_drift.py::test_revocation_restarts_the_server_without_the_socket" \
  "$@"
