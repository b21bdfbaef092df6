#!/usr/bin/env bash
# `make deploy`: the production deployment, here: the hub image (scripts/hub-image.sh) run
# by Docker Compose v2 with compose.yml and, on a machine without a registry,
# compose.local.yml (no Traefik, the hub on 127.0.0.1:$JUPYTERHUB_PORT). It reads the same
# settings as `make up` (JUPYTERHUB_ADMIN, HUB_AUTOMATION_TOKEN, JUPYTERHUB_PORT, ...), so
# the same scripts and tokens work against either; only one of them runs on a port.
#   COMPOSE_FILE          the files (default compose.yml:compose.local.yml), as compose reads it
#   COMPOSE_PROJECT_NAME  the project (default: compose.yml's name, jupyterhub-ds)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/env.sh"

"$ROOT/scripts/engine.sh"
"$ROOT/scripts/install.sh"
# JHDS_IMAGES_READY=1: the caller has just built them (the integration test).
[ "${JHDS_IMAGES_READY:-}" = 1 ] || "$ROOT/scripts/images.sh" --hub
source "$ROOT/scripts/compose.sh"

export COMPOSE_FILE="${COMPOSE_FILE:-$ROOT/compose.yml:$ROOT/compose.local.yml}"
# The manifests folder `make up` watches; compose mounts it at /srv/manifests.
export MANIFESTS_DIR="${MANIFESTS_DIR:-$ROOT/manifests}"
# Unless told otherwise, the lab image of the settings' default, as `make up` spawns.
DOCKER_NOTEBOOK_IMAGE="${DOCKER_NOTEBOOK_IMAGE:-$(hubctl settings --get notebook_image)}"
export DOCKER_NOTEBOOK_IMAGE
hubctl settings --check >/dev/null || exit 2

# Every setting set in this environment, for the container (compose.local.yml's env_file);
# the state folder and the manifests folder are the container's own.
export DEPLOY_ENV_FILE="${DEPLOY_ENV_FILE:-$STATE_DIR/deploy.env}"
(umask 077 && python3 - "$DEPLOY_ENV_FILE" <<'PY'
import os
import sys

from vocabulary.settings import Settings

skip = {"JUPYTERHUB_STATE_DIR", "MANIFESTS_DIR"}
lines = []
for name in sorted(f.alias for f in Settings.model_fields.values()):
    value = os.environ.get(name)
    if value is None or name in skip or (name == "JUPYTERHUB_DB_URL" and value.startswith("sqlite")):
        continue
    if "'" in value or "\n" in value:
        sys.exit(f"deploy: {name} holds a quote or a line break, which an env file cannot carry")
    lines.append(f"{name}='{value}'\n")
with open(sys.argv[1], "w") as f:
    f.writelines(lines)
PY
) || exit 2
port=$(hubctl settings --get port)
url="http://127.0.0.1:${port}$(hubctl settings --get base_url)"
compose=("${COMPOSE[@]}" --project-directory "$ROOT")
container=$("${compose[@]}" config --format json | python3 -c 'import json, sys; print(json.load(sys.stdin)["services"]["jupyterhub"]["container_name"])')

# One platform per port: `make up`'s host hub, or this deployment.
if [ -f "$STATE_DIR/jupyterhub.pid" ] && kill -0 "$(cat "$STATE_DIR/jupyterhub.pid")" 2>/dev/null \
  && ! docker ps -q --filter "name=^${container}\$" | grep -q .; then
  fail "make up's hub runs (pid $(cat "$STATE_DIR/jupyterhub.pid")) on this machine: stop it with make down first, or deploy on another JUPYTERHUB_PORT (this one: $port)"
fi
if (exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$port") && ! docker ps -q --filter "name=^${container}\$" | grep -q .; then
  fail "port $port on 127.0.0.1 is taken by another program (make up's hub?): stop it (make down), or set JUPYTERHUB_PORT"
fi

say "starting the hub container $container (Docker Compose: ${COMPOSE_FILE//:/ + })"
"${compose[@]}" up -d --wait --wait-timeout 180 jupyterhub \
  || { "${compose[@]}" logs --tail 30 jupyterhub >&2; fail "the hub container did not become healthy; see: ${compose[*]} logs jupyterhub"; }

admin=$(hubctl settings --get admin)
if [ -n "${JUPYTERHUB_ADMIN_PASSWORD:-}" ]; then
  password="the one in JUPYTERHUB_ADMIN_PASSWORD"
elif pw=$(docker exec "$container" cat /data/admin-password 2>/dev/null); then
  password="$pw  (one-time: change it at ${url}hub/change-password)"
else
  password="the one you chose when the account was created"
fi
cat <<MSG

JupyterHub (container $container) is ready at ${url}
Sign in as the admin '${admin}' at ${url}hub/login with the password: ${password}
Logs: ${COMPOSE[*]} --project-directory $ROOT logs -f jupyterhub
Stop with: make undeploy (the state volume and user volumes are kept)
MSG
