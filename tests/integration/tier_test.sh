#!/bin/bash
# tests/integration/tier_test.sh -- edges -> Squid -> two upstreamfs parents -> origins.
#
#     bash tests/integration/tier_test.sh build/upstreamfs
#
# The topology of docs/SCALE-OUT.md ("nodes + Squid + parents"), each tier on its own loopback
# address (origins and edges 127.0.0.1, parents 127.0.0.2 and 127.0.0.3, Squid 127.0.0.4), each
# node with its own state dir and mount: origins (nginx: a file tree, a PyPI tree, a Maven
# repository, a Helm repository; tests/integration/npm/registry.py; a docker-registry holding
# one image); two parents (`upstreamfs serve`, each its own state dir, a proxy of each type on
# the origins); Squid (Debian's, docs/squid.conf's settings: an accelerator with both parents as
# cache_peer, collapsed_forwarding on); 18 edges (`upstreamfs mount -o listen=`, each with its
# own shim; a generic proxy `files` and a docker proxy `hub` whose URLs are Squid's routes).
# Asserts:
#   wave 1: 8 edges read the same uncached 256 MiB file at once: every edge gets the right
#     sha256; the origin sends each byte of the file once (the parents fetch it by ranged GETs, src/fetch/lazy.c); the parents
#     together are asked for it once; 8 edges pull the same uncached image with skopeo through
#     their own shims: every digest checked, each blob sent once by the docker-registry origin
#     (its size in bytes; by ranged GETs from 16 MiB on) and asked once of the parents;
#   wave 2: 8 more edges with empty caches read the files and pull the image: right bytes;
#     zero requests for a file or a blob reach the parents (Squid answers, the answers were
#     fresh); what does reach a parent is only conditional and answered 304;
#   /metrics: each parent's answers by route and class (hit, miss, not_modified) are the counts
#     its access log shows; the edges' upstream requests are the requests Squid logged;
#   Repr-Digest: the parent states small.bin's sha-256; an edge reads a file whose stated digest
#     is true and refuses (EIO, cause digest, nothing kept) one whose stated digest is false;
#     a parent streaming a large file it does not have yet states its digest in a trailer,
#     an edge reading from it directly gets it checked, and refuses a false trailer;
#   Helm, Maven, npm, PyPI through parents: every file a document of one parent names lies
#     below its route and, fetched from the other parent, has the digest the document states;
#     an edge lists each type through Squid while the first parent serves, then (first parent
#     stopped) fetches the files through the second: `npm install` and `pip download` through
#     the edge's shim, a Maven jar and Helm charts through its mount, each with its digest;
#   the first parent killed: 2 edges with empty caches read a file never read before through
#     the second parent (Squid fails over), with the right bytes, the origin asked once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
source "$(dirname "${BASH_SOURCE[0]}")/shim/v2.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v squid >/dev/null || die "squid is missing (tools/deps.sh --test installs it)"
command -v npm >/dev/null || die "npm is missing (tools/deps.sh --test installs it)"
PIP=(/usr/bin/python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || die "Debian's pip is missing (tools/deps.sh --test installs python3-pip)"
docker_need_tools

BIG=$((256 << 20))
SRV="$T/srv"
OTHER="$T/other"
mkdir -p "$SRV/www/sub" "$SRV/maven" "$SRV/helm" "$OTHER"
fixture_bytes tier-big "$BIG" "$SRV/www/big.bin"
fixture_bytes tier-small 70000 "$SRV/www/small.bin"
fixture_bytes tier-late 3000000 "$SRV/www/sub/late.bin"
fixture_bytes tier-cold 8000000 "$SRV/www/cold.bin"
fixture_bytes tier-cold2 8000000 "$SRV/www/cold2.bin"
fixture_bytes tier-cold3 8000000 "$SRV/www/cold3.bin"
nginx_start "$SRV" "$OTHER"
WANT_BIG="$(sha256_of "$SRV/www/big.bin")"
WANT_SMALL="$(sha256_of "$SRV/www/small.bin")"
WANT_LATE="$(sha256_of "$SRV/www/sub/late.bin")"
fixtures_maven "$SRV/maven"
fixtures_helm "$SRV/helm" "$OTHER" "$NGINX_OTHER_URL"
"$PYTHON" "$HERE/pypi/build.py" "$SRV/pypi" >/dev/null
"$PYTHON" "$HERE/npm/registry.py" build "$T/npm" >/dev/null
"${DIE_WITH_PARENT[@]}" "$PYTHON" "$HERE/npm/registry.py" serve "$T/npm" --port-file "$T/npm.port" \
    >/dev/null 2>"$T/npm.log" &
on_exit "kill $! 2>/dev/null || true"
wait_until 10 test -s "$T/npm.port" || die "the npm registry did not start: $(cat "$T/npm.log")"
NPM_URL="http://127.0.0.1:$(cat "$T/npm.port")/"

# the image: a 32 MiB layer, in a docker-registry origin whose access log has each answer's bytes
D_APP="$(mkimage "$T/oci" app --text tier-app --big $((32 << 20)))"
registry_start origin open
push "oci:$T/oci:app" "127.0.0.1:$REG_PORT_origin/test/app:1"
REG_LOG="$T/origin/registry.log"

# ---- two parents ----------------------------------------------------------------------------
ORIG_STATE="$STATE"
for p in p1 p2; do
    STATE="$ORIG_STATE-$p"
    upfs proxy create files --type generic --url "${NGINX_URL}www/" >/dev/null
    upfs proxy create hub --type docker --source custom --url "http://127.0.0.1:$REG_PORT_origin/" >/dev/null
    upfs proxy create npm --type npm --url "$NPM_URL" >/dev/null
    upfs proxy create py --type pypi --url "${NGINX_URL}pypi/" >/dev/null
    upfs proxy create mvn --type maven --url "${NGINX_URL}maven/" >/dev/null
    upfs proxy create charts --type helm --url "${NGINX_URL}helm/" --allow-host localhost >/dev/null
    SERVE_ADDR="127.0.0.$((${p#p} + 1))" serve_start "$p" # parents on 127.0.0.2 and .3
done
STATE="$ORIG_STATE"

# parent_count NAME REGEX [STATUS]: GETs (of that status) for paths matching REGEX in the
# access log of parent NAME
parent_count() {
    local log="SERVE_LOG_$1" n
    n="$(grep -cE "\"GET $2\" route=[a-z0-9]+ status=${3:-[0-9]+} " "${!log}" || true)"
    echo "${n:-0}"
}
parents_count() { echo $(($(parent_count p1 "$@") + $(parent_count p2 "$@"))); }

