#!/usr/bin/env bash
# screenshots.sh: makes docs/ui-*.png from the running web page.
#
#     tools/screenshots.sh [PATH/TO/upstreamfs]     (default build/upstreamfs)
#
# Runs tests/integration/ui_browser_test.sh and ui_health_test.sh with UI_SHOTS: each starts `upstreamfs serve` on
# 127.0.0.1 with fixture proxies, opens the page in Debian's headless Chromium through
# chromedriver (tests/integration/ui/webdriver.py: --headless --no-sandbox --disable-gpu
# --disable-quic --no-first-run --disable-background-networking --disable-component-update
# --disable-sync, a fresh --user-data-dir) with the admin token (/ui/#token=TOKEN, from
# STATEDIR/admin-token), walks the scenario of tests/integration/ui/ui_driver.py and saves a
# full-page screenshot at each step docs/web-ui.md shows. The screenshots are written only when
# the whole scenario passes, so a page that breaks is never pictured. Needs root (the test's
# servers), chromium and chromium-driver (tools/deps.sh --test installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-build/upstreamfs}"
[[ -x "$BIN" ]] || { echo "screenshots.sh: $BIN is not built (tools/build.sh)" >&2; exit 1; }
SHOTS="$(mktemp -d "${TMPDIR:-/tmp}/upfs-shots.XXXXXX")"
trap 'rm -rf "$SHOTS"' EXIT
UI_SHOTS="$SHOTS" bash tests/integration/ui_browser_test.sh "$BIN"
UI_SHOTS="$SHOTS" bash tests/integration/ui_health_test.sh "$BIN"
n=0
for f in "$SHOTS"/ui-*.png; do
    [[ -e "$f" ]] || continue
    cp "$f" docs/
    n=$((n + 1))
done
((n > 0)) || { echo "screenshots.sh: the scenario made no screenshot" >&2; exit 1; }
echo "screenshots.sh: wrote $n screenshot(s) to docs/: $(cd "$SHOTS" && ls ui-*.png | tr '\n' ' ')"
