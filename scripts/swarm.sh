#!/usr/bin/env bash
# A real two-node Docker Swarm on this one machine, for developing and testing the swarm
# backend (DESIGN §6 item 7). Two extra dockerd instances beside the main engine:
#   node a (manager): socket /run/jhds-swarm/a.sock, data root /var/lib/jhds-swarm/a
#   node b (worker):  socket /run/jhds-swarm/b.sock, data root /var/lib/jhds-swarm/b
# each with its own exec root and pid file, no bridge, no iptables, and no --live-restore
# (swarm mode refuses it). They run as `dockerd-jhds-<n>` (a link to dockerd) so that
# `pgrep -x dockerd` / `pkill -x dockerd` see the main engine only.
#
#   swarm.sh up      start what is missing; prints DOCKER_HOST=<manager> on stdout (the only
#                    line there): `export $(scripts/swarm.sh up)`
#   swarm.sh down    remove all of it (services, swarm, engines, their files, the
#                    docker_gwbridge link); the main engine is not touched
#   swarm.sh status  the nodes, or that the swarm is down
#
# No registry: the images in SWARM_IMAGES reach each node by `docker save` on the main
# engine piped into `docker load` on the node (the stand-in for a registry), and only when the
# node's copy differs. By default, those `make up` will ask for with the same environment: the
# users' lab (DOCKER_NOTEBOOK_IMAGE, default jupyterhub-ds/lab:ds) and the backup helper
# (BACKUP_HELPER_IMAGE); built on the main engine first when it lacks them. Each node is labelled io.jupyterhub-ds.node=<n> and
# io.jupyterhub-ds.socket=<its engine's socket on this host>.
# Host networking only: the nodes share this machine's network namespace, so node b's network
# gossip (port 7946, taken by a) does not start and no overlay network spans both nodes (the
# same VXLAN id twice); the platform's servers use the host network anyway.
source "$(dirname "$0")/lib.sh"

# Keep in step with the defaults in vocabulary/settings/ (as scripts/images.sh).
SWARM_IMAGES="${SWARM_IMAGES:-${DOCKER_NOTEBOOK_IMAGE:-jupyterhub-ds/lab:ds} ${BACKUP_HELPER_IMAGE:-jupyterhub-ds/base:bookworm}}"
NODES="a b"
DATA_DIR=/var/lib/jhds-swarm
RUN_DIR=/run/jhds-swarm
LABEL_NODE=io.jupyterhub-ds.node
LABEL_SOCKET=io.jupyterhub-ds.socket

# The main engine is the default one, even when DOCKER_HOST names the manager (after `eval`).
case "${DOCKER_HOST:-}" in "unix://$RUN_DIR/"*) unset DOCKER_HOST ;; esac

sock() { echo "$RUN_DIR/$1.sock"; }
dk() { local n="$1"; shift; docker -H "unix://$(sock "$n")" "$@"; }
answers() { [ -S "$(sock "$1")" ] && timeout 10 docker -H "unix://$(sock "$1")" info >/dev/null 2>&1; }
# Of these pids, the processes that are not zombies (a killed dockerd stays one until init
# reaps it, which may take a while here).
living() { local p; for p in "$@"; do [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] || [ ! -e "/proc/$p" ] || echo "$p"; done; }
# The node's dockerd, by its own process name (the link's name).
# shellcheck disable=SC2046
daemon_pids() { living $(pgrep -x "dockerd-jhds-$1" || true); }
# What runs from the node's exec root once its dockerd is gone: its containerd and shims.
# shellcheck disable=SC2046
leftover_pids() { living $(pgrep -f -- "$RUN_DIR/$1.exec/" || true); }

