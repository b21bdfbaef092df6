#!/usr/bin/env bash
# `make up`: set up whatever is missing, then start JupyterHub in the background.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/env.sh"
# The state folder holds the database (password hashes), secrets and logs: owner only.
umask 077
chmod 700 "$STATE_DIR"

"$ROOT/scripts/engine.sh"
"$ROOT/scripts/install.sh"
# One platform per port: `make deploy`'s hub container (compose.local.yml labels it with
# its port) may hold this one.
port=$(hubctl settings --get port 2>/dev/null || true)
deployed=$(docker ps --filter "label=io.jupyterhub-ds.port=${port:-none}" --format '{{.Names}}')
if [ -n "$deployed" ]; then
  fail "the compose deployment (container $deployed) runs on port $port: stop it with make undeploy first, or start on another JUPYTERHUB_PORT"
fi
if [ "$(hubctl settings --get backend 2>/dev/null)" = swarm ]; then
  # On Swarm the images come to every node from a registry (here: `make swarm-up` loads them).
  image=$(hubctl settings --get notebook_image)
  docker info --format '{{.Swarm.ControlAvailable}}' | grep -qx true ||
    fail "PLATFORM_BACKEND=swarm needs DOCKER_HOST to be a Swarm manager (make swarm-up prints one)"
  docker image inspect "$image" >/dev/null 2>&1 ||
    fail "the server image $image is not on the Swarm manager: push it to your registry, or load it (SWARM_IMAGES=\"$image\" make swarm-up)"
else
  "$ROOT/scripts/images.sh"
fi
helper=$(hubctl settings --get backup_helper_image 2>/dev/null || true)
if [ -n "$helper" ] && ! docker image inspect "$helper" >/dev/null 2>&1; then
  say "warning: the backup helper image $helper (BACKUP_HELPER_IMAGE) is not on the engine: backups end HelperImageMissing until it is"
fi
# `make down` stops what this started, on the same engine, whatever DOCKER_HOST says then.
echo "${DOCKER_HOST:-}" >"$STATE_DIR/docker-host"

# The folder of desired state that the reconciler watches (GitOps).
export MANIFESTS_DIR="${MANIFESTS_DIR-$ROOT/manifests}"

# Bad settings stop here with one line per variable, before anything starts.
hubctl settings --check >/dev/null || exit 2

url=$(hubctl settings --get public_url)
admin=$(hubctl settings --get admin)
pidfile="$STATE_DIR/jupyterhub.pid"
log="$STATE_DIR/jupyterhub.log"

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  say "JupyterHub is already running (pid $(cat "$pidfile"))"
  # Paused by an interrupted `make test`? Go on.
  reconciler="$(reconciler_pid)"
  [ -z "$reconciler" ] || kill -CONT "$reconciler"
else
  # JupyterHub's tables at this JupyterHub's schema: an older SQLite database is copied aside,
  # then upgraded; PostgreSQL, or a schema newer than this JupyterHub, stops here with what to do.
  python -m hub_config.hubdb "$ROOT/hub_config/jupyterhub_config.py" || exit $?
  say "starting JupyterHub $(python -c 'import jupyterhub; print(jupyterhub.__version__)') (log: $log)"
  cd "$STATE_DIR"
  setsid nohup jupyterhub -f "$ROOT/hub_config/jupyterhub_config.py" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  cd "$ROOT"
fi

for _ in $(seq 1 60); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "${url}hub/health" 2>/dev/null; then
    if [ -n "${JUPYTERHUB_ADMIN_PASSWORD:-}" ]; then
      password="the one in JUPYTERHUB_ADMIN_PASSWORD"
    elif [ -f "$STATE_DIR/admin-password" ]; then
      password="$(cat "$STATE_DIR/admin-password")  (one-time: change it at ${url}hub/change-password)"
    else
      password="the one you chose when the account was created"
    fi
    cat <<MSG

JupyterHub is ready at ${url}
Sign in as the admin '${admin}' at ${url}hub/login with the password: ${password}
Others sign up at ${url}hub/signup and wait for the admin's approval at ${url}hub/authorize.
Stop with: make down (user volumes are kept)
MSG
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    tail -n 20 "$log" >&2
    rm -f "$pidfile"
    fail "JupyterHub exited during start-up; full log: $log"
  fi
  sleep 1
done
fail "JupyterHub did not answer at ${url}hub/health within 60 s; log: $log"
