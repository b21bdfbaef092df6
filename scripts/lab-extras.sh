#!/usr/bin/env bash
# Build the extras recipe (docker/lab/extras: TensorBoard, MLflow, Optuna on top of the ds
# lab) without a registry: wheels downloaded on the host under the ds lock's versions,
# then `docker build --network none`. Rebuilt only when its inputs or ds changed.
#   LAB_EXTRAS_IMAGE   the tag (default jupyterhub-ds/lab:extras)
#   LAB_EXTRAS_OFFLINE=1  never download: fail if the wheels are not cached (tests)
source "$(dirname "$0")/lib.sh"

IMAGE="${LAB_EXTRAS_IMAGE:-jupyterhub-ds/lab:extras}"
DS_IMAGE="jupyterhub-ds/lab:ds"
KEY_LABEL="io.jupyterhub-ds.input-hash"
EXTRAS="$ROOT/docker/lab/extras"
LOCKS=("$ROOT/docker/lab/locks/ds-stack.txt" "$ROOT/docker/lab/locks/ds-lab.txt")

docker image inspect "$DS_IMAGE" >/dev/null 2>&1 || LAB_IMAGES=ds "$ROOT/scripts/images.sh"
key=$( (hash_inputs "$EXTRAS/Dockerfile" "$EXTRAS/requirements.txt"; docker image inspect "$DS_IMAGE" --format '{{.Id}}') | sha256sum | cut -c1-16)
current=$(docker image inspect "$IMAGE" --format "{{index .Config.Labels \"$KEY_LABEL\"}}" 2>/dev/null || true)
if [ "$current" = "$key" ]; then
  say "image ready: $IMAGE"
  exit 0
fi

# Not named wheels-*: images.sh removes those that belong to no lock file.
wheels="$STATE_DIR/extras-wheels-$(hash_inputs "$EXTRAS/requirements.txt" "${LOCKS[@]}")"
if [ ! -f "$wheels/.complete" ]; then
  [ "${LAB_EXTRAS_OFFLINE:-}" != 1 ] || fail "the extras' wheels are not cached in $wheels"
  say "downloading the extras' wheels into $wheels"
  rm -rf "$wheels"; mkdir -p "$wheels"
  grep -hE '^[a-z0-9]' "${LOCKS[@]}" | cut -d' ' -f1 >"$wheels/ds-constraints.txt"
  with_progress "$STATE_DIR/extras-wheels.log" python3 -m pip download --quiet --only-binary=:all: \
    --python-version 3.11.2 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any -d "$wheels" \
    -r "$EXTRAS/requirements.txt" -c "$wheels/ds-constraints.txt"
  touch "$wheels/.complete"
fi

ctx="$STATE_DIR/build/lab-extras"
rm -rf "$ctx"; mkdir -p "$ctx/wheels"
cp "$EXTRAS/Dockerfile" "$EXTRAS/requirements.txt" "$ctx/"
cp -l "$wheels"/*.whl "$ctx/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$ctx/wheels/"
say "building $IMAGE from $DS_IMAGE (offline)"
log="$STATE_DIR/build-lab-extras.log"
old_id=$(docker image inspect "$IMAGE" --format '{{.Id}}' 2>/dev/null || true)
with_progress "$log" docker build --network none \
  --build-arg "DS_IMAGE=$DS_IMAGE" --label "$KEY_LABEL=$key" -t "$IMAGE" "$ctx"
rm -rf "$ctx"
# Build stages of older builds (untagged, labelled stage-of; this build's is the cache) and
# the replaced image, unless a container still uses it.
for stage in $(docker images -q -f dangling=true -f "label=io.jupyterhub-ds.stage-of=lab-extras"); do
  grep -q -- "---> $stage" "$log" || docker rmi "$stage" >/dev/null 2>&1 || true
done
[ -z "$old_id" ] || [ "$old_id" = "$(docker image inspect "$IMAGE" --format '{{.Id}}')" ] || docker rmi "$old_id" >/dev/null 2>&1 || true
say "image ready: $IMAGE"
