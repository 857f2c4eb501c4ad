#!/bin/bash
# tests/integration/mirrors_test.sh -- a proxy with several URLs, tried in order (--url repeated).
#
#     bash tests/integration/mirrors_test.sh build/upstreamfs      (as root; /dev/fuse)
#
# Two upstreamfs parents (`upstreamfs serve` on 127.0.0.2 and 127.0.0.3, each its own state dir,
# a generic proxy `files` on one throttled origin, lib/upstream.py) and an edge mount whose proxy
# `files` has both parents' /files/ routes as its URLs, in that order. Asserts:
#   - the edge reads through the first parent; the first parent killed (SIGKILL) mid-read of an
#     uncached 256 MiB file by three edges: every reader finishes with the right sha256 through
#     the second (each download starts again there from its first byte), the origin sending the
#     file once per parent;
#   - the first URL then shows backing-off (cause connect) in `proxy show --json`, `proxy show`
#     and /api/v1/proxies/files, while the edge goes on through the second;
#   - the first parent back: after its back-off the edge uses it again (its log) and it shows ok;
#   - nothing wrong is cached: user.upstreamfs.cached complete, and with both parents gone the
#     file reads again from the cache with the right sha256;
#   - a 404 of the first URL is an answer: the second is not asked;
#   - credentials: a proxy with --auth access-key whose first URL refuses connections sends its
#     Basic credentials to its second URL (a configured endpoint), and not to another origin its
#     redirect names;
#   - a docker proxy whose URLs are two parents' /v2/files/ routes (docker-registry behind them):
#     a tag through the first; the first killed, another tag's layout and blobs through the
#     second, each blob's sha256 its name.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"

BIG=$((256 << 20))
SRV="$T/srv"
mkdir -p "$SRV"
fixture_bytes mirrors-big "$BIG" "$SRV/big.bin"
fixture_bytes mirrors-small 100000 "$SRV/small.bin"
fixture_bytes mirrors-after 200000 "$SRV/after.bin"
fixture_bytes mirrors-late 300000 "$SRV/late.bin"
fixture_bytes mirrors-late-2 300001 "$SRV/late-2.bin"
fixture_bytes mirrors-late-3 300002 "$SRV/late-3.bin"
WANT_BIG="$(sha256_of "$SRV/big.bin")"
upstream_start "$SRV" --quiet
# ~5 s for the whole file: a read is still running when a parent is killed
upstream_fault '{"path": "^/big\\.bin$", "fault": "slow", "bps": 50000000}'