# Wait for all the given background jobs ("pid:name:log" ...), with a line every 5 s.
wait_jobs() {
  local job start=$SECONDS failed="" pid name log
  any_alive() { local j; for j in "$@"; do kill -0 "${j%%:*}" 2>/dev/null && return 0; done; return 1; }
  while any_alive "$@"; do
    sleep 1; [ $(((SECONDS - start) % 5)) != 0 ] || printf '   ... %ss\n' "$((SECONDS - start))"
  done
  for job in "$@"; do
    IFS=: read -r pid name log <<<"$job"
    if ! wait "$pid"; then tail -n 20 "$log" >&2; failed+=" $name (log: $log)"; fi
  done
  [ -z "$failed" ] || fail "failed:$failed"
}

# --- up ---
start_daemon() {
  local n="$1" bin="$RUN_DIR/bin/dockerd-jhds-$1"
  mkdir -p "$RUN_DIR/bin" "$DATA_DIR/$n"
  ln -sfn "$(command -v dockerd)" "$bin"
  rm -f "$RUN_DIR/$n.pid" "$(sock "$n")" # stale: no dockerd of this node runs
  say "starting node $n's engine (socket $(sock "$n"); log: $STATE_DIR/swarm-$n.log)"
  setsid nohup "$bin" --data-root "$DATA_DIR/$n" --exec-root "$RUN_DIR/$n.exec" --pidfile "$RUN_DIR/$n.pid" \
    -H "unix://$(sock "$n")" --bridge=none --iptables=false --label "$LABEL_NODE=$n" \
    >>"$STATE_DIR/swarm-$n.log" 2>&1 </dev/null 3>&- &
}

# Start the engines that are missing (one still shutting down is waited for), then wait for all.
ensure_daemons() {
  local n pending
  local -A started=([a]=0 [b]=0)
  for _ in $(seq 1 120); do
    pending=""
    for n in $NODES; do
      answers "$n" && continue
      pending+=" $n"
      [ -n "$(daemon_pids "$n")" ] && continue
      [ "${started[$n]}" -ge 2 ] && { tail -n 20 "$STATE_DIR/swarm-$n.log" >&2; fail "node $n's dockerd exits; see $STATE_DIR/swarm-$n.log"; }
      start_daemon "$n"
      started[$n]=$((started[$n] + 1))
    done
    [ -z "$pending" ] && return
    sleep 0.5
  done
  fail "the engines of node(s)$pending did not answer within 60 s; see $STATE_DIR/swarm-*.log"
}

node_id() { dk "$1" info --format '{{.Swarm.NodeID}}'; }

ensure_swarm() {
  local state id_a id_b id
  state=$(dk a info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" != active ] || [ "$(dk a info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
    [ "$state" = inactive ] || dk a swarm leave --force >/dev/null 2>&1 || true
    say "node a: swarm init (manager, 127.0.0.1:2377)"
    dk a swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null
  fi
  id_a=$(node_id a)
  state=$(dk b info --format '{{.Swarm.LocalNodeState}}')
  id_b=$(node_id b)
  if [ "$state" != active ] || ! dk a node ls -q | grep -qx "$id_b"; then
    [ "$state" = inactive ] || dk b swarm leave --force >/dev/null 2>&1 || true
    say "node b: joining the swarm (worker, 127.0.0.1:2378)"
    dk b swarm join --token "$(dk a swarm join-token -q worker)" \
      --listen-addr 127.0.0.1:2378 --advertise-addr 127.0.0.1:2378 127.0.0.1:2377 >/dev/null
    id_b=$(node_id b)
  fi
  # Nodes of earlier joins (b's old identities) are gone for good.
  for id in $(dk a node ls -q); do
    [ "$id" = "$id_a" ] || [ "$id" = "$id_b" ] || dk a node rm --force "$id" >/dev/null
  done
  for _ in $(seq 1 120); do
    [ "$(dk a node inspect "$id_a" "$id_b" --format '{{.Status.State}}/{{.Spec.Availability}}' | sort -u)" = ready/active ] && return
    sleep 0.5
  done
  fail "the swarm's nodes are not ready within 60 s: $(dk a node ls 2>&1)"
}

label_nodes() {
  local n id want
  for n in $NODES; do
    id=$(node_id "$n")
    want="$(sock "$n") $n"
    [ "$(dk a node inspect "$id" --format "{{index .Spec.Labels \"$LABEL_SOCKET\"}} {{index .Spec.Labels \"$LABEL_NODE\"}}")" = "$want" ] && continue
    dk a node update --label-add "$LABEL_SOCKET=$(sock "$n")" --label-add "$LABEL_NODE=$n" "$id" >/dev/null
  done
}

# The images on the main engine, built by images.sh when it lacks them.
ensure_main_images() {
  local image flavours="" build=""
  for image in $SWARM_IMAGES; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    build=1
    case "$image" in
      jupyterhub-ds/lab:*) flavours+=" ${image#jupyterhub-ds/lab:}" ;;
      jupyterhub-ds/base:bookworm) ;; # the backup helper: images.sh always builds it
      jupyterhub-ds/base-ds:bookworm) flavours+=" ds" ;;
      *) fail "the main engine has no image $image (SWARM_IMAGES); build or pull it there first" ;;
    esac
  done
  [ -z "$build" ] || LAB_IMAGES="$(tr ' ' '\n' <<<"$flavours" | sort -u | xargs)" "$ROOT/scripts/images.sh" 3>&-
}

