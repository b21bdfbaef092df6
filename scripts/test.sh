#!/usr/bin/env bash
# `make test`: set up what is missing (engine, project, images), then lint, unit and
# integration tests against the real engine, hub and labs. `--bench` runs the benchmarks.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/env.sh"

"$ROOT/scripts/engine.sh"
# Both JupyterHub releases: the upgrade test makes its database with 5.5 (.venv-compat), the
# harness runs .venv's hubctl (whichever HUB_JUPYTERHUB the suite's hubs run).
HUB_JUPYTERHUB=6 "$ROOT/scripts/install.sh"
HUB_JUPYTERHUB=5.5 "$ROOT/scripts/install.sh"
# Both labs: the suite spawns `minimal`; the notebook tests and users get `ds`.
LAB_IMAGES="minimal ds" "$ROOT/scripts/images.sh"
# The store's unit tests also run on PostgreSQL: a local test server unless one is given.
if [ "${JHDS_SKIP_POSTGRES:-}" != 1 ]; then
  JHDS_TEST_POSTGRES_URL="$("$ROOT/scripts/postgres.sh")" # not `export X=$(...)`: that hides a failure
  export JHDS_TEST_POSTGRES_URL
fi
"$ROOT/scripts/browser.sh"
cd "$ROOT"

pause_reconciler_of_make_up

if [ "${1:-}" = "--bench" ]; then
  for bench in spawn labimage reconcile selfservice privileged broadcast schedule history hubcontainer idlecull grouppolicy backup swarm dockerproxy usage roster rename; do
    say "benchmark: $bench"
    python "benchmarks/$bench.py"
  done
  exit
fi

say "lint (ruff, import layers)"
ruff check . && ruff format --check . >/dev/null && lint-imports | tail -n 3
say "unit tests"
pytest tests/unit -q -n 2 # each PostgreSQL case has a schema of its own
# Two lanes (pytest-xdist workers, JHDS_TEST_LANES; whole modules: conftest's scheduler): most
# of an integration test is waiting for a spawn, a timer or a cron minute, so two share the 2
# cores well. Each lane has its own
# session hub and platforms (labels end in the worker id); tests/integration/conftest.py says
# which modules share a lane, and which tests run alone afterwards (what restarts the engine,
# what tests the engine-wide watch).
say "integration tests (real engine, hub, labs) in ${JHDS_TEST_LANES:-2} lanes"
pytest tests/integration -q -n "${JHDS_TEST_LANES:-2}" -m "not alone" \
  --durations=15 "$@" # the 15 slowest: the README's "Slowest tests"
say "integration tests that act on the whole engine (alone)"
status=0
pytest tests/integration -q -m alone "$@" || status=$?
[ "$status" = 0 ] || [ "$status" = 5 ] # 5: a selection of the caller's ran none of these
