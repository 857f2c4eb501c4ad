#!/bin/bash
# tests/integration/shim_http_test.sh -- the HTTP shim's path routes against nginx fixtures.
#
#     bash tests/integration/shim_http_test.sh build/upstreamfs
#
# Asserts (upstreamfs serve on 127.0.0.1, generic/maven/helm proxies on nginx):
#   generic files read with the right sha256; Range gives 206 with the right bytes and
#     Content-Range (suffix and open ranges too), 416 past the end; HEAD gives Content-Length,
#     ETag "sha256:<hex>" (the file's sha256), Last-Modified, and starts no download;
#     If-None-Match gives 304; each file is fetched from nginx once;
#   directories: HTML index pages with relative links that resolve, a 301 to add the slash;
#   Maven: demo-1.0.jar and its .sha1; bad-1.0.jar (wrong .sha1) is a 502 naming the cause;
#   Helm: index.yaml's chart URLs all resolve (relative to /<key>/index.yaml) back to the
#     shim, and following them yields each chart with the sha256 index.yaml names; gamma's
#     wrong digest is a 502;
#   hostile targets (.., %2e%2e, %2f, %00, control bytes, overlong) answer 400/404/414 and
#     never a byte of /etc/passwd, and reach nothing upstream;
#   /v2/ answers 200 {} with Docker-Distribution-Api-Version; other /v2 routes registry errors;
#   upstreamfs mount -o listen=: 8 HTTP clients and 8 FUSE readers of one uncached 10 MiB file
#     cause exactly 1 GET in nginx's log and all read the right bytes; the same against a
#     stalling upstream, so every reader joins the download while it runs;
#   with nginx stopped, files fetched before still download through the shim; one never
#     fetched is a 502 with a one-line reason;
#   /metrics (Prometheus text, upstreamfs_ prefix) and /healthz; one access-log line per
#     request; SIGTERM stops serve with status 0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
command -v curl >/dev/null || die "curl is missing"

SRV="$T/srv"
OTHER="$T/other"
MNT="$T/mnt"
mkdir -p "$SRV/www" "$SRV/maven" "$SRV/helm" "$OTHER"
nginx_start "$SRV" "$OTHER"
fixtures_generic "$SRV/www"
fixtures_maven "$SRV/maven"
fixtures_helm "$SRV/helm" "$OTHER" "$NGINX_OTHER_URL"
upstream_start "$SRV/www" --quiet

upfs proxy create gen --type generic --url "${NGINX_URL}www/" >/dev/null
upfs proxy create mvn --type maven --url "${NGINX_URL}maven/" >/dev/null
# beta is on the other host name (localhost), a learned origin on loopback: allowed explicitly.
upfs proxy create charts --type helm --url "${NGINX_URL}helm/" --allow-host localhost >/dev/null
upfs proxy create slow --type generic --url "$UPSTREAM_URL" >/dev/null
upfs registry create all --type generic --upstream gen >/dev/null

serve_start main
S="http://127.0.0.1:$SERVE_PORT_main"
log "serve on $S"

# ---- generic files ---------------------------------------------------------------------------
t_generic() {
    local f want
    for f in hello.txt 4k.bin one.bin empty.bin a/b/c/deep.txt; do
        want="$(fixture_sha256 "$SRV/www" "$f")"
        http_get "$S/gen/$f"
        assert_eq "$HTTP_STATUS" 200 "GET /gen/$f"
        assert_sha256 "$T/body" "$want"
        nginx_expect_count 1 GET "^/www/${f//./\\.}\$"
    done
    http_get "$S/gen/with%20space%2Bplus.txt"
    assert_eq "$HTTP_STATUS" 200 "GET of an escaped name"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/www" "with space+plus.txt")"
    # through a registry (local content first, then gen)
    http_get "$S/all/hello.txt"
    assert_eq "$HTTP_STATUS" 200 "GET /all/hello.txt"
    assert_eq "$BODY" "hello, upstreamfs" "body through the registry"
    # a second read is a cache hit and fetches nothing
    http_get "$S/gen/4k.bin"
    assert_eq "$(header_of X-Upstreamfs-Cache)" hit "X-Upstreamfs-Cache of a second GET"
    nginx_expect_count 1 GET '^/www/4k\.bin$'
}
check "generic: files read through serve with the right sha256, one GET each" t_generic

# part FILE START LEN: bytes START..START+LEN-1 of FILE
part() { tail -c +"$(($2 + 1))" "$1" | head -c "$3"; }

