#!/bin/bash
# tests/integration/render_test.sh -- rendered documents: made once per source, served like files.
#
#     bash tests/integration/render_test.sh build/upstreamfs
#
# The upstream is tests/integration/npm/registry.py run with --full-only (it answers the full
# document whatever Accept asks, so the abbreviated form is upstreamfs's own). `upstreamfs serve`
# has an npm proxy "npm" with --metadata-ttl 1, so every request after a second revalidates.
# Renders are counted by upstreamfs_renders_total in /metrics.
#
# Asserts:
#   a package document asked again and again (also after its TTL, the registry answering 304) is
#     rendered once per variant: the same bytes, the same strong ETag "sha256:<sha256 of the
#     bytes>", X-Upstreamfs-Cache hit, no new render;
#   a changed upstream document is rendered anew exactly once, even for 6 clients at once, and
#     the new bytes carry the change and a new ETag;
#   304: If-None-Match with the ETag (or among others) is a 304 carrying the ETag and
#     "no-cache"; another tag is a 200; If-Modified-Since at Last-Modified is a 304, an hour
#     before it a 200; If-None-Match that does not match wins over a matching If-Modified-Since;
#   Range on a rendered document: 206 with exactly the asked bytes;
#   a document over the 64 MiB cap (UPSTREAM_DOC_MAX) is a 502 whose body names the cap;
#   the abbreviated document (npm's install Accept) has only the install fields, is smaller than
#     the full one, and `npm install` from it (through npm/accept_proxy.py, which asks for it in
#     npm 11's place) installs the packages with the fixture's bytes, resolved to the shim;
#   an npm registry's merged document (local package.json imported with `registry import`):
#     rendered once, and again once when the local document changes;
#   PyPI pages (tests/integration/pypi/build.py under lib/upstream.py): HTML and JSON rendered
#     once each, with their own ETags and 304s, and again (once) when the upstream page changes;
#     a page over the 64 MiB cap is a 502 whose body names the cap.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
command -v npm >/dev/null || die "npm is missing (tools/deps.sh --test installs it)"
source "$(dirname "${BASH_SOURCE[0]}")/npm/lab.sh"
CORGI='application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'

FIX="$T/fix"
"$PYTHON" "$REGISTRY_PY" build "$FIX"
npm_lab_start "$FIX" --full-only
reg_count() {
    "${CURL[@]}" "${REG_URL}_control/counts" |
        "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"
}

upfs proxy create npm --type npm --url "$REG_URL" --metadata-ttl 1 >/dev/null
serve_start main
S="http://127.0.0.1:$SERVE_PORT_main"

# npm 11 asks for full documents: tests/integration/npm/accept_proxy.py asks for the abbreviated
# ones in its place, so npm installs from what upstreamfs abbreviated
"${DIE_WITH_PARENT[@]}" "$PYTHON" "$(dirname "$REGISTRY_PY")/accept_proxy.py" "$S/npm/" \
    --port-file "$T/proxy.port" >/dev/null 2>"$T/proxy.log" &
PROXY_PID=$!
on_exit "kill $PROXY_PID 2>/dev/null; wait $PROXY_PID 2>/dev/null || true"
wait_until 10 test -s "$T/proxy.port" || die "accept_proxy did not start: $(cat "$T/proxy.log")"

"$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/pypi/build.py" "$T/pyrepo" >/dev/null
upstream_start "$T/pyrepo" --quiet

renders() { metric_of "$S/metrics" renders_total; }
etag_of_body() { printf '"sha256:%s"' "$(sha256_of "$T/body")"; }

# ---- render once, serve many -------------------------------------------------------------------
t_once() {
    local r0 etag sha i
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
    assert_eq "$HTTP_STATUS" 200 "first GET"
    etag="$(header_of ETag)"
    assert_eq "$etag" "$(etag_of_body)" "the ETag is the sha256 of the rendered bytes"
    assert_eq "$(header_of Cache-Control)" "public, no-cache" "Cache-Control"
    assert_eq "$(header_of Vary)" Accept "Vary"
    sha="$(sha256_of "$T/body")"
    r0="$(renders)"
    ((r0 >= 1)) || die "no render counted ($r0)"
    for i in 1 2 3; do
        http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
        assert_eq "$(header_of ETag)" "$etag" "ETag of GET $i"
        assert_eq "$(header_of X-Upstreamfs-Cache)" hit "X-Upstreamfs-Cache of GET $i"
        assert_sha256 "$T/body" "$sha"
    done
    sleep 1.3 # past the TTL: revalidated (the registry answers 304), not rendered again
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
    assert_eq "$(header_of ETag)" "$etag" "ETag after the revalidation"
    assert_sha256 "$T/body" "$sha"
    (($(reg_count "GET /upfs-demo full") >= 2)) || die "the document was not revalidated"
    assert_eq "$(renders)" "$r0" "renders after 5 GETs of an unchanged document"
}
check --setup "an unchanged document is rendered once, served with its digest as ETag" t_once

