#!/bin/bash
# tests/integration/ui_browser_test.sh -- the shim's web page, in headless Chromium.
#
#     bash tests/integration/ui_browser_test.sh build/upstreamfs
#     tools/screenshots.sh                      # refresh docs/*.png (runs this test with UI_SHOTS)
#
# Needs Debian's chromium and chromium-driver (tools/deps.sh --test installs them); the browser is
# driven over chromedriver's WebDriver protocol by ui/ui_driver.py (python3 standard library).
# Every address involved is 127.0.0.1; the docker URLs (127.0.0.1:1) are never contacted.
#
# Asserts:
#   the page's routes: GET and HEAD / and /ui/... answer with a Content-Security-Policy that
#     allows no inline code, assets revalidate (ETag, 304), unknown pages are 404, other
#     methods 405; the root page still links every proxy and registry (no script needed);
#   the page's API additions refuse cross-site requests (Origin, Content-Type);
#   in the browser (ui_driver.py full): the create-proxy form shows only the fields of the
#     chosen type and source; as a key is typed, each rule's message is the server's text
#     for that key; a POST with a bad key is refused with it and creates nothing; a docker
#     proxy with a custom URL and anonymous auth is created; a docker registry is made of two
#     proxies in an order chosen with "move up"; another registry's order is reversed on its
#     order page; the overview lists everything with state and cache use; the cache page pins
#     and (after a confirming second click) evicts a cached file, and shows an error;
#   the page is opened through its token URL (/ui/#token=TOKEN): without the token it shows the
#     API's 401; with it the token leaves the address bar for sessionStorage (no cookie) and
#     every later page of the tab works;
#   with `serve --htpasswd --admin alice`: 401 without credentials, and in the browser
#     (ui_driver.py auth) the page and all its API calls work with alice's Basic credentials;
#   hostile content (ui_driver.py hostile): an .html, an .svg and an XHTML .xml served by a generic proxy whose
#     scripts POST and DELETE /api/v1/proxies with the tab's token, opened in the tab that
#     holds the token, run no script and have an opaque origin; the CLI shows no proxy created
#     or deleted;
#   the CLI sees the results: `proxy list --json`, `registry show NAME --json`, `cache stats`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[[ $# -ge 1 && -x "$1" ]] || die "usage: $0 PATH/TO/upstreamfs (got '${1:-}')"
UPFS="$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/shim/shim_common.sh"
for c in /usr/bin/chromium /usr/bin/chromedriver curl openssl; do
    command -v "$c" >/dev/null || die "$c is missing (tools/deps.sh --test installs chromium, chromium-driver, curl and openssl)"