# ---- Squid ----------------------------------------------------------------------------------
# Squid drops root for the user "proxy": its dir must be its own and reachable.
SQ="$(mktemp -d /tmp/upfs-squid.XXXXXX)"
chmod 755 "$SQ"
mkdir -p "$SQ/cache"
SQ_PORT="$(free_port)"
SQ_ADDR=127.0.0.4 # each tier on its own loopback address: origins .1, parents .2 and .3
sed -e "s|@PORT@|$SQ_PORT|g" -e "s|@DIR@|$SQ|g" \
    -e "s|@ADDR@|$SQ_ADDR|g" -e "s|@H1@|$SERVE_ADDR_p1|g" -e "s|@H2@|$SERVE_ADDR_p2|g" \
    -e "s|@P1@|$SERVE_PORT_p1|g" -e "s|@P2@|$SERVE_PORT_p2|g" \
    "$HERE/tier/squid.conf.in" >"$SQ/squid.conf"
chown -R proxy:proxy "$SQ"
[[ "${KEEP_TMP:-0}" == 1 ]] || on_exit "rm -rf -- '$SQ'"
squid -z -N -f "$SQ/squid.conf" >"$SQ/init.log" 2>&1 || { cat "$SQ/init.log" >&2; die "squid -z failed"; }
"${DIE_WITH_PARENT[@]}" squid -N -f "$SQ/squid.conf" >"$SQ/squid.out" 2>&1 &
SQ_PID=$!
on_exit "kill -TERM $SQ_PID 2>/dev/null; wait $SQ_PID 2>/dev/null || true"
wait_for_port "$SQ_PORT" 10 "$SQ_ADDR" || { cat "$SQ/squid.out" "$SQ/cache.log" >&2 2>/dev/null; die "squid did not start"; }
SQ_URL="http://$SQ_ADDR:$SQ_PORT"
log "squid on $SQ_ADDR:$SQ_PORT, parents on $SERVE_ADDR_p1:$SERVE_PORT_p1 and $SERVE_ADDR_p2:$SERVE_PORT_p2"