t_changed() {
    local r0 old new i
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
    old="$(header_of ETag)"
    r0="$(renders)"
    "$PYTHON" - "$FIX/docs/upfs-demo.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["description"] = "changed upstream"
json.dump(d, open(sys.argv[1], "w"), indent=2)
EOF
    sleep 1.3
    for i in 1 2 3 4 5 6; do
        "${CURL[@]}" -o "$T/par$i" -H 'Accept: application/json' "$S/npm/upfs-demo" &
    done
    wait
    # a client may be answered the previous copy while the revalidation runs (stale wait)
    wait_until 10 grep -q "changed upstream" <("${CURL[@]}" -H 'Accept: application/json' "$S/npm/upfs-demo") ||
        die "the change never reached the shim's document"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
    new="$(header_of ETag)"
    assert_ne "$new" "$old" "the ETag after the change"
    assert_eq "$new" "$(etag_of_body)" "the new ETag is the new bytes' sha256"
    assert_eq "$(json_field "j['description']")" "changed upstream" "the change is served"
    assert_eq "$(renders)" "$((r0 + 1))" "renders after the change (7 clients)"
}
check "a changed upstream document is rendered anew, once" t_changed

# ---- conditional requests ----------------------------------------------------------------------
t_304() {
    local etag lm
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
    etag="$(header_of ETag)"
    lm="$(header_of Last-Modified)"
    [[ -n "$lm" ]] || die "no Last-Modified"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json' -H "If-None-Match: $etag"
    assert_eq "$HTTP_STATUS" 304 "If-None-Match with the ETag"
    assert_eq "$(header_of ETag)" "$etag" "the 304's ETag"
    assert_eq "$(header_of Cache-Control)" "public, no-cache" "the 304's Cache-Control"
    [[ ! -s "$T/body" ]] || die "a 304 with a body"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json' -H "If-None-Match: \"x\", $etag"
    assert_eq "$HTTP_STATUS" 304 "If-None-Match listing the ETag"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json' -H 'If-None-Match: "sha256:00"'
    assert_eq "$HTTP_STATUS" 200 "If-None-Match with another tag"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json' -H "If-Modified-Since: $lm"
    assert_eq "$HTTP_STATUS" 304 "If-Modified-Since at Last-Modified"
    local before
    before="$(date -u -R -d "$lm - 1 hour" | sed 's/+0000/GMT/')"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json' -H "If-Modified-Since: $before"
    assert_eq "$HTTP_STATUS" 200 "If-Modified-Since an hour before"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json' -H "If-Modified-Since: $lm" \
        -H 'If-None-Match: "sha256:00"'
    assert_eq "$HTTP_STATUS" 200 "If-None-Match wins over If-Modified-Since"
    # the abbreviated variant has its own ETag: the full one's is no match for it
    http_get "$S/npm/upfs-demo" -H "Accept: $CORGI" -H "If-None-Match: $etag"
    assert_eq "$HTTP_STATUS" 200 "the full document's ETag against the abbreviated one"
}
check "304s: If-None-Match, If-Modified-Since, precedence, per variant" t_304

t_range() {
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
    cp "$T/body" "$T/whole"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json' -H 'Range: bytes=10-29'
    assert_eq "$HTTP_STATUS" 206 "Range on a rendered document"
    cmp -s "$T/body" <(tail -c +11 "$T/whole" | head -c 20) || die "the range's bytes differ"
}
check "Range on a rendered document" t_range

