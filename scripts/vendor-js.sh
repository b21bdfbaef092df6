#!/usr/bin/env bash
# The JavaScript the hub's pages load (Chart.js for the Usage page), vendored into
# hub_config/static/vendor/ and committed (docs/usage.md says why). Its version and the npm
# tarball's sha512 are pinned in package.json / package-lock.json beside it.
#   scripts/vendor-js.sh          npm ci (the lock's integrity checked by npm), copy the files,
#                                 rewrite SHA256SUMS: after changing the pinned version
#   scripts/vendor-js.sh --check  npm ci, and fail unless the committed files are exactly the
#                                 registry's (tests/unit/test_vendored_js.py checks SHA256SUMS
#                                 against the committed files without the network)
source "$(dirname "$0")/lib.sh"

VENDOR="$ROOT/hub_config/static/vendor"
# What is copied: the package's UMD build (one file, @kurkle/color inlined) and the licences.
FILES=(
  "chart.js/dist/chart.umd.min.js:chart.js/chart.umd.min.js"
  "chart.js/LICENSE.md:chart.js/LICENSE.md"
  "@kurkle/color/LICENSE:chart.js/LICENSE-kurkle-color.md"
)
command -v npm >/dev/null 2>&1 || fail "npm is needed to fetch the vendored JavaScript (apt-get install npm)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$VENDOR/package.json" "$VENDOR/package-lock.json" "$work/"
# --ignore-scripts: nothing of the package runs here; npm ci fails on any integrity mismatch.
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund >"$work/npm.log" 2>&1) \
  || { cat "$work/npm.log" >&2; fail "npm ci of $VENDOR/package-lock.json failed"; }

status=0
for pair in "${FILES[@]}"; do
  src="$work/node_modules/${pair%%:*}" dst="$VENDOR/${pair##*:}"
  if [ "${1:-}" = --check ]; then
    cmp -s "$src" "$dst" || { echo "differs from the registry's: ${dst#"$ROOT"/}" >&2; status=1; }
  else
    install -D -m 0644 "$src" "$dst"
  fi
done
if [ "${1:-}" = --check ]; then
  [ "$status" = 0 ] && say "vendored JavaScript matches the registry's" || fail "vendored JavaScript differs"
  exit 0
fi
(cd "$VENDOR" && for pair in "${FILES[@]}"; do sha256sum "${pair##*:}"; done >SHA256SUMS)
say "vendored: $(sed -n 's/^ \* \(Chart.js v[0-9.]*\)$/\1/p' "$VENDOR/chart.js/chart.umd.min.js" | head -n 1) into ${VENDOR#"$ROOT"/}"
