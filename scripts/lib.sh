# Shared helpers for the provisioning scripts (sourced, not run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${JUPYTERHUB_STATE_DIR:-$ROOT/.state}"
mkdir -p "$STATE_DIR"

# The JupyterHub release the platform runs (HUB_JUPYTERHUB, docs/jupyterhub6.md): 6 from
# .venv, 5.5 from a virtual environment of its own, so switching never reinstalls either.
case "${HUB_JUPYTERHUB:-6}" in
  # HUB_REQUIREMENT moves a .venv made before 6 was the default onto 6 (pip keeps what satisfies).
  6) VENV="$ROOT/.venv"; HUB_EXTRAS="test"; HUB_REQUIREMENT="jupyterhub>=6.1,<7" ;;
  5.5) VENV="$ROOT/.venv-compat"; HUB_EXTRAS="test,jupyterhub55"; HUB_REQUIREMENT="jupyterhub>=5.5.1,<5.6" ;;
  *) printf 'error: HUB_JUPYTERHUB: 6 or 5.5 (got %s)\n' "$HUB_JUPYTERHUB" >&2; exit 2 ;;
esac

say()  { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The reconciler service of this clone's hub (`make up`), if it runs: the hub's child.
reconciler_pid() {
  local hub
  hub="$(cat "$STATE_DIR/jupyterhub.pid" 2>/dev/null)" || return 0
  pgrep -P "$hub" -f 'reconciler[.]service' || true
}

# `make up` then `make test` (the README's order): the reconciler of that hub guards the whole
# engine and would stop the test platforms' servers and hub containers that have the engine
# socket (they are not its own; docs/security.md). It pauses (SIGSTOP) while the tests run and
# goes on when the calling script exits, whatever the outcome; the hub and its servers keep running.
pause_reconciler_of_make_up() {
  PAUSED_RECONCILER="$(reconciler_pid)"
  [ -n "$PAUSED_RECONCILER" ] || return 0
  say "pausing the reconciler of make up's hub (pid $PAUSED_RECONCILER) while the tests run"
  kill -STOP "$PAUSED_RECONCILER"
  trap 'kill -CONT "$PAUSED_RECONCILER" 2>/dev/null || true' EXIT
}

# sha256 of the given files' contents and names, for cache keys.
# Paths relative to the checkout, so two clones share caches.
hash_inputs() { (for f in "$@"; do echo "${f#"$ROOT"/}"; cat "$f"; done) | sha256sum | cut -c1-16; }

# Run a long command, printing a dot every 5 s so the user sees progress;
# its full output goes to a log file that is shown if it fails.
with_progress() {
  local log="$1"; shift
  "$@" >"$log" 2>&1 &
  local pid=$! start=$SECONDS next=5
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.2 # a short step returns at once
    [ $((SECONDS - start)) -lt "$next" ] || { printf '   ... %ss\n' "$((SECONDS - start))"; next=$((next + 5)); }
  done
  if ! wait "$pid"; then
    tail -n 30 "$log" >&2
    fail "step failed; full log: $log"
  fi
}

# --- images built without a registry (images.sh, hub-image.sh) ---
KEY_LABEL="io.jupyterhub-ds.input-hash" # the hash of an image's inputs, its cache key

image_key() { docker image inspect "$1" --format "{{index .Config.Labels \"$KEY_LABEL\"}}" 2>/dev/null || true; }

# A Debian bookworm imported from debootstrap with these packages, and without the folders
# named in STRIP (documentation, translations: nobody reads them in a lab, about 70 MB);
# rebuilt when any of that changes.
debootstrap_image() {
  local tag="$1" include="$2" strip="${3:-}"
  local args="--variant=minbase --include=$include bookworm"
  local key rootfs
  key=$( (echo "$args"; [ -z "$strip" ] || echo "strip $strip") | sha256sum | cut -c1-16)
  [ "$(image_key "$tag")" = "$key" ] && return
  [ "$(id -u)" = 0 ] || fail "building the base image $tag needs root (debootstrap); or set LAB_BASE_IMAGE / HUB_BASE_IMAGE to an image your engine can pull"
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap (apt)"
    with_progress "$STATE_DIR/apt-debootstrap.log" bash -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap'
  fi
  rootfs="$STATE_DIR/rootfs-${tag//[\/:]/-}"
  rm -rf "$rootfs"
  say "building base image $tag with debootstrap (about a minute)"
  # shellcheck disable=SC2086
  with_progress "$STATE_DIR/debootstrap-${tag//[\/:]/-}.log" debootstrap $args "$rootfs"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  local dir
  for dir in $strip; do find "$rootfs$dir" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +; done
  tar -C "$rootfs" -c . | docker import --change "LABEL $KEY_LABEL=$key" - "$tag" >/dev/null
  rm -rf "$rootfs"
}
