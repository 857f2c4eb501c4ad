#!/bin/bash
# tests/integration/shim_security_test.sh -- the shim's access rules (docs/SECURITY.md, issue 12).
#
#     bash tests/integration/shim_security_test.sh build/upstreamfs
#
# Asserts (each fails against the shim before these rules):
#   the admin token: the first serve makes STATEDIR/admin-token (0600, 64 hex digits) and keeps
#     it across restarts; serve prints the page's address with the token on a terminal only
#     (a pseudo-terminal sees it; its log, a file, says where the token is and never holds it);
#   /api/v1 (proxies, registries, cache, validate) without the token: 401 with
#     WWW-Authenticate: Bearer and a body that says how to get the token; a wrong token 401;
#     with it 200/201; nothing was created by the refused calls;
#   with --htpasswd: an --admin user uses the API, another user gets 403 but pulls, nobody
#     gets 401; --admin without --htpasswd, or naming a user not in the file, exits 2;
#   Host: evil.example (DNS rebinding) gets 421 on the page, the API (token or not), path
#     routes, /v2 and /metrics, while /healthz answers; IP literals, localhost and a
#     --public-name are answered; a bad --public-name exits 2;
#   Origin: a POST and a DELETE with the token but a foreign Origin (or "null") are 403 and
#     change nothing; the server's own Origin works;
#   GET //evil.example/dir (a proxy named evil.example) redirects to /evil.example/dir/, never
#     to //evil.example/... (off-origin);
#   content is inert: files (.html, .svg), listings, errors and /v2 answers carry
#     "Content-Security-Policy: sandbox; default-src 'none'" and nosniff; the web page keeps
#     its own policy (no sandbox, no 'unsafe-inline');
#   mount -o listen=,htpasswd=,admin=: the same rules on the mount's shim, and mount prints
#     the page's address (without the token: its stdout is a file here).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
command -v curl >/dev/null || die "curl is missing"

# ---- fixtures: a file tree with active content, served by python on 127.0.0.1 -----------------
mkdir -p "$T/files/dir"
printf '<!DOCTYPE html><script>document.title="ran"</script>\n' >"$T/files/dir/page.html"
printf '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n' >"$T/files/dir/pic.svg"
printf 'plain\n' >"$T/files/dir/note.txt"
files_server_start "$T/files"
upfs proxy create gen --type generic --url "http://127.0.0.1:$FPORT/" >/dev/null
upfs proxy create evil.example --type generic --url "http://127.0.0.1:$FPORT/" >/dev/null
upfs proxy create hub --type docker --source custom --url "http://127.0.0.1:1/" >/dev/null

serve_start main
S="http://127.0.0.1:$SERVE_PORT_main"
TOKEN="$(cat "$STATE/admin-token" 2>/dev/null || true)" # checked in t_token_file
keys() { upfs proxy list --json | "$PYTHON" -c 'import json,sys; print(" ".join(sorted(p["key"] for p in json.load(sys.stdin))))'; }
KEYS0="$(keys)"
serve_start second

# ---- the admin token ------------------------------------------------------------------------
t_token_file() {
    assert_eq "$(stat -c %a "$STATE/admin-token")" 600 "mode of admin-token"
    [[ "$TOKEN" =~ ^[0-9a-f]{64}$ ]] || die "admin-token holds no 64-hex-digit token"
    assert_contains "$(cat "$SERVE_LOG_main")" "/ui/#token=TOKEN with TOKEN from \"$STATE/admin-token\"" \
        "serve's output (a file) says where the token is"
    grep -qF "$TOKEN" "$SERVE_LOG_main" && die "the token is in serve's log" || true
    # a second server on the same state (started above) read the same token
    assert_eq "$(cat "$STATE/admin-token")" "$TOKEN" "the token after a second serve"
    assert_contains "$(cat "$SERVE_LOG_second")" "with TOKEN from" "the second serve's output"
    # a token file others can read is refused
    cp -p "$STATE/admin-token" "$T/token.bak"
    chmod 644 "$STATE/admin-token"
    expect_fail_with "can be read by others (mode 644)" "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$(free_port)"
    cp -p "$T/token.bak" "$STATE/admin-token"
}
check "admin-token: 0600, 64 hex digits, kept across servers, never in a log, 0644 refused" t_token_file
serve_stop second

t_token_terminal() {
    # on a terminal serve prints the page's address with the token
    "$PYTHON" - "$UPFS" "$STATE" "$(free_port)" "$TOKEN" <<'EOF'
import os, pty, select, signal, sys, time
upfs, state, port, token = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execv(upfs, [upfs, "--state", state, "serve", "--listen", "127.0.0.1:" + port])
out, deadline = b"", time.time() + 15
want = ("http://127.0.0.1:%s/ui/#token=%s" % (port, token)).encode()
while want not in out and time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.5)
    if r:
        try:
            out += os.read(fd, 4096)
        except OSError:
            break