t_range() {
    local src="$SRV/www/4k.bin"
    http_get "$S/gen/4k.bin" -r 100-199
    assert_eq "$HTTP_STATUS" 206 "Range 100-199"
    assert_eq "$(header_of Content-Range)" "bytes 100-199/4096" "Content-Range"
    assert_eq "$(header_of Content-Length)" 100 "Content-Length of the range"
    assert_eq "$(sha256_of "$T/body")" "$(part "$src" 100 100 | openssl dgst -sha256 -r | cut -d' ' -f1)" "bytes 100-199"
    http_get "$S/gen/4k.bin" -H 'Range: bytes=-10'
    assert_eq "$HTTP_STATUS" 206 "suffix range"
    assert_eq "$(header_of Content-Range)" "bytes 4086-4095/4096" "suffix Content-Range"
    assert_eq "$(sha256_of "$T/body")" "$(part "$src" 4086 10 | openssl dgst -sha256 -r | cut -d' ' -f1)" "last 10 bytes"
    http_get "$S/gen/4k.bin" -r 4000-
    assert_eq "$HTTP_STATUS" 206 "open range"
    assert_eq "$(stat -c %s "$T/body")" 96 "length of bytes=4000-"
    http_get "$S/gen/4k.bin" -r 5000-6000
    assert_eq "$HTTP_STATUS" 416 "range past the end"
    assert_eq "$(header_of Content-Range)" "bytes */4096" "Content-Range of a 416"
    http_get "$S/gen/4k.bin" -H 'Range: bytes=0-1,5-6'
    assert_eq "$HTTP_STATUS" 200 "several ranges get the whole file"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/www" 4k.bin)"
    # a range of a file not yet cached is served while it downloads (and caches the whole)
    http_get "$S/gen/listing/one.txt" -r 0-2
    assert_eq "$HTTP_STATUS" 206 "range of an uncached file"
    assert_eq "$BODY" "$(head -c 3 "$SRV/www/listing/one.txt")" "first bytes of one.txt"
    nginx_expect_count 1 GET '^/www/listing/one\.txt$'
}
check "generic: Range 206/416 with the right bytes" t_range

t_head_etag() {
    local want etag
    want="$(fixture_sha256 "$SRV/www" 4k.bin)"
    http_req HEAD "$S/gen/4k.bin"
    assert_eq "$HTTP_STATUS" 200 "HEAD"
    assert_eq "$(header_of Content-Length)" 4096 "HEAD Content-Length"
    assert_eq "$(header_of ETag)" "\"sha256:$want\"" "ETag is the sha256"
    assert_eq "$(header_of Accept-Ranges)" bytes "Accept-Ranges"
    [[ -n "$(header_of Last-Modified)" ]] || die "no Last-Modified: $HEADERS"
    etag="$(header_of ETag)"
    http_get "$S/gen/4k.bin" -H "If-None-Match: $etag"
    assert_eq "$HTTP_STATUS" 304 "If-None-Match with the ETag"
    # If-Range with another validator sends the whole file
    http_get "$S/gen/4k.bin" -r 0-9 -H 'If-Range: "sha256:0000"'
    assert_eq "$HTTP_STATUS" 200 "If-Range that does not match"
    # HEAD of a file never read starts no download
    http_req HEAD "$S/gen/10m.bin"
    assert_eq "$HTTP_STATUS" 200 "HEAD of an uncached file"
    assert_eq "$(header_of Content-Length)" $((10 * 1024 * 1024)) "HEAD size of 10m.bin"
    assert_eq "$(nginx_count GET '^/www/10m\.bin$')" 0 "GETs of 10m.bin after a HEAD"
    http_req HEAD "$S/gen/no-such-file"
    assert_eq "$HTTP_STATUS" 404 "HEAD of a missing file"
}
check "generic: HEAD headers, ETag = sha256, 304, no download on HEAD" t_head_etag

