#!/usr/bin/env bash
# Build the images the platform needs without any image registry (DESIGN §6), reusing
# what is cached: debootstrap base images, the labs' wheels, the lab images themselves.
# Each cache is keyed on its inputs, stored as an image label or a folder name.
#
# Lab images (docker/lab/, see docs/lab-images.md):
#   jupyterhub-ds/lab:ds       the data-science lab, the users' default (Dockerfile)
#   jupyterhub-ds/lab:minimal  JupyterLab and the notifications extension (Dockerfile.minimal)
# Built: those named in LAB_IMAGES (e.g. "ds minimal"); by default the one that
# DOCKER_NOTEBOOK_IMAGE names, and ds when it names another image (e.g. one built FROM ds).
# Always, too: the backup helper, jupyterhub-ds/base:bookworm (tar, gzip, python3), unless
# BACKUP_HELPER_IMAGE names another image (then that one is yours to provide).
# LAB_REPO changes the repository name and LAB_NO_CACHE=1 builds without the engine's
# cache (benchmarks/labimage.py measures a cold build with both).
# Both labs carry the `docker` CLI and its compose plugin (`limited` Docker access,
# docs/docker-access.md), taken from the host, as no registry is reachable: the CLI from
# Debian's docker.io package (apt's cache, else `apt-get download`), compose from
# scripts/compose.sh's pinned binary; LAB_DOCKER_CLI / LAB_DOCKER_COMPOSE name other files.
source "$(dirname "$0")/lib.sh"

LAB_REPO="${LAB_REPO:-jupyterhub-ds/lab}"
LAB_DIR="$ROOT/docker/lab"
# Keep in step with the defaults of DOCKER_NOTEBOOK_IMAGE and BACKUP_HELPER_IMAGE in
# vocabulary/settings/ (spawner.py, operations.py; tests/unit/test_images_fresh.py checks both).
DEFAULT_IMAGE="jupyterhub-ds/lab:ds"
HELPER_IMAGE="jupyterhub-ds/base:bookworm"
MINIMAL_BASE_PACKAGES="python3,python3-venv,ca-certificates"

