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