done
T="$(test_tmpdir)"
STATE="$T/state"
SHOTS="${UI_SHOTS:-$T/shots}"
[[ "$SHOTS" == /* ]] || SHOTS="$PWD/$SHOTS"
upfs() { "$UPFS" --state "$STATE" "$@"; }
field() { "$PYTHON" -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# ---- fixtures: a static file tree, proxies and a registry made with the CLI ------------------
mkdir -p "$T/files"
printf 'hello from the fixture\n' >"$T/files/hello.txt"
# Hostile content: each tries the admin API from the shim's origin with the tab's token.
HOSTILE_JS='var t = null; try { t = sessionStorage.getItem("upstreamfs-admin-token"); } catch (e) {}
var h = { "Content-Type": "application/json" }; if (t) h.Authorization = "Bearer " + t;
document.title = "ran " + (t ? "with" : "without") + " the token";
fetch("/api/v1/proxies", { method: "POST", headers: h, body: JSON.stringify({ key: "KEY", type: "generic", url: "http://127.0.0.1:1/" }) });
fetch("/api/v1/proxies/VICTIM", { method: "DELETE", headers: h });'
printf '<!DOCTYPE html><html><head><title>hostile</title></head><body><p>hostile</p><script>%s</script></body></html>\n' \
    "$(sed 's/KEY/pwned-html/; s/VICTIM/victim-html/' <<<"$HOSTILE_JS")" >"$T/files/evil.html"
printf '<svg xmlns="http://www.w3.org/2000/svg"><title>hostile</title><script>%s</script></svg>\n' \
    "$(sed 's/KEY/pwned-svg/; s/VICTIM/victim-svg/' <<<"$HOSTILE_JS")" >"$T/files/evil.svg"
printf '<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head><title>hostile</title></head><body><script>%s</script></body></html>\n' \
    "$(sed 's/KEY/pwned-xml/; s/VICTIM/victim-xml/' <<<"$HOSTILE_JS")" >"$T/files/evil.xml"
files_server_start "$T/files"

upfs proxy create hub --type docker >/dev/null
upfs proxy create gen --type generic --url "http://127.0.0.1:$FPORT/" >/dev/null
upfs proxy create gen2 --type generic --url "http://127.0.0.1:1/gen2" >/dev/null
upfs registry create pair --type generic --upstream gen --upstream gen2 >/dev/null

serve_start main
S="http://127.0.0.1:$SERVE_PORT_main"
http_get "$S/gen/hello.txt"
assert_eq "$HTTP_STATUS" 200 "GET /gen/hello.txt through the shim"
assert_eq "$BODY" "hello from the fixture" "content of gen/hello.txt"

# ---- routes and headers ----------------------------------------------------------------------
http_get "$S/"
assert_eq "$HTTP_STATUS" 200 "GET /"
assert_contains "$(header_of Content-Type)" "text/html" "Content-Type of /"
assert_contains "$(header_of Content-Security-Policy)" "script-src 'self'" "CSP of /"
assert_contains "$BODY" '<a href="gen/">gen/</a>' "the root page links the proxies"
assert_contains "$BODY" '<a href="pair/">pair/</a>' "the root page links the registries"
assert_contains "$BODY" 'id="upfs-config"' "the rules block of the page"
http_req HEAD "$S/"
assert_eq "$HTTP_STATUS" 200 "HEAD /"
for page in ui/proxies/new ui/registries/new ui/registries/pair/order ui/cache; do
    http_get "$S/$page"
    assert_eq "$HTTP_STATUS" 200 "GET /$page"
done
http_get "$S/ui/app.js"
assert_eq "$HTTP_STATUS" 200 "GET /ui/app.js"
assert_contains "$(header_of Content-Type)" "text/javascript" "Content-Type of app.js"
etag="$(header_of ETag)"
[[ -n "$etag" ]] || die "app.js has no ETag"
http_get "$S/ui/app.js" -H "If-None-Match: $etag"
assert_eq "$HTTP_STATUS" 304 "app.js revalidated with its ETag"
http_get "$S/ui/style.css"
assert_contains "$(header_of Content-Type)" "text/css" "Content-Type of style.css"
for bad in ui/nope ui/registries/1bad/order ui/registries/pair; do
    http_get "$S/$bad"
    assert_eq "$HTTP_STATUS" 404 "GET /$bad"
done
http_req POST "$S/" '{}'
assert_eq "$HTTP_STATUS" 405 "POST /"
api_req POST "$S/api/v1/cache/pin" '{"path":"gen/hello.txt"}' -H 'Origin: http://evil.example'
assert_eq "$HTTP_STATUS" 403 "a cross-origin pin"
HTTP_STATUS="$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST --data '{"path":"gen/hello.txt"}' \
    -H 'Content-Type: text/plain' -H @"$(admin_header_file)" "$S/api/v1/cache/evict")"
assert_eq "$HTTP_STATUS" 415 "an evict posted as text/plain"
api_req POST "$S/api/v1/validate/proxy" '{"key":"ok","type":"docker","secret_key":"x"}'
assert_eq "$HTTP_STATUS" 400 "dry run of anonymous auth with a secret"
assert_eq "$(json_field 'j["error"]["field"]')" secret_key "field of the dry run's error"
assert_eq "$(upfs proxy list --json | field 'len(j)')" 3 "the dry runs wrote nothing"
log "ok: routes, headers and the API additions"

# ---- in the browser --------------------------------------------------------------------------
"$PYTHON" "$HERE/ui/ui_driver.py" --base "$S" --work "$T" --shots "$SHOTS" --token-file "$STATE/admin-token" full ||
    { tail -n 30 "$T/chromedriver-full.log" >&2 2>/dev/null || true; die "the browser scenario failed (screenshots in $T when KEEP_TMP=1)"; }
log "ok: browser scenario (screenshots in $SHOTS)"
# every picture of the page docs/web-ui.md shows is one this scenario makes, or ui_health_test's
# ui-health.png (tools/screenshots.sh runs both and copies them to docs/), so none is drawn by
# hand or left behind when the page changes
shown="$(grep -o '](ui-[a-z-]*\.png)' "$HERE/../../docs/web-ui.md" | tr -d '()]' | sort -u | tr '\n' ' ')"
made="$( (cd "$SHOTS" && ls ui-*.png; echo ui-health.png) | sort -u | tr '\n' ' ')"
assert_eq "$shown" "$made" "the screenshots docs/web-ui.md shows and the ones the scenario makes"

# ---- the CLI sees what the page did -------------------------------------------------------------
J="$(upfs proxy list --json)"
assert_eq "$(field 'sorted(p["key"] for p in j)' <<<"$J")" "['gen', 'gen2', 'hub', 'mirror']" \
    "proxies after the browser scenario (the refused key made none)"
assert_eq "$(field '[(p["type"], p["source"], p["url"], p["auth"], p["access_key"], p["secret_set"]) for p in j if p["key"] == "mirror"][0]' <<<"$J")" \
    "('docker', 'custom', 'http://127.0.0.1:1/', 'anonymous', None, False)" "the proxy made in the browser"
assert_eq "$(upfs registry show all --json | field 'j["type"], j["upstreams"]')" \
    "('docker', ['hub', 'mirror'])" "registry all: docker, hub above mirror as ordered in the page"
assert_eq "$(upfs registry show pair --json | field 'j["upstreams"]')" "['gen2', 'gen']" \
    "registry pair after its order was reversed in the page"
assert_eq "$(upfs cache stats --json | field 'j["cache_objects"]')" 0 "cached objects after the page's evict"
log "ok: the CLI sees the proxy, the registries in their order, and the evicted cache"

# ---- with client authentication ----------------------------------------------------------------
PASS="pw-$RANDOM$RANDOM"
printf 'alice:%s\n' "$(openssl passwd -6 "$PASS")" >"$T/htpasswd"
serve_start auth --htpasswd "$T/htpasswd" --admin alice
A="http://127.0.0.1:$SERVE_PORT_auth"
http_get "$A/"
assert_eq "$HTTP_STATUS" 401 "GET / without credentials"
http_get "$A/api/v1/cache"
assert_eq "$HTTP_STATUS" 401 "GET /api/v1/cache without credentials"
http_get "$A/" -u "alice:$PASS"
assert_eq "$HTTP_STATUS" 200 "GET / with credentials"
"$PYTHON" "$HERE/ui/ui_driver.py" --base "$A" --work "$T" --user alice --password "$PASS" auth ||
    { tail -n 30 "$T/chromedriver-auth.log" >&2 2>/dev/null || true; die "the browser scenario with authentication failed"; }
assert_eq "$(upfs proxy show authed --json | field 'j["type"], j["url"]')" \
    "('generic', 'http://127.0.0.1:1/authed/')" "the proxy made in the browser behind --htpasswd"
log "ok: the page works behind --htpasswd with the browser's credentials"

serve_stop auth

# ---- hostile content in the operator's browser -------------------------------------------------
upfs proxy create victim-html --type generic --url "http://127.0.0.1:1/v1/" >/dev/null
upfs proxy create victim-svg --type generic --url "http://127.0.0.1:1/v2/" >/dev/null
upfs proxy create victim-xml --type generic --url "http://127.0.0.1:1/v3/" >/dev/null
BEFORE="$(upfs proxy list --json | field 'sorted(p["key"] for p in j)')"
http_get "$S/gen/evil.html"
assert_contains "$BODY" 'fetch("/api/v1/proxies"' "the hostile page is served as written"
"$PYTHON" "$HERE/ui/ui_driver.py" --base "$S" --work "$T" --token-file "$STATE/admin-token" hostile ||
    { tail -n 30 "$T/chromedriver-hostile.log" >&2 2>/dev/null || true; die "the hostile-content scenario failed"; }
assert_eq "$(upfs proxy list --json | field 'sorted(p["key"] for p in j)')" "$BEFORE" \
    "proxies after the hostile pages ran in the token's tab (none created, none deleted)"
if grep -E '"(POST|DELETE) /api/v1/proxies' "$SERVE_LOG_main" | grep -v 'status=40[13]' | grep -E 'pwned|victim'; then
    die "a hostile page's API call reached the API"
fi
log "ok: a proxy's .html and .svg run no script in the operator's browser; no proxy created or deleted"

serve_stop main
log "PASS"