t_listing() {
    http_get "$S/gen/listing"
    assert_eq "$HTTP_STATUS" 301 "directory without its slash"
    assert_eq "$(header_of Location)" /gen/listing/ "Location"
    http_get "$S/gen/listing/"
    assert_eq "$HTTP_STATUS" 200 "index page"
    assert_contains "$(header_of Content-Type)" text/html "index Content-Type"
    assert_contains "$BODY" '<a href="one.txt">one.txt</a>' "index links one.txt"
    assert_contains "$BODY" '<a href="two.txt">two.txt</a>' "index links two.txt"
    assert_contains "$BODY" '<a href="sub/">sub/</a>' "index links sub/"
    assert_contains "$BODY" '<a href="../">' "index links the parent"
    # follow the relative links as a browser would
    local link
    link="$("$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.urljoin(sys.argv[1], "sub/"))' "$S/gen/listing/")"
    http_get "$link"
    assert_contains "$BODY" '<a href="three.txt">' "sub/ index"
    http_get "${link}three.txt"
    assert_eq "$HTTP_STATUS" 200 "following the index's links"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/www" listing/sub/three.txt)"
    http_get "$S/"
    assert_contains "$BODY" '<a href="gen/">gen/</a>' "root index lists the proxies"
    assert_contains "$BODY" '<a href="all/">all/</a>' "root index lists the registries"
    http_get "$S/gen/hello.txt/"
    assert_eq "$HTTP_STATUS" 404 "a file asked for as a directory"
    http_get "$S/nosuchkey/x"
    assert_eq "$HTTP_STATUS" 404 "unknown key"
    http_req DELETE "$S/gen/hello.txt"
    assert_eq "$HTTP_STATUS" 405 "DELETE of a file"
    assert_contains "$(header_of Allow)" GET "Allow header"
    http_req GET "$S/gen/hello.txt" 'x'
    assert_eq "$HTTP_STATUS" 200 "a GET with a body (the body is not read)"
    assert_eq "$BODY" "hello, upstreamfs" "body of a GET that carried one"
}
check "directories: HTML index pages with relative links, 301 to the slash" t_listing

# ---- Maven -----------------------------------------------------------------------------------
t_maven() {
    local d=com/example/demo/1.0
    http_get "$S/mvn/$d/demo-1.0.jar"
    assert_eq "$HTTP_STATUS" 200 "GET demo-1.0.jar"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/maven" "$d/demo-1.0.jar")"
    assert_eq "$(header_of Content-Type)" application/java-archive "jar Content-Type"
    nginx_expect_count 1 GET '^/maven/com/example/demo/1\.0/demo-1\.0\.jar$'
    http_get "$S/mvn/$d/demo-1.0.jar.sha1"
    assert_eq "$HTTP_STATUS" 200 "GET demo-1.0.jar.sha1"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/maven" "$d/demo-1.0.jar.sha1")"
    assert_eq "$(tr -d '[:space:]' <"$T/body")" "$(sha1sum "$SRV/maven/$d/demo-1.0.jar" | cut -d' ' -f1)" ".sha1 names the jar"
    http_get "$S/mvn/com/example/bad/1.0/bad-1.0.jar"
    assert_eq "$HTTP_STATUS" 502 "bad-1.0.jar (wrong .sha1)"
    assert_eq "$(wc -l <"$T/body")" 1 "one-line error body"
    assert_contains "$BODY" "bad gateway" "error body"
    assert_contains "$BODY" "mvn/com/example/bad/1.0/bad-1.0.jar" "error body names the path"
}
check "maven: the jar and its .sha1; a jar failing verification is a 502" t_maven

# ---- Helm ------------------------------------------------------------------------------------
t_helm() {
    http_get "$S/charts/index.yaml"
    assert_eq "$HTTP_STATUS" 200 "GET index.yaml"
    cp "$T/body" "$T/index.yaml"
    # resolve every chart URL as helm does: against the repository URL with a trailing slash
    "$PYTHON" - "$T/index.yaml" "$S/charts/" "$S/charts/index.yaml" >"$T/charts.tsv" <<'EOF' || die "index.yaml URL check failed"
import re, sys, urllib.parse
path, repo, index_url = sys.argv[1:4]
text = open(path).read()
try:
    import yaml
    doc = yaml.safe_load(text)
    items = [(n, v.get("version"), v.get("digest"), (v.get("urls") or [None])[0])
             for n, vs in (doc.get("entries") or {}).items() for v in vs]
except ImportError:  # python3-yaml missing: the urls lines alone
    items = [(None, None, None, u.strip().strip('"'))
             for u in re.findall(r'^\s*-\s*(\S*\.tgz\S*)\s*$', text, re.M)]
if not items:
    sys.exit("no chart URLs in index.yaml")
for name, ver, digest, url in items:
    a = urllib.parse.urljoin(repo, url)
    b = urllib.parse.urljoin(index_url, url)
    if a != b or not a.startswith(repo):
        sys.exit("chart URL %r resolves to %r / %r, not below %r" % (url, a, b, repo))
    print("%s\t%s\t%s" % (name, digest, a))
EOF
    local n=0 name digest url
    while IFS=$'\t' read -r name digest url; do
        n=$((n + 1))
        http_get "$url"
        if [[ "$name" == gamma ]]; then
            assert_eq "$HTTP_STATUS" 502 "gamma (wrong digest in index.yaml) at $url"
            continue
        fi
        assert_eq "$HTTP_STATUS" 200 "chart $name at $url"
        if [[ "$digest" != None ]]; then
            assert_sha256 "$T/body" "$digest"
        fi
    done <"$T/charts.tsv"
    ((n >= 3)) || die "index.yaml named $n charts, want 3"
    http_get "$S/charts/charts/alpha-0.1.0.tgz"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/helm" charts/alpha-0.1.0.tgz)"
    http_get "$S/charts/charts/beta-1.2.3.tgz"
    assert_sha256 "$T/body" "$(fixture_sha256 "$OTHER" beta-1.2.3.tgz)"
    nginx_expect_count 1 --host localhost GET '^/beta-1\.2\.3\.tgz$'
    nginx_expect_count 1 --host 127.0.0.1 GET '^/helm/charts/alpha-0\.1\.0\.tgz$'
}
check "helm: index.yaml's chart URLs resolve back to the shim; the charts have the named digests" t_helm

