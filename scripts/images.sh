#!/usr/bin/env bash
# Build the images the platform needs without any image registry (DESIGN §6), reusing
# what is cached: a debootstrap base image, the lab's wheels, the lab image itself.
# Each cache is keyed on its inputs, stored as an image label or a folder name.
source "$(dirname "$0")/lib.sh"

# Always this name; DOCKER_NOTEBOOK_IMAGE may point the hub at another image.
LAB_IMAGE="jupyterhub-ds/lab:latest"
BASE_TAG="jupyterhub-ds/base:bookworm"
KEY_LABEL="io.jupyterhub-ds.input-hash"
DEBOOTSTRAP_ARGS="--variant=minbase --include=python3,python3-venv,ca-certificates bookworm"

image_key() { docker image inspect "$1" --format "{{index .Config.Labels \"$KEY_LABEL\"}}" 2>/dev/null || true; }

# 1. Base image: an ordinary one when LAB_BASE_IMAGE names it (docker build pulls it),
#    else a Debian bookworm imported from debootstrap.
if [ -n "${LAB_BASE_IMAGE:-}" ]; then
  BASE_IMAGE="$LAB_BASE_IMAGE"
else
  BASE_IMAGE="$BASE_TAG"
  base_key=$(echo "$DEBOOTSTRAP_ARGS" | sha256sum | cut -c1-16)
  if [ "$(image_key "$BASE_IMAGE")" != "$base_key" ]; then
    [ "$(id -u)" = 0 ] || fail "building the base image needs root (debootstrap); or set LAB_BASE_IMAGE to an image your engine can pull"
    if ! command -v debootstrap >/dev/null 2>&1; then
      say "installing debootstrap (apt)"
      with_progress "$STATE_DIR/apt-debootstrap.log" bash -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap'
    fi
    rootfs="$STATE_DIR/rootfs"
    rm -rf "$rootfs"
    say "building base image $BASE_IMAGE with debootstrap (about a minute)"
    # shellcheck disable=SC2086
    with_progress "$STATE_DIR/debootstrap.log" debootstrap $DEBOOTSTRAP_ARGS "$rootfs"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change "LABEL $KEY_LABEL=$base_key" - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
  fi
fi

# 2. The lab image, rebuilt only when its inputs (its folder, the base image) changed.
ctx="$STATE_DIR/build/lab"
lab_files=$(find "$ROOT/docker/lab" -maxdepth 1 -type f | sort)
# shellcheck disable=SC2086
lab_key=$( (hash_inputs $lab_files; docker image inspect "$BASE_IMAGE" --format '{{.Id}}' 2>/dev/null || echo "$BASE_IMAGE") | sha256sum | cut -c1-16)
if [ "$(image_key "$LAB_IMAGE")" != "$lab_key" ]; then
  # Wheels for the lab's Python (bookworm: 3.11), downloaded on the host, which can
  # reach PyPI; a container cannot.
  req="$ROOT/docker/lab/requirements.txt"
  wheels="$STATE_DIR/wheels-$(hash_inputs "$req")"
  if [ ! -f "$wheels/.complete" ]; then
    say "downloading the lab's wheels into $wheels"
    rm -rf "$wheels"; mkdir -p "$wheels"
    with_progress "$STATE_DIR/wheels.log" python3 -m pip download --quiet --only-binary=:all: \
      --python-version 3.11.2 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux_2_28_x86_64 --platform any -d "$wheels" -r "$req"
    touch "$wheels/.complete"
    # Older downloads (other requirements) are not needed any more.
    find "$STATE_DIR" -maxdepth 1 -name 'wheels-*' ! -path "$wheels" -exec rm -rf {} +
  fi
  say "building lab image $LAB_IMAGE from $BASE_IMAGE"
  old_id=$(docker image inspect "$LAB_IMAGE" --format '{{.Id}}' 2>/dev/null || true)
  rm -rf "$ctx"; mkdir -p "$ctx/wheels"
  # shellcheck disable=SC2086
  cp $lab_files "$ctx"/
  cp -l "$wheels"/*.whl "$ctx/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$ctx/wheels/"
  network=(--network none)
  [ -n "${LAB_BASE_IMAGE:-}" ] && network=()
  with_progress "$STATE_DIR/build-lab.log" docker build "${network[@]}" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --label "$KEY_LABEL=$lab_key" -t "$LAB_IMAGE" "$ctx"
  rm -rf "$ctx"
  # The replaced image, unless a running container still uses it.
  [ -n "$old_id" ] && docker rmi "$old_id" >/dev/null 2>&1 || true
fi
say "images ready: $LAB_IMAGE"