load_images() {
  local n image main_id todo jobs=()
  for n in $NODES; do
    todo=""
    for image in $SWARM_IMAGES; do
      main_id=$(docker image inspect "$image" --format '{{.Id}}')
      [ "$(dk "$n" image inspect "$image" --format '{{.Id}}' 2>/dev/null)" = "$main_id" ] || todo+=" $image"
    done
    [ -z "$todo" ] && continue
    say "node $n: loading$todo (docker save | docker load, the stand-in for a registry)"
    # shellcheck disable=SC2086
    (docker save $todo | dk "$n" load -q && dk "$n" image prune -f) >"$STATE_DIR/swarm-load-$n.log" 2>&1 &
    jobs+=("$!:loading images into node $n:$STATE_DIR/swarm-load-$n.log")
  done
  [ "${#jobs[@]}" = 0 ] || wait_jobs "${jobs[@]}"
}

cmd_up() {
  # Progress on stderr; stdout (fd 3) carries DOCKER_HOST only, and no daemon started here
  # may hold it open (`$(swarm.sh up)` would wait for it forever).
  exec 3>&1 1>&2
  [ "$(id -u)" = 0 ] || fail "the test swarm needs root (it starts two dockerd instances)"
  "$ROOT/scripts/engine.sh" 3>&-
  ensure_main_images
  ensure_daemons
  ensure_swarm
  label_nodes
  load_images
  say "swarm ready: nodes a (manager) and b; DOCKER_HOST=unix://$(sock a)"
  echo "DOCKER_HOST=unix://$(sock a)" >&3
}

# --- down ---
# SIGTERM to the nodes' engines, SIGKILL to those still running after 20 s; then whatever
# still runs from their exec roots (containerd and shims, when a dockerd was killed).
stop_daemons() {
  local n pids
  pids=$(for n in $NODES; do daemon_pids "$n"; done)
  if [ -n "$pids" ]; then
    say "stopping the nodes' engines (pid $(xargs <<<"$pids"))"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 40); do [ -z "$(for n in $NODES; do daemon_pids "$n"; done)" ] && break; sleep 0.5; done
    pids=$(for n in $NODES; do daemon_pids "$n"; done)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || { say "still running after 20 s, SIGKILL: $(xargs <<<"$pids")"; kill -KILL $pids 2>/dev/null || true; sleep 1; }
  fi
  pids=$(for n in $NODES; do leftover_pids "$n"; done)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || { say "killing what ran from the exec roots: $(xargs <<<"$pids")"; kill -KILL $pids 2>/dev/null || true; sleep 0.5; }
}