# ---- edges ----------------------------------------------------------------------------------
# edge N: a state dir and a mount with its own shim (EPORT_N); proxies `files` and `hub` read
# through Squid
edge() {
    local n="$1" port
    STATE="$ORIG_STATE-e$n"
    upfs proxy create files --type generic --url "$SQ_URL/files/" >/dev/null
    upfs proxy create hub --type docker --source custom --url "$SQ_URL/hub" >/dev/null
    port="$(free_port)"
    # whole objects, no Range: Squid caches whole answers, not ranges (cli_mount.c lazy_min)
    upfs_mount "$T/e$n" -o "listen=127.0.0.1:$port" -o lazy_min=0
    wait_for_port "$port" 10 || die "the shim of edge $n does not listen"
    printf -v "EPORT_$n" '%s' "$port"
    STATE="$ORIG_STATE"
}
# read_all FILE WANT N...: edges N... read FILE at once; each copy's sha256 must be WANT
read_all() {
    local f="$1" want="$2" n pids=()
    shift 2
    for n in "$@"; do
        cat "$T/e$n/files/$f" >"$T/out-$n" &
        pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || die "a reader of $f failed"; done
    for n in "$@"; do assert_sha256 "$T/out-$n" "$want"; done
}
# pull_all N...: edges N... pull test/app:1 through their own shims at once, every digest checked
pull_all() {
    local n pids=() port
    for n in "$@"; do
        port="EPORT_$n"
        rm -rf "$T/img-$n"
        with_timeout 180 skopeo copy --quiet --src-tls-verify=false \
            "docker://127.0.0.1:${!port}/hub/test/app:1" "dir:$T/img-$n" >"$T/skopeo-$n.log" 2>&1 &
        pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || die "a skopeo pull failed: $(tail -n 3 "$T"/skopeo-*.log)"; done
    for n in "$@"; do
        assert_eq "$(copy_digest "$T/img-$n")" "$D_APP" "the digest of test/app:1 at edge $n"
        dir_verified "$T/img-$n"
    done
}
# blob GETs (count, then body bytes) the docker-registry origin answered for test/app's blobs
origin_blobs() {
    "$PYTHON" - "$REG_LOG" <<'EOF'
import re, sys
seen = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r'"GET /v2/test/app/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" (\d+) (\d+)', line)
    if m:
        n, b = seen.get(m.group(1), (0, 0))
        seen[m.group(1)] = (n + 1, b + int(m.group(3)))
for d, (n, b) in sorted(seen.items()):
    print(d, n, b)
EOF
}
for n in $(seq 1 18); do edge "$n"; done

# Bytes the origin sent for big.bin. A parent fetches a file this large by ranged GETs
# (src/fetch/lazy.c): single flight is about bytes, each sent once, not about one GET.
origin_big_sent() { awk -F'\t' '$4 == "/www/big.bin" { s += $7 } END { print s + 0 }' "$NGINX_LOG"; }
_origin_big_is() { [[ "$(origin_big_sent)" == "$1" ]]; }
t_wave1() {
    read_all big.bin "$WANT_BIG" $(seq 1 8)
    wait_until 5 _origin_big_is "$BIG" || true
    assert_eq "$(origin_big_sent)" "$BIG" "bytes the origin sent for big.bin"
    assert_eq "$(parents_count '/files/big\.bin' 200)" 1 "requests for big.bin at the parents"
}
check --setup "wave 1: 8 edges, one uncached 256 MiB file: the origin and the parents send it once" t_wave1