os.kill(pid, signal.SIGTERM)
os.waitpid(pid, 0)
sys.exit(0 if want in out else "serve printed no token URL on its terminal: %r" % out[-500:])
EOF
}
check "serve prints http://HOST:PORT/ui/#token=TOKEN on a terminal" t_token_terminal

t_api_needs_admin() {
    local u
    for u in "GET /api/v1/proxies" "GET /api/v1/proxies/gen" "GET /api/v1/registries" \
        "GET /api/v1/cache" "DELETE /api/v1/proxies/gen"; do
        http_req "${u% *}" "$S${u#* }"
        assert_eq "$HTTP_STATUS" 401 "$u without the token"
    done
    assert_eq "$(header_of WWW-Authenticate)" 'Bearer realm="upstreamfs admin API"' "the challenge"
    assert_contains "$(json_field 'j["error"]["message"]')" "the token in \"$STATE/admin-token\"" "the 401 says where the token is"
    assert_contains "$(json_field 'j["error"]["message"]')" "$S/ui/#token=TOKEN" "the 401 names the page's address"
    http_req POST "$S/api/v1/proxies" "{\"key\":\"sneaky\",\"type\":\"generic\",\"url\":\"http://127.0.0.1:1/\"}"
    assert_eq "$HTTP_STATUS" 401 "POST /api/v1/proxies without the token"
    http_req POST "$S/api/v1/cache/evict" '{"path":"gen/dir/note.txt"}'
    assert_eq "$HTTP_STATUS" 401 "POST /api/v1/cache/evict without the token"
    http_req POST "$S/api/v1/validate/proxy" '{"key":"ok","type":"docker"}'
    assert_eq "$HTTP_STATUS" 401 "POST /api/v1/validate/proxy without the token"
    http_get "$S/api/v1/proxies" -H "Authorization: Bearer ${TOKEN%?}0"
    [[ "${TOKEN: -1}" != 0 ]] || http_get "$S/api/v1/proxies" -H "Authorization: Bearer ${TOKEN%?}1"
    assert_eq "$HTTP_STATUS" 401 "a wrong token"
    http_get "$S/api/v1/proxies" -H "Authorization: Bearer $TOKEN$TOKEN"
    assert_eq "$HTTP_STATUS" 401 "a longer token"
    assert_eq "$(keys)" "$KEYS0" "proxies after the refused calls"
    api_get "$S/api/v1/proxies"
    assert_eq "$HTTP_STATUS" 200 "GET /api/v1/proxies with the token"
    api_req POST "$S/api/v1/proxies" "{\"key\":\"made\",\"type\":\"generic\",\"url\":\"http://127.0.0.1:1/\"}"
    assert_eq "$HTTP_STATUS" 201 "POST /api/v1/proxies with the token"
    api_req DELETE "$S/api/v1/proxies/made"
    assert_eq "$HTTP_STATUS" 204 "DELETE with the token"
    # pulls stay open on loopback
    http_get "$S/gen/dir/note.txt"
    assert_eq "$HTTP_STATUS" 200 "a pull without credentials"
    http_get "$S/metrics"
    assert_eq "$HTTP_STATUS" 200 "/metrics without credentials (the pull rule)"
}
check "/api/v1 needs the admin token: 401 (saying how to get it) without, works with it; pulls open" t_api_needs_admin

# ---- --htpasswd and --admin ------------------------------------------------------------------
"$PYTHON" - "$T/htpasswd" <<'EOF' 2>/dev/null
import crypt, sys
with open(sys.argv[1], "w") as f:
    f.write("alice:%s\n" % crypt.crypt("alice-pw", crypt.mksalt(crypt.METHOD_SHA512)))
    f.write("bob:%s\n" % crypt.crypt("bob-pw", crypt.mksalt(crypt.METHOD_SHA512)))