our_mounts() { awk -v d="$DATA_DIR" -v r="$RUN_DIR" '$5 == d || index($5, d "/") == 1 || $5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r; }

# The link swarm mode creates for its gateway bridge, unless the main engine has that network.
gwbridge_leftover() {
  ip link show docker_gwbridge >/dev/null 2>&1 && ! docker network inspect docker_gwbridge >/dev/null 2>&1
}

cmd_down() {
  local n services containers m mounts
  if [ ! -e "$DATA_DIR" ] && [ ! -e "$RUN_DIR" ] && [ -z "$(daemon_pids a)$(daemon_pids b)" ] && ! gwbridge_leftover; then
    say "the test swarm is down (nothing to remove)"
    return
  fi
  [ "$(id -u)" = 0 ] || fail "removing the test swarm needs root"
  for n in $NODES; do
    answers "$n" || continue
    if [ "$(dk "$n" info --format '{{.Swarm.ControlAvailable}}')" = true ]; then
      services=$(dk "$n" service ls -q)
      # shellcheck disable=SC2086
      [ -z "$services" ] || { say "node $n: removing $(wc -w <<<"$services") service(s)"; dk "$n" service rm $services >/dev/null; }
    fi
  done
  for n in b a; do # the worker first, then the last manager
    answers "$n" || continue
    [ "$(dk "$n" info --format '{{.Swarm.LocalNodeState}}')" = inactive ] || dk "$n" swarm leave --force >/dev/null 2>&1 || true
    containers=$(dk "$n" ps -aq)
    # shellcheck disable=SC2086
    [ -z "$containers" ] || dk "$n" rm -f $containers >/dev/null 2>&1 || true
  done
  stop_daemons
  # What the engines leave mounted: their data roots (bound onto themselves), network
  # namespaces under the exec roots (the ingress sandbox's holds a veth on docker_gwbridge).
  mounts=$(our_mounts)
  say "removing $DATA_DIR and $RUN_DIR${mounts:+ (unmounting what the engines left: $(xargs <<<"$mounts"))}"
  for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m"; done
  [ -z "$(our_mounts)" ] || fail "still mounted: $(our_mounts | xargs)"
  rm -rf --one-file-system "$DATA_DIR" "$RUN_DIR"
  if gwbridge_leftover; then ip link delete docker_gwbridge; fi
  say "the test swarm is removed (main engine untouched)"
}

cmd_status() {
  local n
  for n in $NODES; do
    if answers "$n"; then echo "node $n: engine answers at unix://$(sock "$n")"; else echo "node $n: engine down"; fi
  done
  if answers a && [ "$(dk a info --format '{{.Swarm.ControlAvailable}}')" = true ]; then
    dk a node ls
    echo "DOCKER_HOST=unix://$(sock a)"
  else
    echo "the test swarm is down"
  fi
}

# A node failure on purpose: stop one node's engine, keeping its data (its volumes, its swarm
# identity). The manager marks the node down; `up` starts the engine again and it rejoins
# as the same node.
cmd_stop_node() {
  local n="${1:-}" pids
  case "$n" in b) ;; a) fail "stop-node a would stop the manager; stop b" ;; *) fail "usage: $0 stop-node b" ;; esac
  pids=$(daemon_pids "$n")
  [ -n "$pids" ] || { say "node $n's engine is not running"; return; }
  say "stopping node $n's engine (pid $(xargs <<<"$pids")); its data is kept"
  # shellcheck disable=SC2086
  kill -TERM $pids
  for _ in $(seq 1 40); do [ -z "$(daemon_pids "$n")" ] && return; sleep 0.5; done
  # shellcheck disable=SC2046
  kill -KILL $(daemon_pids "$n") 2>/dev/null || true
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop-node) cmd_stop_node "${2:-}" ;;
  *) fail "usage: $0 up|down|status|stop-node b" ;;
esac