t_images1() {
    pull_all $(seq 1 8)
    local d n b size blobs=0 p1 p2 layer
    layer="$(find "$T/img-1" -size +30M -regextype egrep -regex '.*/[0-9a-f]{64}' -printf '%f\n')"
    while read -r d n b; do
        size="$(stat -c %s "$T/img-1/${d#sha256:}")"
        p1="$(parent_count p1 "/v2/hub/test/app/blobs/$d" 200)"
        p2="$(parent_count p2 "/v2/hub/test/app/blobs/$d" 200)"
        # Squid asks a second parent only when the first failed to answer it: each parent
        # fetches a blob at most once. A parent fetches a blob of 16 MiB or more as a partial
        # object, by ranged GETs (src/fetch/lazy.c): single flight is about bytes, so the
        # origin's bytes are counted, each byte once per parent that asked
        ((p1 <= 1 && p2 <= 1 && p1 + p2 >= 1)) ||
            die "blob $d: $p1 answers at the first parent, $p2 at the second"
        ((b == (p1 + p2) * size)) ||
            die "blob $d: the origin sent $b bytes in $n GETs of $size for $((p1 + p2)) parents"
        if [[ "$d" == "sha256:$layer" ]]; then
            assert_eq "$b" "$size" "bytes the origin sent for the 32 MiB layer"
        fi
        ((p1 + p2 == 1)) || log "blob $d ($size bytes): asked of both parents (Squid failed over)"
        blobs=$((blobs + 1))
    done < <(origin_blobs)
    assert_eq "$blobs" "$(find "$T/img-1" -regextype egrep -regex '.*/[0-9a-f]{64}' | wc -l)" \
        "blobs the origin sent"
    [[ -n "$layer" ]] || die "no 32 MiB layer in the pulled image"
}
check "wave 1: 8 edges pull one uncached image through their shims: the origin sends each blob once" t_images1

t_wave2() {
    read_all small.bin "$WANT_SMALL" 1
    local before_small l1 l2 blobs_before
    before_small="$(parents_count '/files/small\.bin')"
    blobs_before="$(parents_count '/v2/hub/test/app/blobs/')"
    l1="$(wc -l <"$SERVE_LOG_p1")"
    l2="$(wc -l <"$SERVE_LOG_p2")"
    read_all big.bin "$WANT_BIG" $(seq 9 16)
    read_all small.bin "$WANT_SMALL" $(seq 9 16)
    pull_all $(seq 9 16)
    assert_eq "$(parents_count '/files/big\.bin')" 1 "requests for big.bin at the parents after wave 2"
    assert_eq "$(parents_count '/files/small\.bin')" "$before_small" \
        "requests for small.bin at the parents after wave 2"
    assert_eq "$(origin_big_sent)" "$BIG" "bytes the origin sent for big.bin after wave 2"
    assert_eq "$(parents_count '/v2/hub/test/app/blobs/')" "$blobs_before" \
        "requests for the image's blobs at the parents after wave 2"
    nginx_expect_count 1 GET '^/www/small\.bin$'
    # what still reaches a parent is a revalidation, answered 304 -- or an edge's look at the
    # registry's catalog, which a parent does not serve below a repository prefix (404), or
    # Squid's own probe of a cache peer (/squid-internal-dynamic/netdb, 404)
    { tail -n +"$((l1 + 1))" "$SERVE_LOG_p1"; tail -n +"$((l2 + 1))" "$SERVE_LOG_p2"; } |
        grep -E '" route=[a-z0-9]+ status=' >"$T/wave2.log" || true
    log "wave 2: $(wc -l <"$T/wave2.log") requests reached the parents, $(grep -c ' status=304 ' "$T/wave2.log" || true) of them 304"
    if grep -vE ' status=304 |"GET /v2/hub/_catalog" route=v2 status=404 |"GET /squid-internal-[a-z/-]+" route=path status=404 ' "$T/wave2.log" >"$T/wave2-other.log"; then
        die "requests of wave 2 at the parents that were not 304s: $(head -5 "$T/wave2-other.log")"
    fi
}
check "wave 2: 8 new edges: no request for a file or blob reaches a parent; only 304s do" t_wave2

# metric URL NAME LABELS: the value of sample NAME{LABELS} on the /metrics page at URL (0 absent)
metric() {
    curl -sf "$1/metrics" | awk -v k="$2{$3}" '$1 == k { v = $2 } END { print v + 0 }'
}
t_metrics() {
    local p port addr log route class want total=0 n
    for p in p1 p2; do
        port="SERVE_PORT_$p" addr="SERVE_ADDR_$p" log="SERVE_LOG_$p"
        for route in path v2; do
            for class in hit miss not_modified; do
                case "$class" in
                hit) want="$(grep -cE " route=$route status=2[0-9][0-9] .* cache=hit " "${!log}" || true)" ;;
                miss) want="$(grep -cE " route=$route status=2[0-9][0-9] .* cache=miss " "${!log}" || true)" ;;
                not_modified) want="$(grep -cE " route=$route status=304 " "${!log}" || true)" ;;
                esac
                assert_eq "$(metric "http://${!addr}:${!port}" upstreamfs_http_answers_total \
                    "route=\"$route\",class=\"$class\"")" "${want:-0}" "$p's /metrics: $route answers, $class"
            done
        done
    done
    # every request an edge made of its upstream is one Squid logged
    for n in $(seq 1 18); do
        port="EPORT_$n"
        for p in GET HEAD; do
            total=$((total + $(metric "http://127.0.0.1:${!port}" upstreamfs_upstream_requests_total \
                "proxy=\"files\",method=\"$p\"") + $(metric "http://127.0.0.1:${!port}" \
                upstreamfs_upstream_requests_total "proxy=\"hub\",method=\"$p\"")))
        done
    done
    assert_eq "$total" "$(grep -cE " (GET|HEAD) http://${SQ_ADDR//./\\.}:[0-9]+/(files|hub|v2)/" "$SQ/access.log" || true)" \
        "the edges' upstream requests (their /metrics) against Squid's access log"
}
check "/metrics: each parent's answers by class and the edges' upstream requests match the logs" t_metrics

