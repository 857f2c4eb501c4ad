#!/bin/bash
# tests/integration/tier_test.sh -- edges -> Squid -> two upstreamfs parents -> nginx origin.
#
#     bash tests/integration/tier_test.sh build/upstreamfs
#
# The topology of docs/SCALE-OUT.md ("nodes + Squid + parents"), all on loopback, each node
# with its own state dir and mount: an nginx origin; two parents (`upstreamfs serve`, each its
# own state dir, a generic proxy `files` on the origin); Squid (Debian's, docs/squid.conf's
# settings: an accelerator with both parents as cache_peer, collapsed_forwarding on); edges
# (`upstreamfs mount`, a generic proxy `files` whose URL is Squid's /files/).
# Asserts:
#   wave 1: 8 edges read the same uncached 64 MiB file at once: every edge gets the right
#     sha256; the origin sends each byte of the file once (the parent's ranged GETs: body bytes = its size); the parents
#     together are asked for it once;
#   wave 2: 8 more edges with empty caches read it and a small file: right bytes; zero requests
#     for either file reach the parents (Squid answers, the answers were fresh); what does
#     reach a parent (the edges' listings) is only conditional and answered 304;
#   Repr-Digest: the parent states small.bin's sha-256; an edge reads a file whose stated digest
#     is true and refuses (EIO, cause digest, nothing kept) one whose stated digest is false;
#   the first parent killed: 2 edges with empty caches read a file never read before through
#     the second parent (Squid fails over), with the right bytes, the origin asked once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
command -v squid >/dev/null || die "squid is missing (tools/deps.sh --test installs it)"

BIG=$((64 << 20))
SRV="$T/srv"
mkdir -p "$SRV/www/sub"
fixture_bytes tier-big "$BIG" "$SRV/www/big.bin"
fixture_bytes tier-small 70000 "$SRV/www/small.bin"
fixture_bytes tier-late 3000000 "$SRV/www/sub/late.bin"
nginx_start "$SRV"
WANT_BIG="$(sha256_of "$SRV/www/big.bin")"
WANT_SMALL="$(sha256_of "$SRV/www/small.bin")"
WANT_LATE="$(sha256_of "$SRV/www/sub/late.bin")"

# ---- two parents --------------------------------------------------------------------------
ORIG_STATE="$STATE"
for p in p1 p2; do
    STATE="$ORIG_STATE-$p"
    upfs proxy create files --type generic --url "${NGINX_URL}www/" >/dev/null
    serve_start "$p"
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
sed -e "s|@PORT@|$SQ_PORT|g" -e "s|@DIR@|$SQ|g" \
    -e "s|@P1@|$SERVE_PORT_p1|g" -e "s|@P2@|$SERVE_PORT_p2|g" \
    "$(dirname "${BASH_SOURCE[0]}")/tier/squid.conf.in" >"$SQ/squid.conf"
chown -R proxy:proxy "$SQ"
[[ "${KEEP_TMP:-0}" == 1 ]] || on_exit "rm -rf -- '$SQ'"
squid -z -N -f "$SQ/squid.conf" >"$SQ/init.log" 2>&1 || { cat "$SQ/init.log" >&2; die "squid -z failed"; }
"${DIE_WITH_PARENT[@]}" squid -N -f "$SQ/squid.conf" >"$SQ/squid.out" 2>&1 &
SQ_PID=$!
on_exit "kill -TERM $SQ_PID 2>/dev/null; wait $SQ_PID 2>/dev/null || true"
wait_for_port "$SQ_PORT" || { cat "$SQ/squid.out" "$SQ/cache.log" >&2 2>/dev/null; die "squid did not start"; }
log "squid on 127.0.0.1:$SQ_PORT, parents on $SERVE_PORT_p1 and $SERVE_PORT_p2"

