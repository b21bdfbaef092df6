#!/usr/bin/env bash
# `make undeploy`: stop the compose deployment of `make deploy` and its user containers.
# Volumes are kept: the hub's state volume and every user's; `make deploy` starts again
# where it stopped.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/env.sh"
source "$ROOT/scripts/compose.sh"

export COMPOSE_FILE="${COMPOSE_FILE:-$ROOT/compose.yml:$ROOT/compose.local.yml}"
export MANIFESTS_DIR="${MANIFESTS_DIR:-$ROOT/manifests}"
say "stopping the hub container (volumes are kept)"
"${COMPOSE[@]}" --project-directory "$ROOT" down --timeout 30
ids=$(docker ps -aq --filter "label=io.jupyterhub-ds.platform=${PLATFORM_ID:-jupyterhub-ds}")
if [ -n "$ids" ]; then
  say "removing $(echo "$ids" | wc -l) user container(s); volumes are kept"
  docker rm -f $ids >/dev/null
fi
say "stopped"