EOF
t_admin_users() {
    local p
    p="$(free_port)"
    expect_fail_with "admin: names an htpasswd user: give --htpasswd FILE with it" \
        "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$p" --admin alice
    assert_eq "$RC" 2 "exit status of --admin without --htpasswd"
    expect_fail_with 'admin: "carol" is not a user of the htpasswd file' \
        "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$p" --htpasswd "$T/htpasswd" --admin carol
    assert_eq "$RC" 2 "exit status of an --admin user not in the file"
    local A="http://127.0.0.1:$SERVE_PORT_auth"
    http_get "$A/api/v1/proxies" -u alice:alice-pw
    assert_eq "$HTTP_STATUS" 200 "the API for the --admin user"
    http_req POST "$A/api/v1/proxies" "{\"key\":\"bybob\",\"type\":\"generic\",\"url\":\"http://127.0.0.1:1/\"}" -u bob:bob-pw
    assert_eq "$HTTP_STATUS" 403 "a POST by a user who is not --admin"
    assert_eq "$(json_field 'j["error"]["field"]')" authorization "field of the 403"
    http_get "$A/gen/dir/note.txt" -u bob:bob-pw
    assert_eq "$HTTP_STATUS" 200 "bob pulls"
    http_get "$A/gen/dir/note.txt"
    assert_eq "$HTTP_STATUS" 401 "a pull without credentials behind --htpasswd"
    assert_eq "$(header_of WWW-Authenticate)" 'Basic realm="upstreamfs"' "the Basic challenge"
    http_get "$A/api/v1/proxies"
    assert_eq "$HTTP_STATUS" 401 "the API without credentials behind --htpasswd"
    api_get "$A/api/v1/proxies"
    assert_eq "$HTTP_STATUS" 200 "the API with the token behind --htpasswd"
    upfs proxy show bybob >/dev/null 2>&1 && die "bob created a proxy" || true
}
serve_start auth --htpasswd "$T/htpasswd" --admin alice
check "--admin: the admin user works, another user 403 (pulls 200), nobody 401; bad --admin exits 2" t_admin_users
serve_stop auth

# ---- Host ------------------------------------------------------------------------------------
t_host() {
    local r
    for r in / /ui/cache /gen/dir/note.txt /v2/ /metrics /api/v1/proxies; do
        api_get "$S$r" -H "Host: evil.example:$SERVE_PORT_main"
        assert_eq "$HTTP_STATUS" 421 "$r with Host evil.example"
    done
    assert_eq "$BODY" "misdirected request: this server answers Host names that are IP addresses, localhost or given with --public-name (got \"evil.example:$SERVE_PORT_main\")" "the 421's body"
    http_get "$S/healthz" -H "Host: evil.example"
    assert_eq "$HTTP_STATUS" 200 "/healthz with any Host"
    for h in "localhost:$SERVE_PORT_main" "LocalHost" "127.0.0.1" "[::1]:$SERVE_PORT_main" "10.1.2.3:80"; do
        api_get "$S/api/v1/proxies" -H "Host: $h"
        assert_eq "$HTTP_STATUS" 200 "Host $h"
    done
    for h in "cache.example" "localhost.evil.example" "127.0.0.1.evil.example" "localhost:80x" "[::1" "[evil]:80"; do
        api_get "$S/gen/dir/note.txt" -H "Host: $h"
        assert_eq "$HTTP_STATUS" 421 "Host '$h'"
    done
    expect_fail_with "public_name: must be a DNS name" "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$(free_port)" --public-name 'a/b'
    assert_eq "$RC" 2 "exit status of a bad --public-name"
    local N="http://127.0.0.1:$SERVE_PORT_named"
    http_get "$N/gen/dir/note.txt" -H "Host: cache.example:$SERVE_PORT_named"
    assert_eq "$HTTP_STATUS" 200 "a --public-name"
    http_get "$N/gen/dir/note.txt" -H "Host: mirror.example"
    assert_eq "$HTTP_STATUS" 200 "a --public-name in another case"
    http_get "$N/gen/dir/note.txt" -H "Host: evil.example"
    assert_eq "$HTTP_STATUS" 421 "another name with --public-name given"
}
serve_start named --public-name cache.example --public-name Mirror.Example
check "Host: 421 unless an IP literal, localhost or a --public-name; /healthz answers any Host" t_host
serve_stop named

# ---- Origin ----------------------------------------------------------------------------------
t_origin() {
    local o
    for o in "http://evil.example" "null" "http://127.0.0.1:1" "https://127.0.0.1:$SERVE_PORT_main"; do
        api_req POST "$S/api/v1/proxies" "{\"key\":\"cross\",\"type\":\"generic\",\"url\":\"http://127.0.0.1:1/\"}" -H "Origin: $o"
        assert_eq "$HTTP_STATUS" 403 "a POST from Origin $o"
        assert_eq "$(json_field 'j["error"]["field"]')" origin "field of the 403"
        api_req DELETE "$S/api/v1/proxies/gen" "" -H "Origin: $o"
        assert_eq "$HTTP_STATUS" 403 "a DELETE from Origin $o"
    done
    assert_eq "$(keys)" "$KEYS0" "proxies after the cross-origin calls"
    api_req POST "$S/api/v1/proxies" "{\"key\":\"same\",\"type\":\"generic\",\"url\":\"http://127.0.0.1:1/\"}" -H "Origin: $S"
    assert_eq "$HTTP_STATUS" 201 "a POST from the server's own Origin"
    api_req DELETE "$S/api/v1/proxies/same" "" -H "Origin: $S"
    assert_eq "$HTTP_STATUS" 204 "a DELETE from the server's own Origin"
}
check "Origin: state-changing requests from another origin are 403 and change nothing" t_origin