# ---- hostile targets -------------------------------------------------------------------------
t_hostile() {
    local long t code
    long="$(head -c 300 /dev/zero | tr '\0' a)"
    local targets=(
        "/gen/../../etc/passwd"
        "/gen/../../../../../../etc/passwd"
        "/gen/%2e%2e/%2e%2e/etc/passwd"
        "/gen/%2E%2E/%2E%2E/%2E%2E/etc/passwd"
        "/%2e%2e/"
        "/%2e%2e/%2e%2e/etc/passwd"
        "/gen/a%2fb"
        "/gen/..%2f..%2f..%2fetc%2fpasswd"
        "/gen/%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd"
        "/gen/hello.txt%00"
        "/gen/%00/../etc/passwd"
        "/gen/a%0aSet-Cookie:%20x=1"
        "/gen/./hello.txt"
        "/gen/.%2e/.%2e/etc/passwd"
        "/gen/%zz"
        "/gen/..\\..\\etc\\passwd"
        "/all/../gen/hello.txt"
        "/gen/$long"
        "/gen/$(printf 'b%.0s' $(seq 1 250))/$(printf 'c%.0s' $(seq 1 250))/$(for i in $(seq 1 20); do printf '%s/' "$(head -c 250 /dev/zero | tr '\0' d)"; done)"
    )
    for t in "${targets[@]}"; do
        http_get "$S$t" --path-as-is
        code="$HTTP_STATUS"
        case "$code" in
            400 | 404 | 414) ;;
            *) die "${t:0:80}: status $code, want 400, 404 or 414 (body: ${BODY:0:200})" ;;
        esac
        if grep -q 'root:' "$T/body"; then die "${t:0:80}: the body holds /etc/passwd"; fi
    done
    # a 100 KiB request target never reaches a handler
    http_get "$S/gen/$(head -c 102400 /dev/zero | tr '\0' e)" --path-as-is
    [[ "$HTTP_STATUS" =~ ^(4[0-9][0-9]|000)$ ]] || die "100 KiB target: status $HTTP_STATUS"
    # nothing reached the upstream outside the proxies' trees, nor anything named /etc/passwd
    assert_eq "$(nginx_count --host 127.0.0.1 '*' '^/(?!(www|maven|helm)/)')" 0 "requests outside the proxies' trees"
    assert_eq "$(nginx_count '*' '/etc/passwd')" 0 "requests for /etc/passwd"
    # the shim is still serving
    http_get "$S/gen/hello.txt"
    assert_eq "$HTTP_STATUS" 200 "GET after the hostile requests"
}
check "hostile paths (.., %2e%2e, %2f, %00, overlong) give 400/404/414 and nothing from outside" t_hostile

# ---- /v2 ---------------------------------------------------------------------------------------
t_v2() {
    http_get "$S/v2/"
    assert_eq "$HTTP_STATUS" 200 "GET /v2/"
    assert_eq "$BODY" "{}" "/v2/ body"
    assert_eq "$(header_of Docker-Distribution-Api-Version)" registry/2.0 "API version header"
    http_get "$S/v2/gen/library/alpine/manifests/latest"
    assert_eq "$HTTP_STATUS" 404 "manifest route (not served yet)"
    assert_eq "$(json_field 'j["errors"][0]["code"]')" UNSUPPORTED "registry error code"
    assert_eq "$(header_of Docker-Distribution-Api-Version)" registry/2.0 "API version header on errors"
    http_req PUT "$S/v2/gen/x/manifests/latest" '{}'
    assert_eq "$HTTP_STATUS" 405 "PUT of a manifest"
    assert_eq "$(json_field 'j["errors"][0]["code"]')" UNSUPPORTED "code of the 405"
}
check "/v2/: version check 200 {}; other routes registry errors" t_v2