t_failover() {
    read_all sub/late.bin "$WANT_LATE" 17 18
    nginx_expect_count 1 GET '^/www/sub/late\.bin$'
    assert_eq "$(parent_count p2 '/files/sub/late\.bin' 200)" 1 "late.bin through the second parent"
}
# ---- Repr-Digest: a parent states each file's sha256, an edge verifies it --------------------
LIAR_PORT="$(free_port)"
"${DIE_WITH_PARENT[@]}" "$PYTHON" "$HERE/tier/stating_server.py" "$LIAR_PORT" &
on_exit "kill $! 2>/dev/null || true"
wait_for_port "$LIAR_PORT" || die "the stating server did not start"
# edge 17 also reads a stating server, the first parent directly, and every type through Squid
STATE="$ORIG_STATE-e17"
upfs proxy create liar --type generic --url "http://127.0.0.1:$LIAR_PORT/" >/dev/null
upfs proxy create direct --type generic --url "http://$SERVE_ADDR_p1:$SERVE_PORT_p1/files/" >/dev/null
upfs proxy create npm --type npm --url "$SQ_URL/npm/" >/dev/null
upfs proxy create py --type pypi --url "$SQ_URL/py/" >/dev/null
upfs proxy create mvn --type maven --url "$SQ_URL/mvn/" >/dev/null
upfs proxy create charts --type helm --url "$SQ_URL/charts/" >/dev/null
STATE="$ORIG_STATE"
wait_until 10 test -d "$T/e17/charts" || die "edge 17 did not load its new proxies"

# the sha256 of "TEXT" repeated N times
sha_of_repeat() { "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode() * int(sys.argv[2])).hexdigest())' "$1" "$2"; }

t_repr_digest() {
    local want
    # the parent states the sha256 of what it holds
    cat "$T/e1/files/small.bin" >/dev/null
    want="sha-256=:$(openssl dgst -sha256 -binary "$SRV/www/small.bin" | base64 -w0):"
    assert_eq "$(curl -sI "http://$SERVE_ADDR_p1:$SERVE_PORT_p1/files/small.bin" | tr -d '\r' |
        awk 'tolower($1) == "repr-digest:" { print $2 }')" "$want" "the parent's Repr-Digest of small.bin"
    # an edge checks what an answer states: a true statement reads, a false one is EIO (digest)
    assert_sha256 "$T/e17/liar/true.bin" "$(sha_of_repeat $'true bytes\n' 1000)"
    if cat "$T/e17/liar/lie.bin" >"$T/lie.out" 2>"$T/lie.err"; then
        die "a file whose bytes do not match its stated Repr-Digest was read whole"
    fi
    assert_contains "$(cat "$T/lie.err")" "Input/output error" "the error of the false statement"
    assert_contains "$(xattr error "$T/e17/liar/lie.bin" || true)" digest "the cause of the failure"
    assert_eq "$(xattr cached "$T/e17/liar/lie.bin" || true)" none "what was kept of lie.bin"
}
check "Repr-Digest: the parent states each file's sha256; an edge refuses bytes that do not match" t_repr_digest

