#!/usr/bin/env bash
# Build the hub image (docker/hub/Dockerfile) the way the lab image is built (DESIGN §6):
# without a registry, from a debootstrap base that has Node.js, with the hub's wheels and
# configurable-http-proxy downloaded on the host, `docker build --network none`. With
# HUB_BASE_IMAGE set (a registry exists), the ordinary path: that base, network in the build.
# The image carries a hash of its inputs as a label and is rebuilt only when they change.
#   HUB_IMAGE       the tag to build (default jupyterhub-ds/hub:latest)
#   HUB_BASE_IMAGE  an ordinary base image, e.g. python:3.11-slim-bookworm
source "$(dirname "$0")/lib.sh"

HUB_IMAGE="${HUB_IMAGE:-jupyterhub-ds/hub:latest}"
BASE_TAG="jupyterhub-ds/base:bookworm-node"
# Bookworm's Node.js is 18: configurable-http-proxy 5 wants 20, so the hub stays on CHP 4.
CHP_PACKAGE="configurable-http-proxy@4"

# Downloads are caches of the checkout, shared by every state folder (tests, benchmarks).
CACHE="$ROOT/.state"
mkdir -p "$CACHE"

# The image's sources: what `pip install .` and the Dockerfile read. Listed, not globbed
# from the whole tree, so the offline context holds exactly what the production one does.
hub_sources() {
  (cd "$ROOT" && find pyproject.toml README.md docker/hub hub_config reconciler vocabulary \
    -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path 'docker/hub/offline/*' | LC_ALL=C sort)
}

# 1. Base image: the ordinary one, or Debian bookworm (python3, nodejs) from debootstrap.
if [ -n "${HUB_BASE_IMAGE:-}" ]; then
  BASE_IMAGE="$HUB_BASE_IMAGE"
else
  BASE_IMAGE="$BASE_TAG"
  debootstrap_image "$BASE_IMAGE" python3,python3-venv,ca-certificates,nodejs
fi

# 2. The hub image, rebuilt only when its sources or its base changed.
mapfile -t sources < <(hub_sources)
hub_key=$( (cd "$ROOT" && hash_inputs "${sources[@]}"; echo "$CHP_PACKAGE ${HUB_BASE_IMAGE:-offline}"
  docker image inspect "$BASE_IMAGE" --format '{{.Id}}' 2>/dev/null || echo "$BASE_IMAGE") | sha256sum | cut -c1-16)
if [ "$(image_key "$HUB_IMAGE")" = "$hub_key" ]; then
  say "images ready: $HUB_IMAGE"
  exit 0
fi

ctx="$STATE_DIR/build/hub"
rm -rf "$ctx"; mkdir -p "$ctx"
(cd "$ROOT" && cp --parents "${sources[@]}" "$ctx"/)
network=()
if [ -z "${HUB_BASE_IMAGE:-}" ]; then
  network=(--network none)
  # Wheels of the hub's dependencies for the image's Python (bookworm: 3.11), keyed on
  # pyproject.toml; setuptools and wheel build the project itself inside the image.
  wheels="$CACHE/hub-wheels-$(hash_inputs "$ROOT/pyproject.toml")"
  if [ ! -f "$wheels/.complete" ]; then
    say "downloading the hub's wheels into $wheels"
    rm -rf "$wheels"; mkdir -p "$wheels"
    python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
      "$ROOT/pyproject.toml" >"$wheels/requirements.txt"
    printf 'setuptools>=68\nwheel\n' >>"$wheels/requirements.txt"
    # A dependency published only as source (onetimepass, of NativeAuthenticator) is built
    # into a wheel here on the host, then the download is tried again.
    for attempt in 1 2 3 4 5; do
      if python3 -m pip download --quiet --only-binary=:all: --find-links "$wheels" \
        --python-version 3.11.2 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 --platform any -d "$wheels" -r "$wheels/requirements.txt" \
        >"$STATE_DIR/hub-wheels.log" 2>&1; then
        break
      fi
      missing=$(sed -n 's/.*No matching distribution found for \([A-Za-z0-9_.-]*\).*/\1/p' "$STATE_DIR/hub-wheels.log" | head -n 1)
      if [ -z "$missing" ] || [ "$attempt" = 5 ]; then
        tail -n 20 "$STATE_DIR/hub-wheels.log" >&2
        fail "could not download the hub's wheels; log: $STATE_DIR/hub-wheels.log"
      fi
      say "building a wheel of $missing (source only on PyPI)"
      python3 -m pip wheel --quiet --no-deps -w "$wheels" "$missing" >>"$STATE_DIR/hub-wheels.log" 2>&1 \
        || fail "could not build a wheel of $missing; log: $STATE_DIR/hub-wheels.log"
    done
    touch "$wheels/.complete"
    find "$CACHE" -maxdepth 1 -name 'hub-wheels-*' ! -path "$wheels" -exec rm -rf {} +
  fi
  # configurable-http-proxy with its dependencies (plain JavaScript), installed on the host.
  node="$CACHE/hub-node-$(echo "$CHP_PACKAGE" | sha256sum | cut -c1-16)"
  if [ ! -f "$node/.complete" ]; then
    command -v npm >/dev/null 2>&1 || fail "npm is needed to fetch $CHP_PACKAGE for the hub image (apt-get install npm)"
    say "installing $CHP_PACKAGE (npm) into $node"
    rm -rf "$node"; mkdir -p "$node"
    with_progress "$STATE_DIR/hub-npm.log" npm install --prefix "$node" --omit=dev --no-audit --no-fund "$CHP_PACKAGE"
    touch "$node/.complete"
  fi
  mkdir -p "$ctx/docker/hub/offline/wheels" "$ctx/docker/hub/offline/node"
  cp -l "$wheels"/*.whl "$ctx/docker/hub/offline/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$ctx/docker/hub/offline/wheels/"
  cp -a "$node/node_modules" "$ctx/docker/hub/offline/node/"
fi
chmod -R a+rX "$ctx" # `make up` runs with umask 077; the image's files are not secrets

say "building hub image $HUB_IMAGE from $BASE_IMAGE"
old_id=$(docker image inspect "$HUB_IMAGE" --format '{{.Id}}' 2>/dev/null || true)
with_progress "$STATE_DIR/build-hub.log" docker build "${network[@]}" -f "$ctx/docker/hub/Dockerfile" \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" --label "$KEY_LABEL=$hub_key" -t "$HUB_IMAGE" "$ctx"
rm -rf "$ctx"
# The replaced image, unless a container (the running hub) still uses it.
[ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect "$HUB_IMAGE" --format '{{.Id}}')" ] \
  && { docker rmi "$old_id" >/dev/null 2>&1 || true; }
say "images ready: $HUB_IMAGE"
