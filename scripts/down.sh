#!/usr/bin/env bash
# `make down`: stop the hub and the user containers; user volumes are kept.
source "$(dirname "$0")/lib.sh"

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
  ids=$(docker ps -aq --filter "label=io.jupyterhub-ds.platform=${PLATFORM_ID:-jupyterhub-ds}")
  if [ -n "$ids" ]; then
    say "removing $(echo "$ids" | wc -l) user container(s); volumes are kept"
    docker rm -f $ids >/dev/null
  fi
fi
say "stopped"