t_trailer() {
    local want
    # a cold parent streams cold.bin (8 MB, not awaited whole) and states its digest after it
    want="sha-256=:$(openssl dgst -sha256 -binary "$SRV/www/cold.bin" | base64 -w0):"
    curl -sf -H 'TE: trailers' -H 'Connection: TE' -D "$T/cold.hdr" -o "$T/cold.out" \
        "http://$SERVE_ADDR_p1:$SERVE_PORT_p1/files/cold.bin" || die "GET cold.bin from the parent failed"
    assert_sha256 "$T/cold.out" "$(sha256_of "$SRV/www/cold.bin")"
    tr -d '\r' <"$T/cold.hdr" >"$T/cold.h"
    assert_eq "$(awk 'tolower($1) == "trailer:" { print $2 }' "$T/cold.h")" Repr-Digest \
        "the parent's Trailer header for a file it streams cold"
    assert_eq "$(awk 'tolower($1) == "repr-digest:" { print $2 }' "$T/cold.h")" "$want" \
        "the parent's Repr-Digest trailer of cold.bin"
    # without TE: trailers, the same cold answer keeps its Content-Length (no trailer)
    curl -sf -D "$T/cold2.hdr" -o "$T/cold2.out" "http://$SERVE_ADDR_p1:$SERVE_PORT_p1/files/cold2.bin" ||
        die "GET cold2.bin from the parent failed"
    assert_contains "$(tr -d '\r' <"$T/cold2.hdr")" "Content-Length: 8000000" "a cold answer without TE"
    # an edge on the parent: a cold large file read whole, checked against the trailer
    want="$(sha256_of "$SRV/www/cold3.bin")"
    assert_sha256 "$T/e17/direct/cold3.bin" "$want"
    assert_eq "$(xattr digest "$T/e17/direct/cold3.bin")" "sha256:$want" "the edge's digest of cold3.bin"
    # an edge refuses a false trailer: EIO with the cause digest, nothing kept, the end never read
    assert_sha256 "$T/e17/liar/trailed-true.bin" "$(sha_of_repeat $'trailed true\n' 200000)"
    if cat "$T/e17/liar/trailed-lie.bin" >"$T/tlie.out" 2>"$T/tlie.err"; then
        die "a file whose bytes do not match its Repr-Digest trailer was read whole"
    fi
    assert_contains "$(cat "$T/tlie.err")" "Input/output error" "the error of the false trailer"
    (($(stat -c %s "$T/tlie.out") < 200000 * 14)) || die "the reader of trailed-lie.bin reached its end"
    assert_contains "$(xattr error "$T/e17/liar/trailed-lie.bin" || true)" digest "the cause of the failure"
    assert_eq "$(xattr cached "$T/e17/liar/trailed-lie.bin" || true)" none "what was kept of trailed-lie.bin"
}
check "Repr-Digest trailer: a cold parent states a streamed file's digest after it; edges check it" t_trailer

# ---- Helm, Maven, npm, PyPI through parents -------------------------------------------------
# cross KIND KEY NAME...: cross_fetch.py on the two parents' routes of proxy KEY
cross() {
    local kind="$1" key="$2"
    shift 2
    "$PYTHON" "$HERE/tier/cross_fetch.py" "$kind" "http://$SERVE_ADDR_p1:$SERVE_PORT_p1/$key/" \
        "http://$SERVE_ADDR_p2:$SERVE_PORT_p2/$key/" "$@" >"$T/cross-$kind.log" 2>&1 ||
        die "$kind: a file listed by the first parent, fetched from the second: $(cat "$T/cross-$kind.log")"
}
t_cross() {
    cross npm npm upfs-demo @upfs/util
    cross pypi py upfs-demo
    cross helm charts alpha beta
    cross maven mvn com/example/demo/1.0/demo-1.0.jar com/example/demo/1.0/demo-1.0.pom
}
check "Helm, Maven, npm, PyPI: a file one parent's document names is fetched from the other" t_cross

E17="$T/e17"
HELM_ALPHA="$(fixture_sha256 "$SRV/helm" charts/alpha-0.1.0.tgz)"
JAR=com/example/demo/1.0/demo-1.0.jar
t_types_list() {
    local before
    before="$(wc -l <"$SERVE_LOG_p2")"
    [[ -f "$E17/npm/upfs-demo/-/upfs-demo-1.0.0.tgz" ]] || die "edge 17 does not list upfs-demo's tarball"
    [[ -f "$E17/npm/@upfs/util/-/util-1.1.0.tgz" ]] || die "edge 17 does not list @upfs/util's tarball"
    [[ -f "$E17/py/upfs-demo/upfs_demo-1.0.0-py3-none-any.whl" ]] || die "edge 17 does not list the wheel"
    [[ -f "$E17/mvn/$JAR" ]] || die "edge 17 does not list demo-1.0.jar"
    grep -q 'charts/alpha-0.1.0.tgz' "$E17/charts/index.yaml" || die "edge 17's index.yaml names no alpha"
    [[ -f "$E17/charts/charts/beta-1.2.3.tgz" ]] || die "edge 17 does not list beta"
    (($(parent_count p1 '/(npm|py|mvn|charts)/[^"]*' 200) > 0)) || die "the first parent served no listing"
    assert_eq "$(tail -n +"$((before + 1))" "$SERVE_LOG_p2" | grep -cE '"GET /(npm|py|mvn|charts)/' || true)" 0 \
        "requests of the listings at the second parent"
}
check "an edge lists Helm, Maven, npm and PyPI through Squid from the first parent" t_types_list