# ---- one download for FUSE and HTTP together ---------------------------------------------------
MPORT=""
t_concurrent() {
    local want i pids=() rc=0
    want="$(fixture_sha256 "$SRV/www" 10m.bin)"
    assert_eq "$(nginx_count GET '^/www/10m\.bin$')" 0 "10m.bin fetched before the test"
    for i in 1 2 3 4 5 6 7 8; do
        "${CURL[@]}" --max-time 120 -o "$T/http$i" "http://127.0.0.1:$MPORT/gen/10m.bin" &
        pids+=($!)
        cat "$MNT/gen/10m.bin" >"$T/fuse$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=$?; done
    ((rc == 0)) || die "a reader failed (status $rc)"
    for i in 1 2 3 4 5 6 7 8; do
        assert_sha256 "$T/http$i" "$want"
        assert_sha256 "$T/fuse$i" "$want"
    done
    nginx_expect_count 1 GET '^/www/10m\.bin$'
}

t_concurrent_stalled() {
    local want i pids=() rc=0
    want="$(fixture_sha256 "$SRV/www" 10m.bin)"
    # the upstream sends 1 MiB, then waits 3 s: every reader below arrives mid-download
    upstream_fault '{"path": "^/10m\\.bin$", "method": "GET", "fault": "stall", "bytes": 1048576, "seconds": 3}'
    for i in 1 2 3 4 5 6 7 8; do
        "${CURL[@]}" --max-time 120 -D "$T/shdr$i" -o "$T/shttp$i" "http://127.0.0.1:$MPORT/slow/10m.bin" &
        pids+=($!)
        cat "$MNT/slow/10m.bin" >"$T/sfuse$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=$?; done
    ((rc == 0)) || die "a reader failed (status $rc)"
    for i in 1 2 3 4 5 6 7 8; do
        assert_sha256 "$T/shttp$i" "$want"
        assert_sha256 "$T/sfuse$i" "$want"
    done
    assert_eq "$(upstream_count GET /10m.bin)" 1 "GETs of 10m.bin at the stalling upstream"
    grep -qi '^X-Upstreamfs-Cache: miss' "$T/shdr1" || die "the HTTP reader was not streamed from the download"
}

MPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$MPORT"
wait_for_port "$MPORT" 10 || die "mount -o listen=127.0.0.1:$MPORT: the shim is not listening"
check "mount -o listen: 8 HTTP + 8 FUSE readers of one uncached 10 MiB file, exactly 1 GET" t_concurrent
check "mount -o listen: 16 readers joining a stalled download, 1 upstream GET, streamed" t_concurrent_stalled

t_listen_refused() {
    expect_fail_with "not a loopback address" "$UPFS" --state "$STATE" mount "$T/mnt2" -o listen=0.0.0.0:1
    assert_eq "$RC" 2 "exit status of mount -o listen=0.0.0.0:1"
    expect_fail_with "listen:" "$UPFS" --state "$STATE" mount "$T/mnt2" -o listen=nonsense
    assert_eq "$RC" 2 "exit status of mount -o listen=nonsense"
}
mkdir -p "$T/mnt2"
check "mount -o listen= refuses a non-loopback address and bad syntax (exit 2)" t_listen_refused

