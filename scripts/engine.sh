#!/usr/bin/env bash
# Make sure a Docker engine answers. If none does and we are root on Debian, install
# docker.io and start dockerd without a bridge (DESIGN §6); otherwise say what is missing.
source "$(dirname "$0")/lib.sh"

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ -n "${DOCKER_HOST:-}" ]; then
  fail "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST (docker info failed); start it or unset DOCKER_HOST"
fi
if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  fail "no Docker engine answers (docker info failed). Start Docker yourself (or set DOCKER_HOST); this script only installs and starts one as root on Debian."
fi

if ! command -v dockerd >/dev/null 2>&1; then
  say "installing docker.io (apt)"
  export DEBIAN_FRONTEND=noninteractive
  with_progress "$STATE_DIR/apt-docker.log" bash -c 'apt-get update -q && apt-get install -y -q docker.io'
fi

# Start dockerd unless one runs; a dockerd that is still shutting down is waited for, then
# replaced. A session that was killed leaves a pid file behind that makes dockerd refuse to
# start: it is removed when no dockerd process runs.
started=0
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && exit 0
  if ! pgrep -x dockerd >/dev/null; then
    [ "$started" -ge 2 ] && break
    rm -f /var/run/docker.pid
    say "starting dockerd (no bridge, no iptables, live restore; log: $STATE_DIR/dockerd.log)"
    # --live-restore: user servers keep running while the engine restarts (upgrades, crashes).
    setsid nohup dockerd --bridge=none --iptables=false --live-restore >>"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
    started=$((started + 1))
  fi
  sleep 1
done
tail -n 20 "$STATE_DIR/dockerd.log" >&2 || true
fail "dockerd did not answer within 120 s; see $STATE_DIR/dockerd.log"