serve_stop p1
check "the first parent stopped: edges finish through the second" t_failover

# npm_in DIR ARGS...: npm in a new project DIR with its own cache, on edge 17's shim; sets RC, ERR
npm_in() {
    local dir="$1"
    shift
    mkdir -p "$dir" "$T/home"
    : >"$T/npmrc"
    printf '{"name":"proj","version":"1.0.0","private":true}\n' >"$dir/package.json"
    run_capture with_timeout 180 env -i PATH="$PATH" HOME="$T/home" \
        npm --prefix "$dir" --registry "http://127.0.0.1:$EPORT_17/npm/" --cache "$dir.cache" \
        --userconfig "$T/npmrc" --no-update-notifier --no-audit --no-fund --loglevel warn "$@"
}
t_types_fetch() {
    local l2 want
    l2="$(wc -l <"$SERVE_LOG_p2")"
    # npm: the edge checks each tarball against the integrity the parent's document states, npm too
    npm_in "$T/proj" install upfs-demo
    ((RC == 0)) || die "npm install upfs-demo through edge 17 failed ($RC): $ERR"
    want="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["index_js"]["upfs-demo@1.0.0"])' "$T/npm/expect.json")"
    assert_sha256 "$T/proj/node_modules/upfs-demo/index.js" "$want"
    want="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tarballs"]["upfs-demo/-/upfs-demo-1.0.0.tgz"]["sha256"])' "$T/npm/expect.json")"
    assert_eq "$(xattr digest "$E17/npm/upfs-demo/-/upfs-demo-1.0.0.tgz")" "sha256:$want" "the edge's upfs-demo tarball"
    # PyPI: pip checks the #sha256 fragment of the edge's page; the edge checked the parent's
    run_capture with_timeout 180 env -i PATH=/usr/bin:/bin HOME="$T/home" \
        "${PIP[@]}" download --isolated --disable-pip-version-check --no-cache-dir --no-input \
        --index-url "http://127.0.0.1:$EPORT_17/py/simple/" --no-deps -d "$T/pip" upfs-demo==1.0.0
    ((RC == 0)) || die "pip download upfs-demo through edge 17 failed ($RC): $ERR"
    want="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["upfs_demo-1.0.0-py3-none-any.whl"]["sha256"])' "$SRV/expect.json")"
    assert_sha256 "$T/pip/upfs_demo-1.0.0-py3-none-any.whl" "$want"
    # Maven (checked against its .sha256/.sha1) and Helm (against index.yaml's digests)
    assert_sha256 "$E17/mvn/$JAR" "$(fixture_sha256 "$SRV/maven" "$JAR")"
    assert_sha256 "$E17/charts/charts/alpha-0.1.0.tgz" "$HELM_ALPHA"
    assert_sha256 "$E17/charts/charts/beta-1.2.3.tgz" "$(sha256_of "$OTHER/beta-1.2.3.tgz")"
    # every file came from the second parent
    tail -n +"$((l2 + 1))" "$SERVE_LOG_p2" >"$T/types-p2.log"
    local f
    for f in '/npm/upfs-demo/-/upfs-demo-1\.0\.0\.tgz' '/py/upfs-demo/upfs_demo-1\.0\.0-py3-none-any\.whl' \
        "/mvn/${JAR//./\\.}" '/charts/charts/alpha-0\.1\.0\.tgz' '/charts/charts/beta-1\.2\.3\.tgz'; do
        grep -qE "\"GET $f\" route=path status=200 " "$T/types-p2.log" || die "no GET of $f at the second parent"
    done
}
check "the first parent stopped: the edge fetches what it listed through the second" t_types_fetch

finish
