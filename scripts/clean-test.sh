#!/usr/bin/env bash
# Remove what an interrupted test run left: containers and volumes whose platform label
# starts with jhds-test. Never touches the platform's own (jupyterhub-ds) objects.
source "$(dirname "$0")/lib.sh"
label=io.jupyterhub-ds.platform
ids=$(docker ps -a --filter "label=$label" --format "{{.ID}} {{.Label \"$label\"}}" | awk '$2 ~ /^jhds-test/ {print $1}')
[ -n "$ids" ] && docker rm -f $ids >/dev/null
vols=$(docker volume ls --filter "label=$label" --format "{{.Name}} {{.Label \"$label\"}}" | awk '$2 ~ /^jhds-test/ {print $1}')
[ -n "$vols" ] && docker volume rm -f $vols >/dev/null
say "removed $(echo -n "$ids" | grep -c . || true) container(s), $(echo -n "$vols" | grep -c . || true) volume(s)"

# The same on the test swarm's nodes (scripts/swarm.sh) whose engines answer; nothing is
# started. Services first (on the manager), then what their tasks left on each node.
for sock in /run/jhds-swarm/*.sock; do
  if [ ! -S "$sock" ] || ! timeout 10 docker -H "unix://$sock" info >/dev/null 2>&1; then continue; fi
  node=(docker -H "unix://$sock")
  svcs=""
  if [ "$("${node[@]}" info --format '{{.Swarm.ControlAvailable}}')" = true ]; then
    # shellcheck disable=SC2046
    svcs=$("${node[@]}" service inspect --format "{{.ID}} {{index .Spec.Labels \"$label\"}}" \
      $("${node[@]}" service ls -q --filter "label=$label") 2>/dev/null | awk '$2 ~ /^jhds-test/ {print $1}' || true)
    # shellcheck disable=SC2086
    [ -z "$svcs" ] || "${node[@]}" service rm $svcs >/dev/null 2>&1 || true
  fi
  ids=$("${node[@]}" ps -a --filter "label=$label" --format "{{.ID}} {{.Label \"$label\"}}" | awk '$2 ~ /^jhds-test/ {print $1}')
  # shellcheck disable=SC2086
  [ -z "$ids" ] || "${node[@]}" rm -f $ids >/dev/null 2>&1 || true # the node may be removing them too
  vols=$("${node[@]}" volume ls --filter "label=$label" --format "{{.Name}} {{.Label \"$label\"}}" | awk '$2 ~ /^jhds-test/ {print $1}')
  # shellcheck disable=SC2086
  [ -z "$vols" ] || "${node[@]}" volume rm -f $vols >/dev/null 2>&1 || { sleep 2; "${node[@]}" volume rm -f $vols >/dev/null; }
  say "swarm node $sock: removed $(echo -n "$svcs" | grep -c . || true) service(s), $(echo -n "$ids" | grep -c . || true) container(s), $(echo -n "$vols" | grep -c . || true) volume(s)"
done