# ---- no redirect leaves the origin -----------------------------------------------------------
t_redirect() {
    http_get "$S//evil.example/dir"
    assert_eq "$HTTP_STATUS" 301 "GET //evil.example/dir (a directory of proxy evil.example)"
    assert_eq "$(header_of Location)" /evil.example/dir/ "Location"
    http_get "$S///evil.example/dir"
    assert_eq "$(header_of Location)" /evil.example/dir/ "Location of ///evil.example/dir"
    http_get "$S/evil.example/dir"
    assert_eq "$(header_of Location)" /evil.example/dir/ "Location of /evil.example/dir"
    # curl follows it and stays here
    assert_eq "$("${CURL[@]}" -L --max-redirs 3 -o /dev/null -w '%{url_effective}' "$S//evil.example/dir")" \
        "$S/evil.example/dir/" "where following the redirect ends"
}
check "GET //evil.example/dir redirects within the shim, never off-origin" t_redirect

# ---- served content is inert -----------------------------------------------------------------
SANDBOX="sandbox; default-src 'none'"
t_inert() {
    local r
    for r in gen/dir/page.html gen/dir/pic.svg gen/dir/note.txt gen/dir/ gen/nonexistent v2/ v2/hub/x/manifests/latest; do
        http_get "$S/$r"
        assert_eq "$(header_of Content-Security-Policy)" "$SANDBOX" "CSP of /$r ($HTTP_STATUS)"
        assert_eq "$(header_of X-Content-Type-Options)" nosniff "nosniff of /$r"
    done
    http_req HEAD "$S/gen/dir/page.html"
    assert_eq "$(header_of Content-Security-Policy)" "$SANDBOX" "CSP of HEAD page.html"
    http_get "$S/gen/dir/page.html" -H 'Range: bytes=0-3'
    assert_eq "$HTTP_STATUS" 206 "a range of page.html"
    assert_eq "$(header_of Content-Security-Policy)" "$SANDBOX" "CSP of a 206"
    for r in "" ui/ ui/proxies/new ui/app.js ui/style.css; do
        http_get "$S/$r"
        assert_contains "$(header_of Content-Security-Policy)" "script-src 'self'" "the page's own CSP on /$r"
        [[ "$(header_of Content-Security-Policy)" != *unsafe-inline* && "$(header_of Content-Security-Policy)" != *sandbox* ]] ||
            die "the page's CSP on /$r: $(header_of Content-Security-Policy)"
        assert_eq "$(grep -ci '^content-security-policy:' <<<"$HEADERS")" 1 "one CSP header on /$r"
    done
}
check "content (files, listings, errors, /v2) carries CSP sandbox and nosniff; the page its own CSP" t_inert

# ---- the mount's shim --------------------------------------------------------------------------
t_mount() {
    local M="$T/mnt" p out
    p="$(free_port)"
    out="$(with_timeout 30 "$UPFS" --state "$STATE" mount "$M" -o "listen=127.0.0.1:$p,htpasswd=$T/htpasswd,admin=alice,public_name=cache.example")" ||
        die "mount failed"
    assert_eq "$out" "upstreamfs: the web page (admin): http://127.0.0.1:$p/ui/#token=TOKEN with TOKEN from \"$STATE/admin-token\"" \
        "what mount prints (stdout is no terminal here)"
    wait_for_port "$p" 10 || die "the mount's shim is not listening"
    http_get "http://127.0.0.1:$p/api/v1/proxies" -u bob:bob-pw
    assert_eq "$HTTP_STATUS" 403 "the mount's API for a user who is not admin="
    http_get "http://127.0.0.1:$p/api/v1/proxies" -u alice:alice-pw
    assert_eq "$HTTP_STATUS" 200 "the mount's API for admin=alice"
    api_get "http://127.0.0.1:$p/api/v1/proxies"
    assert_eq "$HTTP_STATUS" 200 "the mount's API with the token"
    http_get "http://127.0.0.1:$p/gen/dir/page.html" -u bob:bob-pw -H "Host: evil.example"
    assert_eq "$HTTP_STATUS" 421 "the mount's shim with Host evil.example"
    http_get "http://127.0.0.1:$p/gen/dir/page.html" -u bob:bob-pw -H "Host: cache.example"
    assert_eq "$HTTP_STATUS" 200 "the mount's shim with its public_name"
    assert_eq "$(header_of Content-Security-Policy)" "$SANDBOX" "CSP on the mount's shim"
    upfs_unmount "$M"
    expect_fail_with "need listen=HOST:PORT" "$UPFS" --state "$STATE" mount "$M" -o admin=alice
}
mkdir -p "$T/mnt"
upfs_register_mount "$T/mnt"
check "mount -o listen=,htpasswd=,admin=,public_name=: the same rules, the page's address printed" t_mount

serve_stop main
finish