# The wheels of one lock file for the lab's Python (bookworm: 3.11), downloaded on the
# host, which can reach PyPI (a container cannot); hash-checked. Prints the folder.
wheels_for() {
  local lock="$1" dir
  dir="$STATE_DIR/wheels-$(hash_inputs "$lock")"
  if [ ! -f "$dir/.complete" ]; then
    say "downloading the wheels of ${lock#"$ROOT"/} into $dir" >&2
    rm -rf "$dir"; mkdir -p "$dir"
    with_progress "$STATE_DIR/wheels.log" python3 -m pip download --quiet --only-binary=:all: --no-deps \
      --require-hashes --python-version 3.11.2 --platform manylinux2014_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any \
      -d "$dir" -r "$lock" >&2
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# The docker CLI of Debian's docker.io (the engine's own release: its API version), only
# /usr/bin/docker out of the package, cached per package file. Prints the binary's path.
docker_cli() {
  if [ -n "${LAB_DOCKER_CLI:-}" ]; then echo "$LAB_DOCKER_CLI"; return; fi
  local deb out
  deb=$(ls -t /var/cache/apt/archives/docker.io_*_amd64.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    command -v apt-get >/dev/null 2>&1 || fail "the labs' docker CLI: no apt here; set LAB_DOCKER_CLI to a docker client binary"
    mkdir -p "$STATE_DIR/debs"
    (cd "$STATE_DIR/debs" && with_progress "$STATE_DIR/apt-download.log" apt-get download docker.io) \
      || fail "could not download Debian's docker.io (apt-get download); set LAB_DOCKER_CLI"
    deb=$(ls -t "$STATE_DIR"/debs/docker.io_*.deb | head -n1)
  fi
  out="$STATE_DIR/tools/docker-cli-$(sha256sum "$deb" | cut -c1-16)"
  if [ ! -x "$out/docker" ]; then
    rm -rf "$out.tmp"; mkdir -p "$out.tmp"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out.tmp" ./usr/bin/docker
    mkdir -p "$out"; mv "$out.tmp/usr/bin/docker" "$out/docker"; rm -rf "$out.tmp"
  fi
  echo "$out/docker"
}

# The compose plugin: scripts/compose.sh's pinned v2 binary (fetched once, hash-checked).
docker_compose() {
  if [ -n "${LAB_DOCKER_COMPOSE:-}" ]; then echo "$LAB_DOCKER_COMPOSE"; return; fi
  # shellcheck source=scripts/compose.sh
  source "$ROOT/scripts/compose.sh" >&2
  is_v2 "$TOOLS/docker-compose" || install_compose >&2
  echo "$TOOLS/docker-compose"
}

# build_lab FLAVOUR DOCKERFILE BASE "SUBDIR=LOCK ..." INPUT...: the image LAB_REPO:FLAVOUR,
# rebuilt only when its inputs (files of docker/lab, the base image, the docker CLI and
# compose binaries in LAB_TOOLS) changed.
build_lab() {
  local flavour="$1" dockerfile="$2" base="$3" wheel_sets="$4"; shift 4
  local image="$LAB_REPO:$flavour" ctx="$STATE_DIR/build/lab-$flavour" key old_id f set
  local inputs=("$dockerfile" "$@")
  key=$( (echo "$image"; hash_inputs "${inputs[@]/#/$LAB_DIR/}"; sha256sum "${LAB_TOOLS[@]}" | cut -c1-64
    docker image inspect "$base" --format '{{.Id}}' 2>/dev/null || echo "$base") | sha256sum | cut -c1-16)
  [ "$(image_key "$image")" = "$key" ] && [ "${LAB_NO_CACHE:-}" != 1 ] && return
  rm -rf "$ctx"; mkdir -p "$ctx/tools"
  for f in "${inputs[@]}"; do mkdir -p "$ctx/$(dirname "$f")"; cp "$LAB_DIR/$f" "$ctx/$f"; done
  cp "${LAB_TOOLS[0]}" "$ctx/tools/docker"; cp "${LAB_TOOLS[1]}" "$ctx/tools/docker-compose"
  # COPY keeps the context's modes, and `make up` runs with umask 077: the lab user must
  # read the image's files (JupyterLab's overrides.json) whoever built it.
  chmod -R a+rX "$ctx"
  for set in $wheel_sets; do
    mkdir -p "$ctx/wheels/${set%%=*}"
    [ -n "${LAB_BASE_IMAGE:-}" ] && continue # with a registry, pip reaches the index
    local wheels
    wheels=$(wheels_for "$LAB_DIR/${set#*=}")
    cp -l "$wheels"/*.whl "$ctx/wheels/${set%%=*}/" 2>/dev/null || cp "$wheels"/*.whl "$ctx/wheels/${set%%=*}/"
  done
  say "building lab image $image from $base"
  old_id=$(docker image inspect "$image" --format '{{.Id}}' 2>/dev/null || true)
  local flags=(--network none)
  [ -n "${LAB_BASE_IMAGE:-}" ] && flags=()
  [ "${LAB_NO_CACHE:-}" = 1 ] && flags+=(--no-cache)
  local log="$STATE_DIR/build-lab-$flavour.log" stage started
  started=$(date +%s)
  with_progress "$log" docker build "${flags[@]}" -f "$ctx/$dockerfile" \
    --build-arg "BASE_IMAGE=$base" --label "$KEY_LABEL=$key" -t "$image" "$ctx"
  rm -rf "$ctx"
  # The replaced image, unless a running container still uses it.
  [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect "$image" --format '{{.Id}}')" ] \
    && { docker rmi "$old_id" >/dev/null 2>&1 || true; }
  # Build stages of older builds (untagged, labelled stage-of): this build's are the cache,
  # and one that another build made meanwhile is left alone.
  for stage in $(docker images -q -f dangling=true -f "label=io.jupyterhub-ds.stage-of=lab-$flavour"); do
    grep -q -- "---> $stage" "$log" && continue
    [ "$(date -d "$(docker image inspect "$stage" --format '{{.Created}}')" +%s)" -lt "$started" ] || continue
    docker rmi "$stage" >/dev/null 2>&1 || true
  done
  return 0
}

# The backup helper: the minimal lab's Debian base (debootstrap), or, with LAB_BASE_IMAGE, that
# image under the helper's name; rebuilt only when that changes.
ensure_helper() {
  local key
  [ "${BACKUP_HELPER_IMAGE:-$HELPER_IMAGE}" = "$HELPER_IMAGE" ] || return 0
  if [ -z "${LAB_BASE_IMAGE:-}" ]; then
    debootstrap_image "$HELPER_IMAGE" "$MINIMAL_BASE_PACKAGES"
    return
  fi
  key=$(echo "FROM $LAB_BASE_IMAGE" | sha256sum | cut -c1-16)
  [ "$(image_key "$HELPER_IMAGE")" = "$key" ] && return
  say "building the backup helper image $HELPER_IMAGE from $LAB_BASE_IMAGE"
  rm -rf "$STATE_DIR/build/helper" && mkdir -p "$STATE_DIR/build/helper"
  echo "FROM $LAB_BASE_IMAGE" >"$STATE_DIR/build/helper/Dockerfile"
  with_progress "$STATE_DIR/build-helper.log" docker build --label "$KEY_LABEL=$key" -t "$HELPER_IMAGE" "$STATE_DIR/build/helper"
  rm -rf "$STATE_DIR/build/helper"
}

if [ -z "${LAB_IMAGES:-}" ]; then
  case "${DOCKER_NOTEBOOK_IMAGE:-$DEFAULT_IMAGE}" in
    jupyterhub-ds/lab:minimal) LAB_IMAGES=minimal ;;
    *) LAB_IMAGES=ds ;;
  esac
fi

LAB_TOOLS=("$(docker_cli)" "$(docker_compose)")
for flavour in $LAB_IMAGES; do
  # Base images: an ordinary one when LAB_BASE_IMAGE names it (docker build pulls it), else
  # Debian bookworm from debootstrap; the ds lab's holds git too (apt cannot run offline).
  base="${LAB_BASE_IMAGE:-}"
  case "$flavour" in
    minimal)
      if [ -z "$base" ]; then base="jupyterhub-ds/base:bookworm"; debootstrap_image "$base" "$MINIMAL_BASE_PACKAGES"; fi
      build_lab minimal Dockerfile.minimal "$base" "minimal=locks/minimal.txt" overrides.json locks/minimal.txt ;;
    ds)
      if [ -z "$base" ]; then base="jupyterhub-ds/base-ds:bookworm"; debootstrap_image "$base" python3,python3-venv,ca-certificates,git \
        "/usr/share/doc /usr/share/man /usr/share/locale"; fi
      build_lab ds Dockerfile "$base" "stack=locks/ds-stack.txt lab=locks/ds-lab.txt" \
        overrides.json jupyter_server_config.json kernels/python3-ds/kernel.json locks/ds-stack.txt locks/ds-lab.txt ;;
    *) fail "unknown lab image '$flavour' in LAB_IMAGES (ds, minimal)" ;;
  esac
done
ensure_helper
# Wheels of older lock files are not needed any more.
keep=$(for lock in "$LAB_DIR"/locks/*.txt; do echo "wheels-$(hash_inputs "$lock")"; done)
for dir in "$STATE_DIR"/wheels-*; do
  [ -d "$dir" ] && ! grep -qx "$(basename "$dir")" <<<"$keep" && rm -rf "$dir"
done
say "images ready: $(for f in $LAB_IMAGES; do printf '%s ' "$LAB_REPO:$f"; done)${BACKUP_HELPER_IMAGE:-$HELPER_IMAGE} (backups)"
[ "${1:-}" != --hub ] || "$ROOT/scripts/hub-image.sh"  # make images, make deploy: the hub image too (not make up)