# ---- parents ------------------------------------------------------------------------------
addr_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# parent_start NAME ADDR [PORT]: `upstreamfs serve` on ADDR:PORT with its own state dir and a
# generic proxy `files` on the origin; sets P_PORT_NAME, P_PID_NAME, P_LOG_NAME (access log)
parent_start() {
    local name="$1" addr="$2" port="${3:-}" st="$T/state-$1" pid log
    log="$T/serve-$name-$RANDOM.log"
    [[ -n "$port" ]] || port="$(free_port)"
    [[ -e "$st" ]] || "$UPFS" --state "$st" proxy create files --type "${PARENT_TYPE:-generic}" \
        ${PARENT_TYPE:+--source custom} --url "${PARENT_ORIGIN:-$UPSTREAM_URL}" >/dev/null
    "${DIE_WITH_PARENT[@]}" "$UPFS" --state "$st" serve --listen "$addr:$port" </dev/null >"$log" 2>&1 &
    pid=$!
    on_exit "_serve_cleanup $pid"
    wait_until 10 addr_open "$addr" "$port" || { cat "$log" >&2; die "parent $name did not start"; }
    printf -v "P_PORT_$name" '%s' "$port"
    printf -v "P_PID_$name" '%s' "$pid"
    printf -v "P_LOG_$name" '%s' "$log"
}
# byte_asks PATH SIZE < requests JSON: "max M, all A": the most times any byte of PATH was
# asked for (a GET without Range asks for every byte), and whether every byte was (1) or not
byte_asks() {
    "$PYTHON" -c '
import json, sys
path, size = sys.argv[1], int(sys.argv[2])
cover = [0] * ((size + 65535) // 65536)  # per 64 KiB: ranges are whole chunks of 128 KiB or the file
for r in json.load(sys.stdin):
    if r.get("method") != "GET" or r.get("path") != path:
        continue
    a, b = 0, size - 1
    rng = r.get("range")
    if rng and rng.startswith("bytes="):
        lo, _, hi = rng[6:].partition("-")
        a, b = int(lo), (int(hi) if hi else size - 1)
    for i in range(a // 65536, b // 65536 + 1):
        cover[i] += 1
print("max %d, all %d" % (max(cover), int(min(cover) >= 1)))
' "$1" "$2"
}
# asked NAME PATH: the GETs of PATH the parent NAME answered with 200 (its access log)
asked() {
    local log="P_LOG_$1" n
    n="$(grep -cE "\"GET $2\" route=[a-z0-9]+ status=200 " "${!log}" || true)"
    echo "${n:-0}"
}

parent_start p1 127.0.0.2
parent_start p2 127.0.0.3
U1="http://127.0.0.2:$P_PORT_p1/files/"
U2="http://127.0.0.3:$P_PORT_p2/files/"

# ---- the edge -------------------------------------------------------------------------------
API_PORT="$(free_port)"
S="http://127.0.0.1:$API_PORT"
upfs proxy create files --type generic --url "$U1" --url "$U2" >/dev/null
MNT="$T/mnt"
upfs_mount "$MNT" -o "listen=127.0.0.1:$API_PORT"
F="$MNT/files"
# two more edges (own state dirs and mounts), the same URLs: they read big.bin along
ORIG_STATE="$STATE"
for e in e2 e3; do
    STATE="$T/state-$e"
    upfs proxy create files --type generic --url "$U1" --url "$U2" >/dev/null
    upfs_mount "$T/$e"
done
STATE="$ORIG_STATE"

# url_health SRC I FIELD: FIELD of the health of URL I (0: the first) of proxy files, from
# `proxy show --json` (SRC cli) or /api/v1/proxies/files (SRC api)
url_health() {
    local json
    if [[ "$1" == cli ]]; then json="$(upfs proxy show files --json)"; else
        api_get "$S/api/v1/proxies/files"
        json="$BODY"
    fi
    "$PYTHON" -c 'import json,sys; u=json.loads(sys.argv[1])["health"]["urls"][int(sys.argv[2])]; print(u[sys.argv[3]])' \
        "$json" "$2" "$3"
}

t_config() {
    local j
    j="$(upfs proxy show files --json)"
    assert_eq "$("$PYTHON" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["url"], j["mirrors"])' "$j")" \
        "$U1 ['$U2']" "url and mirrors of the edge's proxy"
}
check --setup "--url twice: url is the first, mirrors the second" t_config

t_first_in_order() {
    assert_sha256 "$F/small.bin" "$(sha256_of "$SRV/small.bin")"
    assert_eq "$(asked p1 /files/small\\.bin)" 1 "small.bin at the first parent"
    assert_eq "$(asked p2 /files/small\\.bin)" 0 "small.bin at the second parent"
    [[ ! -e "$F/nothing-here.bin" ]] || die "a missing file exists"
    grep -qE '"(GET|HEAD) /files/nothing-here.bin" route=[a-z0-9]+ status=404 ' "$P_LOG_p1" ||
        die "the first parent was not asked for the missing file"
    if grep -q 'nothing-here' "$P_LOG_p2"; then die "a 404 of the first URL was asked again of the second"; fi
}
check --setup "the first URL answers; a 404 is an answer (the second is not asked)" t_first_in_order

t_failover() {
    local sz=0 pids=() e
    cat "$F/big.bin" >"$T/big.out" &
    pids+=($!)
    for e in e2 e3; do
        cat "$T/$e/files/big.bin" >"$T/big-$e.out" &
        pids+=($!)
    done
    # mid-read: at least 48 MiB have come through the first parent
    wait_until 30 bash -c "(( \$(stat -c %s '$T/big.out' 2>/dev/null || echo 0) >= 48 << 20 ))" ||
        die "the read did not get going"
    sz="$(stat -c %s "$T/big.out")"
    kill -KILL "$P_PID_p1"
    log "the first parent killed after $sz bytes read"
    ((sz < BIG)) || die "the read was over before the first parent was killed"
    for e in "${pids[@]}"; do wait "$e" || die "a reader of big.bin failed"; done
    assert_sha256 "$T/big.out" "$WANT_BIG"
    for e in e2 e3; do
        assert_sha256 "$T/big-$e.out" "$WANT_BIG"
        assert_eq "$(xattr cached "$T/$e/files/big.bin")" complete "big.bin in edge $e's cache"
    done
    # each edge asked the second parent once; each parent asked the origin for each byte once
    # (a parent fetches a file this large by ranged GETs, src/fetch/lazy.c)
    assert_eq "$(asked p2 /files/big\\.bin)" 3 "big.bin from the second parent"
    assert_eq "$(upstream_requests | byte_asks /big.bin "$BIG")" "max 2, all 1" \
        "how often the origin was asked for each byte of big.bin (once per parent at most)"
    assert_eq "$(xattr cached "$F/big.bin")" complete "big.bin in the edge's cache"
    assert_eq "$(xattr digest "$F/big.bin")" "sha256:$WANT_BIG" "big.bin's digest"
}
check --setup "the first parent killed mid-read: 3 edges' readers finish through the second" t_failover

# shows_backing_off: the first URL backs off (cause connect) in proxy show, --json and the API
shows_backing_off() {
    [[ "$(url_health cli 0 state) $(url_health cli 0 cause)" == "backing-off connect" ]] &&
        [[ "$(url_health api 0 state) $(url_health api 0 cause)" == "backing-off connect" ]] &&
        [[ "$(upfs proxy show files)" == *"health.urls: $U1 backing-off: connect -"* ]]
}
t_backing_off() {
    # the first URL is asked again once its back-off is over, fails, and backs off longer; its
    # back-off (2 s, 4 s, ...) may run out before the checks on a loaded machine: then once more
    local f n=0
    sleep 1.2
    for f in late.bin late-2.bin late-3.bin; do
        n=$((n + 1))
        assert_sha256 "$F/$f" "$(sha256_of "$SRV/$f")"
        assert_eq "$(asked p2 "/files/${f//./\\.}")" 1 "$f from the second parent"
        if shows_backing_off; then break; fi
        ((n < 3)) || die "the first URL does not show backing-off (cause connect): $(upfs proxy show files --json)"
    done
    assert_eq "$(url_health api 1 state)" ok "the second URL in /api/v1/proxies/files"
    assert_eq "$(url_health api 0 url)" "$U1" "the first URL's name in the API"
    local failures
    failures="$(url_health api 0 failures)"
    ((failures >= 2)) || die "failures of the first URL: $failures"
    # /metrics: each URL's requests and failures
    api_get "$S/metrics"
    assert_eq "$HTTP_STATUS" 200 "GET /metrics"
    local m1 m2
    m1="$(grep -F "upstreamfs_upstream_url_failures_total{proxy=\"files\",url=\"$U1\"} " <<<"$BODY" | awk '{ print $2 }')"
    m2="$(grep -F "upstreamfs_upstream_url_requests_total{proxy=\"files\",url=\"$U2\"} " <<<"$BODY" | awk '{ print $2 }')"
    assert_eq "$m1" "$failures" "the first URL's failures in /metrics"
    ((m2 >= 2)) || die "requests to the second URL in /metrics: '$m2'"
    assert_contains "$BODY" "upstreamfs_upstream_url_healthy{proxy=\"files\",url=\"$U1\"} 0" "/metrics"
}
check "the first URL shows backing-off (cause connect) in proxy show and the API" t_backing_off

first_url_asked() { [[ "$(url_health api 0 state)" != backing-off ]]; }
t_comes_back() {
    # its back-off (2 s, or up to 8 s) runs out; the edge then asks it first again
    wait_until 40 first_url_asked || die "the first URL still backs off"
    assert_sha256 "$F/after.bin" "$(sha256_of "$SRV/after.bin")"
    assert_eq "$(asked p1 /files/after\\.bin)" 1 "after.bin from the first parent, back"
    assert_eq "$(asked p2 /files/after\\.bin)" 0 "after.bin at the second parent"
    assert_eq "$(url_health cli 0 state)" ok "the first URL once it answers again"
}
parent_start p1 127.0.0.2 "$P_PORT_p1" # (in the main shell: it lives until the test ends)
check "the first parent back: it is used again" t_comes_back

t_nothing_wrong_cached() {
    local before
    before="$(upstream_count GET /big.bin)"
    kill -TERM "$P_PID_p1" "$P_PID_p2"
    wait_until 10 bash -c "! kill -0 $P_PID_p1 2>/dev/null && ! kill -0 $P_PID_p2 2>/dev/null" || true
    cp "$F/big.bin" "$T/big.again"
    assert_sha256 "$T/big.again" "$WANT_BIG"
    assert_eq "$(upstream_count GET /big.bin)" "$before" "origin GETs of big.bin"
}
check "nothing wrong is cached: big.bin reads from the cache alone" t_nothing_wrong_cached

# ---- credentials: every configured URL gets them, a redirect elsewhere does not ----------------
SEC="$T/secrets"
mkdir -p "$SEC/www"
fixture_bytes mirrors-cred 50000 "$SEC/www/cred.bin"
fixture_bytes mirrors-moved 60000 "$SEC/www/moved.bin"
upstream_start --name mirror "$SEC/www" --quiet
upstream_start --name other "$SEC/www" --quiet
upstream_fault --name mirror "{\"path\": \"^/moved\\\\.bin\$\", \"fault\": \"redirect\", \"location\": \"${UPSTREAM_OTHER_URL}moved.bin\"}"
DEAD_PORT="$(free_port)"
printf 's3cr3t-mirrors\n' >"$T/secret"
chmod 600 "$T/secret"

t_credentials() {
    upfs proxy create cred --type generic --url "http://127.0.0.1:$DEAD_PORT/" \
        --url "$UPSTREAM_MIRROR_URL" --auth access-key --access-key bob \
        --secret-key-file "$T/secret" --allow-host 127.0.0.1 >/dev/null
    wait_until 10 test -d "$MNT/cred" || die "the mount did not load the new proxy"
    assert_sha256 "$MNT/cred/cred.bin" "$(sha256_of "$SEC/www/cred.bin")"
    assert_sha256 "$MNT/cred/moved.bin" "$(sha256_of "$SEC/www/moved.bin")"
    local want
    want="Basic $(printf 'bob:s3cr3t-mirrors' | base64 -w0)"
    upstream_requests --name mirror >"$T/mirror.json"
    upstream_requests --name other >"$T/other.json"
    assert_eq "$("$PYTHON" -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1])) if x["path"]=="/cred.bin" and x["method"]=="GET"]; print(len(r), {k.lower(): v for k, v in r[0]["headers"].items()}.get("authorization") == sys.argv[2])' "$T/mirror.json" "$want")" \
        "1 True" "the second URL got the proxy's credentials"
    assert_eq "$("$PYTHON" -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1])) if x["path"]=="/moved.bin"]; print(len(r) > 0, any("authorization" in {k.lower() for k in x["headers"]} for x in r))' "$T/other.json")" \
        "True False" "the redirect's other origin got no credentials"
    if grep -rq 's3cr3t-mirrors' "$STATE/upstreamfs.log" 2>/dev/null; then die "the secret is in the log"; fi
}
check "credentials: the second URL gets them, a redirect's other origin does not" t_credentials

# ---- docker: a registry's parents, in order ------------------------------------------------
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
docker_need_tools
OCI="$T/oci"
D_V1="$(mkimage "$OCI" v1 --text one --big 300000)"
D_V2="$(mkimage "$OCI" v2 --text two --big 200000)"
registry_start reg open
push "oci:$OCI:v1" "127.0.0.1:$REG_PORT_reg/test/hello:v1"
push "oci:$OCI:v2" "127.0.0.1:$REG_PORT_reg/test/hello:v2"
# two parents, each a docker proxy `files` of the registry, served at /v2/files/<repo>/...
PARENT_TYPE=docker PARENT_ORIGIN="http://127.0.0.1:$REG_PORT_reg/" parent_start d1 127.0.0.2
PARENT_TYPE=docker PARENT_ORIGIN="http://127.0.0.1:$REG_PORT_reg/" parent_start d2 127.0.0.3
upfs proxy create hub --type docker --source custom --url "http://127.0.0.2:$P_PORT_d1/files" \
    --url "http://127.0.0.3:$P_PORT_d2/files" >/dev/null

# blobs_verified DIR: every blob of a tag's layout hashes to its name; prints how many
blobs_verified() {
    local f n=0
    for f in "$1"/blobs/sha256/*; do
        assert_sha256 "$f" "$(basename "$f")"
        n=$((n + 1))
    done
    ((n >= 3)) || die "only $n blobs under $1"
    echo "$n"
}

t_docker_parents() {
    wait_until 10 test -d "$MNT/hub" || die "the mount did not load the docker proxy"
    local n
    n="$(blobs_verified "$MNT/hub/test/hello/v1")"
    log "v1: $n blobs through the first parent"
    grep -qE "\"GET /v2/files/test/hello/blobs/sha256:[0-9a-f]+\" route=[a-z0-9]+ status=200 " "$P_LOG_d1" ||
        die "the first parent served no blob"
    if grep -q '/v2/files/test/hello/' "$P_LOG_d2"; then die "the second parent was asked while the first answered"; fi
    kill -KILL "$P_PID_d1"
    n="$(blobs_verified "$MNT/hub/test/hello/v2")"
    log "v2: $n blobs with the first parent gone"
    assert_contains "$(cat "$MNT/hub/test/hello/v2/index.json")" "$D_V2" "v2's index.json"
    grep -qE "\"GET /v2/files/test/hello/blobs/sha256:[0-9a-f]+\" route=[a-z0-9]+ status=200 " "$P_LOG_d2" ||
        die "the second parent served no blob"
    # killed before the request: refused (connect); killed while it answered: a body cut short
    # (http after a 2xx, src/engine/origins.c) -- either is the first URL's failure
    assert_contains "connect http" "$(upfs proxy show hub --json |
        "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["health"]["urls"][0]["cause"] or "none")')" \
        "the first parent's cause"
}
check "docker: a tag through the first parent; the first killed, the next through the second" t_docker_parents

finish