# ---- the abbreviated document ------------------------------------------------------------------
t_abbreviated() {
    local full abbr
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
    full="$(stat -c %s "$T/body")"
    http_get "$S/npm/upfs-demo" -H "Accept: $CORGI"
    abbr="$(stat -c %s "$T/body")"
    assert_eq "$(json_field "sorted(j)")" "['dist-tags', 'name', 'versions']" \
        "top-level members of the abbreviated document (the fixture has no time.modified)"
    assert_eq "$(json_field "sorted(j['versions']['1.0.0'])")" \
        "['dependencies', 'dist', 'name', 'version']" "members of a version"
    ((abbr * 4 < full * 3)) || die "the abbreviated document ($abbr bytes) is not smaller than the full one ($full)"
    mkdir -p "$T/p1" "$T/home"
    : >"$T/npmrc"
    printf '{"name":"proj","version":"1.0.0","private":true}\n' >"$T/p1/package.json"
    run_capture with_timeout 180 env -i PATH="$PATH" HOME="$T/home" \
        npm --prefix "$T/p1" --registry "http://127.0.0.1:$(cat "$T/proxy.port")/" \
        --cache "$T/p1.cache" --userconfig "$T/npmrc" --no-update-notifier --no-audit --no-fund \
        --loglevel warn install upfs-demo
    ((RC == 0)) || die "npm install upfs-demo failed ($RC): $ERR"
    local want
    want="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["index_js"][sys.argv[2]])' "$FIX/expect.json" "@upfs/util@1.1.0")"
    assert_sha256 "$T/p1/node_modules/@upfs/util/index.js" "$want"
    assert_eq "$(cd "$T/p1" && env -i PATH="$PATH" node -e "console.log(require('upfs-demo'))")" \
        "demo @upfs/util 1.1.0" "the installed package runs"
    # the dependency's document was asked for by npm alone, and only in its abbreviated form
    grep -q "rendered npm/@upfs/util/.abbreviated.json" "$SERVE_LOG_main" ||
        die "npm's install did not read the abbreviated document of @upfs/util"
    ! grep -q "rendered npm/@upfs/util/package.json" "$SERVE_LOG_main" ||
        die "the full document of @upfs/util was rendered"
    "$PYTHON" -c 'import json,sys; l=json.load(open(sys.argv[1]))["packages"]; assert l["node_modules/@upfs/util"]["resolved"].startswith(sys.argv[2]), l' \
        "$T/p1/package-lock.json" "$S/npm/" || die "the lock file does not resolve to the shim"
}
check "the abbreviated document: install fields only, smaller, npm install works from it" t_abbreviated

# ---- the size cap ------------------------------------------------------------------------------
t_cap() {
    "$PYTHON" - "$FIX/docs/upfs-huge.json" <<'EOF'
import json, sys
doc = {"name": "upfs-huge", "readme": "x" * (65 << 20), "dist-tags": {"latest": "1.0.0"},
       "versions": {"1.0.0": {"name": "upfs-huge", "version": "1.0.0"}}}
json.dump(doc, open(sys.argv[1], "w"))
EOF
    http_get "$S/npm/upfs-huge" -H 'Accept: application/json'
    rm -f "$FIX/docs/upfs-huge.json"
    assert_eq "$HTTP_STATUS" 502 "a document over the cap"
    assert_contains "$BODY" "npm/upfs-huge: the document is larger than the 64 MiB cap on documents" \
        "the answer names the cap"
}
check "a document over the 64 MiB cap: 502 naming the cap" t_cap

# ---- a registry's merged document ---------------------------------------------------------------
t_merged() {
    local r0 e1 e2
    upfs registry create npmall --type npm --upstream npm >/dev/null
    mkdir -p "$T/loc1"
    printf '{"name":"upfs-demo","versions":{"9.0.0":{"name":"upfs-demo","version":"9.0.0"}}}\n' \
        >"$T/loc1/package.json"
    upfs registry import npmall "$T/loc1" --as upfs-demo >/dev/null
    r0="$(renders)"
    wait_until 10 eval '[[ "$("${CURL[@]}" -o /dev/null -w "%{http_code}" -H "Accept: application/json" "$S/npmall/upfs-demo")" == 200 ]]' ||
        die "the registry is not served"
    http_get "$S/npmall/upfs-demo" -H 'Accept: application/json'
    e1="$(header_of ETag)"
    assert_eq "$(json_field "sorted(j['versions'])")" "['1.0.0', '9.0.0']" "the merged versions"
    http_get "$S/npmall/upfs-demo" -H 'Accept: application/json'
    assert_eq "$(header_of ETag)" "$e1" "the merged document again"
    assert_eq "$(renders)" "$((r0 + 1))" "renders of an unchanged merged document"
    mkdir -p "$T/loc2"
    printf '{"name":"upfs-demo","versions":{"9.1.0":{"name":"upfs-demo","version":"9.1.0"}}}\n' \
        >"$T/loc2/package.json"
    upfs registry import npmall "$T/loc2" --as upfs-demo >/dev/null
    http_get "$S/npmall/upfs-demo" -H 'Accept: application/json'
    e2="$(header_of ETag)"
    assert_ne "$e2" "$e1" "the ETag once the local document changed"
    assert_eq "$(json_field "sorted(j['versions'])")" "['1.0.0', '9.1.0']" "the new local version"
    assert_eq "$(renders)" "$((r0 + 2))" "renders after the local document changed"
}
check "a registry's merged document: rendered once, again when its local content changes" t_merged

