#!/bin/bash
# tests/integration/ui_health_test.sh -- the web page shows each proxy's health (issue 13):
# a failing proxy's badge says failing, with the cause and the time of the last success, and
# turns green again on recovery, without a reload.
#
#     bash tests/integration/ui_health_test.sh build/upstreamfs
#     UI_SHOTS=docs bash tests/integration/ui_health_test.sh build/upstreamfs   # docs/ui-health.png
#
# `serve` with two generic proxies on upstream.py: "gen" (answers 200) and "down" (answers 500
# to everything). One request through the shim to each; then in headless Chromium
# (ui/ui_driver.py health, through the token URL) the overview shows down's badge "failing"
# (or "backing-off") in the failing colour with "cause http 500" and "last success never",
# and gen's "online"; /api/v1/cache says the same. The fault is then cleared and a request
# succeeds: the open page turns down's badge "online" by itself (it polls), and the cause goes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"
for c in /usr/bin/chromium /usr/bin/chromedriver; do
    command -v "$c" >/dev/null || die "$c is missing (tools/deps.sh --test installs chromium and chromium-driver)"
done
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SHOTS="${UI_SHOTS:-}"
[[ -z "$SHOTS" || "$SHOTS" == /* ]] || SHOTS="$PWD/$SHOTS"

SRV="$T/srv"
fixture_bytes gen 4096 "$SRV/gen/f.bin"
fixture_bytes down 4096 "$SRV/down/f.bin"
upstream_start "$SRV" --quiet
upfs proxy create gen --type generic --url "${UPSTREAM_URL}gen/" >/dev/null
upfs proxy create down --type generic --url "${UPSTREAM_URL}down/" >/dev/null
upstream_fault '{"path": "^/down/", "fault": "status", "status": 500}'
serve_start main
S="http://127.0.0.1:$SERVE_PORT_main"

t_api() {
    http_get "$S/gen/f.bin"
    assert_eq "$HTTP_STATUS" 200 "GET /gen/f.bin"
    http_get "$S/down/f.bin"
    assert_eq "$HTTP_STATUS" 502 "GET /down/f.bin (the remote answers 500)"
    api_get "$S/api/v1/cache"
    assert_eq "$(json_field '[(n["name"], n["state"] in ("failing", "backing-off"), n["health"]["cause"], n["health"]["status"], n["health"]["last_success"]) for n in j["names"] if n["name"] == "down"]')" \
        "[('down', True, 'http', 500, None)]" "down in /api/v1/cache"
    assert_eq "$(json_field '[(n["state"], n["health"]["state"]) for n in j["names"] if n["name"] == "gen"]')" \
        "[('online', 'ok')]" "gen in /api/v1/cache"
}
check "/api/v1/cache: the failing proxy's state and health, the healthy one online" t_api

_driver_ready() { [[ -s "$T/ready" ]] || ! pid_alive "$DRIVER_PID"; }
t_page() {
    local args=(--base "$S" --work "$T" --token-file "$STATE/admin-token"
        --ready-file "$T/ready" --go-file "$T/go")
    [[ -z "$SHOTS" ]] || args+=(--shots "$SHOTS")
    "$PYTHON" "$HERE/ui/ui_driver.py" "${args[@]}" health 2>"$T/driver.err" &
    DRIVER_PID=$!
    wait_until 90 _driver_ready || die "the page did not show down failing in time: $(cat "$T/driver.err")"
    [[ -s "$T/ready" ]] || { wait "$DRIVER_PID" || true; die "the page scenario failed: $(cat "$T/driver.err")"; }
    upstream_clear_faults
    http_get "$S/down/f.bin"
    assert_eq "$HTTP_STATUS" 200 "GET /down/f.bin after the fault was cleared"
    touch "$T/go"
    wait "$DRIVER_PID" || die "the page scenario failed: $(cat "$T/driver.err")"
    api_get "$S/api/v1/cache"
    assert_eq "$(json_field '[(n["state"], n["health"]["state"]) for n in j["names"] if n["name"] == "down"]')" \
        "[('online', 'ok')]" "down in /api/v1/cache after the recovery"
}
check "the page: down's badge says failing with cause and last success, gen's online; down turns online by itself" t_page

finish
