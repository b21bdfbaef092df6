#!/usr/bin/env bash
# `make down`: stop the hub and the user containers; user volumes are kept.
source "$(dirname "$0")/lib.sh"
# The engine `make up` used (e.g. a Swarm manager's DOCKER_HOST given to `make up` alone).
if [ -z "${DOCKER_HOST:-}" ] && [ -s "$STATE_DIR/docker-host" ]; then
  DOCKER_HOST="$(cat "$STATE_DIR/docker-host")"
  export DOCKER_HOST
fi

pidfile="$STATE_DIR/jupyterhub.pid"
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping JupyterHub (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
fi
proxy_pid="$STATE_DIR/jupyterhub-proxy.pid"
if [ -f "$proxy_pid" ]; then
  kill -TERM "$(cat "$proxy_pid")" 2>/dev/null || true
  rm -f "$proxy_pid"
fi

if docker info >/dev/null 2>&1; then
  # On Swarm a user server is a service (its tasks run on the nodes).
  if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ]; then
    services=$(docker service ls -q --filter "label=io.jupyterhub-ds.platform=${PLATFORM_ID:-jupyterhub-ds}")
    if [ -n "$services" ]; then
      say "removing $(echo "$services" | wc -l) user service(s); volumes are kept"
      docker service rm $services >/dev/null
    fi
  fi
  ids=$(docker ps -aq --filter "label=io.jupyterhub-ds.platform=${PLATFORM_ID:-jupyterhub-ds}")
  if [ -n "$ids" ]; then
    say "removing $(echo "$ids" | wc -l) user container(s); volumes are kept"
    docker rm -f $ids >/dev/null
  fi
fi
say "stopped"
