# Shared helpers for the provisioning scripts (sourced, not run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${JUPYTERHUB_STATE_DIR:-$ROOT/.state}"
mkdir -p "$STATE_DIR"

say()  { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

# sha256 of the given files' contents and names, for cache keys.
# Paths relative to the checkout, so two clones share caches.
hash_inputs() { (for f in "$@"; do echo "${f#"$ROOT"/}"; cat "$f"; done) | sha256sum | cut -c1-16; }

# Run a long command, printing a dot every 5 s so the user sees progress;
# its full output goes to a log file that is shown if it fails.
with_progress() {
  local log="$1"; shift
  "$@" >"$log" 2>&1 &
  local pid=$! start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5; printf '   ... %ss\n' "$((SECONDS - start))"
  done
  if ! wait "$pid"; then
    tail -n 30 "$log" >&2
    fail "step failed; full log: $log"
  fi
}