# ---- edges ----------------------------------------------------------------------------------
# edge N: a state dir and a mount whose proxy `files` reads through Squid
edge() {
    local n="$1"
    STATE="$ORIG_STATE-e$n"
    upfs proxy create files --type generic --url "http://127.0.0.1:$SQ_PORT/files/" >/dev/null
    # whole objects, no Range: Squid caches whole answers, not ranges (cli_mount.c lazy_min)
    upfs_mount "$T/e$n" -o lazy_min=0
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
check --setup "wave 1: 8 edges, one uncached file: the origin and the parents send it once" t_wave1

t_wave2() {
    read_all small.bin "$WANT_SMALL" 1
    local before_small l1 l2
    before_small="$(parents_count '/files/small\.bin')"
    l1="$(wc -l <"$SERVE_LOG_p1")"
    l2="$(wc -l <"$SERVE_LOG_p2")"
    read_all big.bin "$WANT_BIG" $(seq 9 16)
    read_all small.bin "$WANT_SMALL" $(seq 9 16)
    assert_eq "$(parents_count '/files/big\.bin')" 1 "requests for big.bin at the parents after wave 2"
    assert_eq "$(parents_count '/files/small\.bin')" "$before_small" \
        "requests for small.bin at the parents after wave 2"
    assert_eq "$(origin_big_sent)" "$BIG" "bytes the origin sent for big.bin after wave 2"
    nginx_expect_count 1 GET '^/www/small\.bin$'
    # what still reaches a parent is a revalidation, answered 304
    { tail -n +"$((l1 + 1))" "$SERVE_LOG_p1"; tail -n +"$((l2 + 1))" "$SERVE_LOG_p2"; } |
        grep -E '" route=[a-z0-9]+ status=' >"$T/wave2.log" || true
    log "wave 2: $(wc -l <"$T/wave2.log") requests reached the parents"
    if grep -vE ' status=304 ' "$T/wave2.log" >"$T/wave2-other.log"; then
        die "requests of wave 2 at the parents that were not 304s: $(head -5 "$T/wave2-other.log")"
    fi
}
check "wave 2: 8 new edges: no request for the files reaches a parent; only 304s do" t_wave2

t_failover() {
    read_all sub/late.bin "$WANT_LATE" 17 18
    nginx_expect_count 1 GET '^/www/sub/late\.bin$'
    assert_eq "$(parent_count p2 '/files/sub/late\.bin' 200)" 1 "late.bin through the second parent"
}
# ---- Repr-Digest: a parent states each file's sha256, an edge verifies it --------------------
LIAR_PORT="$(free_port)"
"${DIE_WITH_PARENT[@]}" "$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/tier/stating_server.py" "$LIAR_PORT" &
on_exit "kill $! 2>/dev/null || true"
wait_for_port "$LIAR_PORT" || die "the stating server did not start"
STATE="$ORIG_STATE-e17" upfs proxy create liar --type generic --url "http://127.0.0.1:$LIAR_PORT/" >/dev/null

t_repr_digest() {
    local want
    # the parent states the sha256 of what it holds
    cat "$T/e1/files/small.bin" >/dev/null
    want="sha-256=:$(openssl dgst -sha256 -binary "$SRV/www/small.bin" | base64 -w0):"
    assert_eq "$(curl -sI "http://127.0.0.1:$SERVE_PORT_p1/files/small.bin" | tr -d '\r' |
        awk 'tolower($1) == "repr-digest:" { print $2 }')" "$want" "the parent's Repr-Digest of small.bin"
    # an edge checks what an answer states: a true statement reads, a false one is EIO (digest)
    wait_until 10 test -e "$T/e17/liar/true.bin" || die "the edge did not load the new proxy"
    assert_sha256 "$T/e17/liar/true.bin" \
        "$("$PYTHON" -c 'import hashlib; print(hashlib.sha256(b"true bytes\n" * 1000).hexdigest())')"
    if cat "$T/e17/liar/lie.bin" >"$T/lie.out" 2>"$T/lie.err"; then
        die "a file whose bytes do not match its stated Repr-Digest was read whole"
    fi
    assert_contains "$(cat "$T/lie.err")" "Input/output error" "the error of the false statement"
    assert_contains "$(xattr error "$T/e17/liar/lie.bin" || true)" digest "the cause of the failure"
    assert_eq "$(xattr cached "$T/e17/liar/lie.bin" || true)" none "what was kept of lie.bin"
}
check "Repr-Digest: the parent states each file's sha256; an edge refuses bytes that do not match" t_repr_digest

serve_stop p1
check "the first parent stopped: edges finish through the second" t_failover

finish