# ---- PyPI pages ----------------------------------------------------------------------------------
t_pypi() {
    local r0 html json
    upfs proxy create py --type pypi --url "$UPSTREAM_URL" --metadata-ttl 1 >/dev/null
    r0="$(renders)"
    wait_until 10 eval '[[ "$("${CURL[@]}" -o /dev/null -w "%{http_code}" "$S/py/simple/upfs-demo/")" == 200 ]]' ||
        die "the pypi proxy is not served"
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: text/html'
    html="$(header_of ETag)"
    assert_eq "$html" "$(etag_of_body)" "the HTML page's ETag is its sha256"
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: application/vnd.pypi.simple.v1+json'
    json="$(header_of ETag)"
    assert_ne "$json" "$html" "the JSON page has its own ETag"
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: application/vnd.pypi.simple.v1+json' \
        -H "If-None-Match: $json"
    assert_eq "$HTTP_STATUS" 304 "If-None-Match on the JSON page"
    sleep 1.3
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: text/html'
    assert_eq "$(header_of ETag)" "$html" "the HTML page after its TTL, unchanged upstream"
    assert_eq "$(renders)" "$((r0 + 2))" "renders of two variants of an unchanged page (the first GET included)"
    # a new file on the page (a comment alone would change nothing the page is read for)
    sed -i 's#</body>#<a href="../../packages/upfs_demo-1.1.0.tar.gz">upfs_demo-1.1.0.tar.gz</a><br/>\n</body>#' \
        "$T/pyrepo/simple/upfs-demo/index.html"
    sleep 1.3
    "${CURL[@]}" -o /dev/null -H 'Accept: text/html' "$S/py/simple/upfs-demo/" # may be the stale copy
    wait_until 10 eval '[[ "$("${CURL[@]}" -sD - -o /dev/null -H "Accept: text/html" "$S/py/simple/upfs-demo/" | tr -d "\r" | awk -F": " "tolower(\$1) == \"etag\" { print \$2 }")" != "$html" ]]' ||
        die "the changed page never got a new ETag"
    assert_eq "$(renders)" "$((r0 + 3))" "renders after the page changed (HTML asked for only)"
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: text/html'
    assert_contains "$BODY" "upfs_demo-1.1.0.tar.gz" "the new file on the rendered page"
}
check "PyPI pages: rendered once per variant, again once when the page changes, 304" t_pypi

t_pypi_cap() {
    mkdir -p "$T/pyrepo/simple/upfs-huge"
    "$PYTHON" - "$T/pyrepo/simple/upfs-huge/index.html" <<'EOF2'
import sys
row = '<a href="../../packages/upfs_huge-%d.tar.gz">upfs_huge-%d.tar.gz</a><br/>\n'
with open(sys.argv[1], "w") as f:
    f.write("<html><body>\n")
    n = 0
    while n < (65 << 20):
        line = "".join(row % (i, i) for i in range(n // 70, n // 70 + 1000))
        f.write(line)
        n += len(line)
    f.write("</body></html>\n")
EOF2
    http_get "$S/py/simple/upfs-huge/" -H 'Accept: text/html'
    rm -rf "$T/pyrepo/simple/upfs-huge"
    assert_eq "$HTTP_STATUS" 502 "a PyPI page over the cap"
    assert_contains "$BODY" "the document is larger than the 64 MiB cap on documents" \
        "the answer names the cap"
}
check "a PyPI page over the 64 MiB cap: 502 naming the cap" t_pypi_cap

finish
