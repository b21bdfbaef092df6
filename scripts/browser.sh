#!/usr/bin/env bash
# Make sure headless Chromium and its ChromeDriver are there for the browser tests
# (tests/integration/test_browser.py). If they are missing and we are root on Debian,
# install Debian's chromium and chromium-driver; otherwise say what is missing.
# The tests never let selenium download a browser or a driver of its own.
source "$(dirname "$0")/lib.sh"

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
  fail "the browser tests need $CHROMIUM and $CHROMEDRIVER (missing). Install them yourself (Debian/Ubuntu: apt-get install chromium chromium-driver); this script only installs them as root on Debian."
fi

say "installing chromium and chromium-driver (apt)"
export DEBIAN_FRONTEND=noninteractive
with_progress "$STATE_DIR/apt-chromium.log" \
  bash -c 'apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver'

for f in "$CHROMIUM" "$CHROMEDRIVER"; do
  [ -x "$f" ] || fail "$f is still missing after installing chromium and chromium-driver; see $STATE_DIR/apt-chromium.log"
done
say "$("$CHROMIUM" --version 2>/dev/null || echo chromium), $("$CHROMEDRIVER" --version 2>/dev/null | cut -d' ' -f1-2)"