# ---- the remote gone ---------------------------------------------------------------------------
t_offline() {
    nginx_stop
    local f
    for f in hello.txt 4k.bin a/b/c/deep.txt; do
        http_get "$S/gen/$f"
        assert_eq "$HTTP_STATUS" 200 "GET /gen/$f with nginx stopped"
        assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/www" "$f")"
    done
    http_get "$S/mvn/com/example/demo/1.0/demo-1.0.jar"
    assert_eq "$HTTP_STATUS" 200 "demo-1.0.jar with nginx stopped"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/maven" com/example/demo/1.0/demo-1.0.jar)"
    http_get "$S/charts/charts/alpha-0.1.0.tgz"
    assert_eq "$HTTP_STATUS" 200 "alpha chart with nginx stopped"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/helm" charts/alpha-0.1.0.tgz)"
    http_get "$S/charts/index.yaml"
    assert_eq "$HTTP_STATUS" 200 "index.yaml with nginx stopped"
    # through the mount's shim too (10m.bin came through it)
    http_get "http://127.0.0.1:$MPORT/gen/10m.bin"
    assert_eq "$HTTP_STATUS" 200 "10m.bin through the mount's shim with nginx stopped"
    assert_sha256 "$T/body" "$(fixture_sha256 "$SRV/www" 10m.bin)"
    # never fetched: a gateway error with a one-line reason
    http_get "$S/gen/listing/two.txt"
    [[ "$HTTP_STATUS" == 502 || "$HTTP_STATUS" == 504 ]] || die "uncached file with nginx stopped: status $HTTP_STATUS ($BODY)"
    assert_eq "$(wc -l <"$T/body")" 1 "one-line error body"
    assert_contains "$BODY" "gen/listing/two.txt" "error body names the path"
}
check "nginx stopped: cached files still download through the shim; uncached is a 502/504" t_offline

# ---- metrics, health, log, shutdown ------------------------------------------------------------
t_metrics() {
    http_get "$S/metrics"
    assert_eq "$HTTP_STATUS" 200 "GET /metrics"
    assert_contains "$(header_of Content-Type)" "text/plain" "metrics Content-Type"
    local bad
    bad="$(grep -v -E '^(# (HELP|TYPE) upstreamfs_[a-z_]+ .*|upstreamfs_[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? -?[0-9.e+]+)$' "$T/body" || true)"
    [[ -z "$bad" ]] || die "lines that are not upstreamfs_ metrics: $bad"
    local m
    for m in 'upstreamfs_http_requests_total{route="path",code="200"}' \
        'upstreamfs_http_requests_total{route="path",code="206"}' \
        'upstreamfs_http_requests_total{route="other",code="400"}' \
        'upstreamfs_http_cache_requests_total{result="hit"}' \
        'upstreamfs_http_cache_requests_total{result="miss"}' \
        upstreamfs_cache_hits_total upstreamfs_cache_misses_total upstreamfs_upstream_requests_total \
        upstreamfs_upstream_bytes_total upstreamfs_inflight_fetches upstreamfs_cache_bytes \
        upstreamfs_cache_objects upstreamfs_evictions_total upstreamfs_stale_serves_total; do
        grep -qF "$m " "$T/body" || die "/metrics lacks $m"
    done
    local hits
    hits="$(awk '$1 == "upstreamfs_http_cache_requests_total{result=\"hit\"}" { print $2 }' "$T/body")"
    ((hits >= 5)) || die "shim cache hits: $hits"
    http_get "$S/healthz"
    assert_eq "$HTTP_STATUS" 200 "GET /healthz"
    http_get "$S/metrics/x"
    assert_eq "$HTTP_STATUS" 404 "/metrics/x"
}
check "/metrics: Prometheus text, upstreamfs_ names, requests by route/status, cache, upstream" t_metrics

t_access_log() {
    local log="$SERVE_LOG_main"
    grep -qE 'http 127\.0\.0\.1 "GET /gen/hello\.txt" route=path status=200 bytes=18 cache=(hit|miss)' "$log" ||
        die "no access-log line for GET /gen/hello.txt: $(grep ' http ' "$log" | head -5)"
    grep -qE 'http 127\.0\.0\.1 "GET /gen/4k\.bin" route=path status=206 bytes=100 cache=hit' "$log" ||
        die "no access-log line for the range request"
    grep -qE '"GET /gen/%2e%2e/%2e%2e/etc/passwd" route=other status=400' "$log" ||
        die "no access-log line for a refused path"
    grep -qE '"HEAD /gen/4k\.bin" route=path status=200 bytes=0' "$log" || die "no access-log line for HEAD"
}
check "one access-log line per request: client, method, path, route, status, bytes, hit/miss" t_access_log

# serve is a child of this shell, so only this shell (not a check's subshell) can wait for it
serve_stop main
t_shutdown() {
    grep -q "stopping" "$SERVE_LOG_main" || die "serve did not log its shutdown"
    port_is_open "$SERVE_PORT_main" && die "port still open after serve stopped" || true
    upfs_unmount "$MNT"
    port_is_open "$MPORT" && die "the mount's shim still listens after unmount" || true
}
check "SIGTERM stops serve (status 0); unmount stops the mount's shim" t_shutdown

finish
