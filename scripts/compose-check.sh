#!/usr/bin/env bash
# Validate the production compose files with Docker Compose v2's own parser (`config -q`:
# schema, interpolation, references; no engine needed): compose.yml alone, with
# compose.override.yml.example as the override, and with compose.local.yml (the registry-less
# run of `make deploy`). Every profile is checked, so Traefik and Watchtower are too.
#
# Compose v2 is what deployments run, so it is the validator (scripts/compose.sh finds or
# fetches it).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/compose.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Its own folder and usual name, as a deployment has it; paths still resolve from the root.
cp "$ROOT/compose.override.yml.example" "$tmp/compose.override.yml"

# A deployment's own .env (if any) would take part; the example's login needs a value.
export NAS_USERNAME="${NAS_USERNAME:-example}" NAS_PASSWORD="${NAS_PASSWORD:-example}"

check() {
  local what="$1"; shift
  # Every profile, so the build-only and Watchtower services are checked too.
  if "${COMPOSE[@]}" --project-directory "$ROOT" "$@" --profile build --profile autoupdate config -q; then
    echo "ok: $what"
  else
    fail "invalid: $what (validator: ${COMPOSE[*]})"
  fi
}

check "compose.yml" -f "$ROOT/compose.yml"
check "compose.yml + compose.override.yml.example" -f "$ROOT/compose.yml" -f "$tmp/compose.override.yml"
check "compose.yml + compose.local.yml" -f "$ROOT/compose.yml" -f "$ROOT/compose.local.yml" --profile traefik
