#!/bin/bash
# tests/integration/shim_cache_test.sh -- the shim's answers say how HTTP caches may keep them.
#
#     bash tests/integration/shim_cache_test.sh build/upstreamfs
#
# Asserts (upstreamfs serve on 127.0.0.1, generic and maven proxies on nginx):
#   a mutable file (generic): Cache-Control "public, max-age=N" with N what is left of the
#     proxy's --metadata-ttl (0 < N <= 120); a released file (a Maven release jar):
#     "public, max-age=31536000, immutable";
#   If-Modified-Since at or after Last-Modified gives 304, before it 200; If-None-Match wins
#     over If-Modified-Since; every 304 carries the ETag and the Cache-Control of the 200;
#   listings are "public, no-cache" with an ETag (304 when it matches); errors (404) and the API "no-store";
#   behind --htpasswd every answer is "private, ...", and with --cache-public "public, ...";
#   mount -o cache_public without listen= is refused, naming the rule.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
command -v curl >/dev/null || die "curl is missing"

SRV="$T/srv"
mkdir -p "$SRV/www" "$SRV/maven"
nginx_start "$SRV"
fixtures_generic "$SRV/www"
fixtures_maven "$SRV/maven"

upfs proxy create gen --type generic --url "${NGINX_URL}www/" --metadata-ttl 120 >/dev/null
upfs proxy create mvn --type maven --url "${NGINX_URL}maven/" >/dev/null

"$PYTHON" - "$T/htpasswd" <<'EOF' 2>/dev/null
import crypt, sys
with open(sys.argv[1], "w") as f:
    f.write("alice:%s\n" % crypt.crypt("alice-pw", crypt.mksalt(crypt.METHOD_SHA512)))
EOF

serve_start open
serve_start auth --htpasswd "$T/htpasswd"
serve_start shared --htpasswd "$T/htpasswd" --cache-public
S="http://127.0.0.1:$SERVE_PORT_open"
JAR="mvn/com/example/demo/1.0/demo-1.0.jar"

# max_age: the max-age of the last answer's Cache-Control
max_age() { header_of Cache-Control | sed -n 's/.*max-age=\([0-9]*\).*/\1/p'; }

t_freshness() {
    http_get "$S/gen/hello.txt"
    assert_eq "$HTTP_STATUS" 200 "GET of a generic file"
    [[ "$(header_of Cache-Control)" =~ ^public,\ max-age=[0-9]+$ ]] ||
        die "Cache-Control of a mutable file: '$(header_of Cache-Control)'"
    local age
    age="$(max_age)"
    ((age > 0 && age <= 120)) || die "max-age of a file fresh for 120 s: $age"
    http_get "$S/$JAR"
    assert_eq "$HTTP_STATUS" 200 "GET of a Maven release jar"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/maven" com/example/demo/1.0/demo-1.0.jar)"
    assert_eq "$(header_of Cache-Control)" "public, max-age=31536000, immutable" \
        "Cache-Control of a released file"
    http_req HEAD "$S/$JAR"
    assert_eq "$(header_of Cache-Control)" "public, max-age=31536000, immutable" \
        "Cache-Control of a HEAD"
}
check "freshness: mutable files for what is left of their TTL, released files a year" t_freshness

t_conditional() {
    local lm etag
    http_get "$S/$JAR"
    lm="$(header_of Last-Modified)"
    etag="$(header_of ETag)"
    [[ -n "$lm" && -n "$etag" ]] || die "no validators: $HEADERS"
    http_get "$S/$JAR" -H "If-Modified-Since: $lm"
    assert_eq "$HTTP_STATUS" 304 "If-Modified-Since = Last-Modified"
    assert_eq "$(header_of ETag)" "$etag" "ETag of the 304"
    assert_eq "$(header_of Cache-Control)" "public, max-age=31536000, immutable" \
        "Cache-Control of the 304"
    http_get "$S/$JAR" -H "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"
    assert_eq "$HTTP_STATUS" 200 "If-Modified-Since before Last-Modified"
    http_get "$S/$JAR" -H "If-Modified-Since: $lm" -H 'If-None-Match: "sha256:00"'
    assert_eq "$HTTP_STATUS" 200 "If-None-Match that does not match wins over If-Modified-Since"
    http_get "$S/gen/hello.txt" -H "If-None-Match: $(curl -sI "$S/gen/hello.txt" | tr -d '\r' |
        awk 'tolower($1) == "etag:" { print $2 }')"
    assert_eq "$HTTP_STATUS" 304 "If-None-Match of a generic file"
    [[ "$(header_of Cache-Control)" =~ ^public,\ max-age=[0-9]+$ ]] ||
        die "Cache-Control of the generic 304: '$(header_of Cache-Control)'"
}
check "conditional requests: 304 with the 200's validators and Cache-Control" t_conditional

t_other_answers() {
    http_get "$S/gen/listing/"
    assert_eq "$HTTP_STATUS" 200 "listing"
    assert_eq "$(header_of Cache-Control)" "public, no-cache" "Cache-Control of a listing"
    local etag
    etag="$(header_of ETag)"
    [[ "$etag" =~ ^\"sha256:[0-9a-f]{64}\"$ ]] || die "ETag of a listing: '$etag'"
    http_get "$S/gen/listing/" -H "If-None-Match: $etag"
    assert_eq "$HTTP_STATUS" 304 "a listing revalidated with its ETag"
    http_get "$S/gen/no-such-file"
    assert_eq "$HTTP_STATUS" 404 "a missing file"
    assert_eq "$(header_of Cache-Control)" "no-store" "Cache-Control of a 404"
    api_get "$S/api/v1/proxies"
    assert_eq "$HTTP_STATUS" 200 "the API"
    assert_eq "$(header_of Cache-Control)" "no-store" "Cache-Control of the API"
}
check "listings revalidate (ETag, 304); errors and the API are kept by nobody" t_other_answers

t_private() {
    http_get "http://127.0.0.1:$SERVE_PORT_auth/$JAR" -u alice:alice-pw
    assert_eq "$HTTP_STATUS" 200 "GET behind --htpasswd"
    assert_eq "$(header_of Cache-Control)" "private, max-age=31536000, immutable" \
        "Cache-Control behind --htpasswd"
    http_get "http://127.0.0.1:$SERVE_PORT_auth/gen/listing/" -u alice:alice-pw
    assert_eq "$(header_of Cache-Control)" "private, no-cache" "a listing behind --htpasswd"
    http_get "http://127.0.0.1:$SERVE_PORT_shared/$JAR" -u alice:alice-pw
    assert_eq "$HTTP_STATUS" 200 "GET behind --htpasswd --cache-public"
    assert_eq "$(header_of Cache-Control)" "public, max-age=31536000, immutable" \
        "Cache-Control with --cache-public"
    expect_fail_with "cache_public: need listen=HOST:PORT" \
        "$UPFS" --state "$STATE" mount "$T/nomnt" -o cache_public
}
check "behind --htpasswd answers are private unless --cache-public" t_private

finish
