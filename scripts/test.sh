#!/usr/bin/env bash
# `make test`: set up what is missing (engine, project, images), then lint, unit and
# integration tests against the real engine, hub and labs. `--bench` runs the benchmarks.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/env.sh"

"$ROOT/scripts/engine.sh"
"$ROOT/scripts/install.sh"
"$ROOT/scripts/images.sh"
"$ROOT/scripts/browser.sh"
cd "$ROOT"

if [ "${1:-}" = "--bench" ]; then
  python benchmarks/spawn.py
  exit
fi

say "lint (ruff)"
ruff check . && ruff format --check . >/dev/null
say "unit tests"
pytest tests/unit -q
say "integration tests (real engine, hub, labs)"
pytest tests/integration -q --durations=8 "$@"
