#!/bin/bash
# tests/integration/lazy_test.sh -- large files are read by the chunks asked for (issue 15).
#
#     bash tests/integration/lazy_test.sh build/upstreamfs
#
# A generic proxy over nginx (access log: method, status, body_bytes_sent, Range) and over
# tests/integration/lazy/origin.py (upstreams that get Range wrong). Asserts:
#  - dd of the last 64 KiB of an uncached 256 MiB file: exactly one ranged GET, of the last
#    chunk (the open's probe waits for the first read's offset), <= 1 chunk + 64 KiB from the
#    origin, the bytes' sha256 right, the file `partial` in user.upstreamfs.cached with the
#    share present, counted by `cache stats`;
#  - a later sequential read completes it: every byte fetched once (sum of body_bytes_sent
#    == the size), the sha256 right, the object committed (digest xattr, `complete`);
#  - 16 scattered 4 KiB reads (a dd each) of an uncached file: one GET each, of one 128 KiB
#    chunk (not 1 MiB);
#  - 32 readers at 32 offsets of an uncached file: no byte fetched twice (ranges disjoint,
#    bytes sent <= size + one chunk per request), each reader's bytes right;
#  - kill -9 of the daemon mid-fill (a slow location): the chunk map is the partial object's
#    row in the index (size, bytes present), no .map file; after a remount the read completes,
#    the origin sends only about the missing part (before + after <= size + 16 MiB) and the
#    row is gone with the commit;
#  - a 64 MiB file at 4 MB/s per connection is filled over 4 concurrent ranged streams;
#  - a file longer than its listing said is fetched whole (no chunk taken for the file);
#  - mount refuses bad fill=, streams=, lazy_min= values; fill=never fetches only what is read
#    (and still commits a file read whole), fill=eager fills the whole file after one read;
#  - the quota counts partial objects by their bytes present (their rows in the index); one
#    unused for a minute goes first, row and data file, one used within the minute stays;
#  - an upstream that ignores Range (200 whole), one that answers 416, both read right; one
#    that swaps the file between requests: EIO and cause digest, never bytes of both versions;
#  - a listed large file whose GET answers 404: the open succeeds (its probe waits for the
#    first read), the read fails with EIO after one GET, of the read's chunk;
#  - a 503 to the fill's ranged GET (after the probe's 206): EIO with cause `http 503` (the
#    failure policy's, never digest), not asked again; the next read completes the file;
#  - a file whose content does not match its expected sha256 (digest found at the end): the
#    reader gets EIO, nothing is committed, the partial object is gone (file and row);
#  - the shim: a Range GET of an uncached file answers 206 with the right bytes and costs one
#    ranged upstream GET, also when the range spans several chunks.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

W="$T/www"
MNT="$T/mnt"
MIB=$((1024 * 1024))
SIZE=$((256 * MIB))
CHUNK=$((128 * 1024)) # the chunk map's unit (include/upstreamfs/chunks.h)
mkdir -p "$W/slow"
fixture_bytes big.bin "$SIZE" "$W/big.bin"
fixture_bytes r32.bin $((64 * MIB)) "$W/r32.bin"
fixture_bytes seq.bin $((32 * MIB)) "$W/seq.bin"
fixture_bytes scatter.bin $((64 * MIB)) "$W/scatter.bin"
fixture_bytes wide.bin $((24 * MIB)) "$W/wide.bin"
fixture_bytes slow.bin $((96 * MIB)) "$W/slow/slow.bin"
fixture_bytes par.bin $((64 * MIB)) "$W/slow/par.bin"
NGINX_EXTRA='location /slow/ { limit_rate 4m; }'
nginx_start "$W"

sha_of() { sha256sum | cut -d' ' -f1; }
# The index's row of the partial object of flight key $1: "size<TAB>present", or nothing.
partial_row() {
    index_sql "SELECT size, present FROM partial WHERE key = '$(printf '%s' "$1" | sha_of)'"
}
# Sum of body_bytes_sent of GETs whose path matches $1.
nginx_bytes() {
    "$PYTHON" - "$NGINX_LOG" "$1" <<'PY'
import re, sys
n = 0
for line in open(sys.argv[1], "rb"):
    f = line.rstrip(b"\n").split(b"\t")
    if len(f) >= 12 and f[2] == b"GET" and re.search(sys.argv[2], f[3].decode()):
        n += int(f[6])
print(n)
PY
}
# The Range headers of GETs whose path matches $1, one a line.
nginx_ranges() {
    "$PYTHON" - "$NGINX_LOG" "$1" <<'PY'
import re, sys
for line in open(sys.argv[1], "rb"):
    f = line.rstrip(b"\n").split(b"\t")
    if len(f) >= 12 and f[2] == b"GET" and re.search(sys.argv[2], f[3].decode()):
        print(f[8].decode())
PY
}

# The misbehaving upstreams (lazy/origin.py): version A is served, B is the swapped-in one.
fixture_bytes odd-a $((24 * MIB)) "$T/a.bin"
fixture_bytes odd-b $((24 * MIB)) "$T/b.bin"
ORIGIN_LOG="$T/origin.log"
: >"$ORIGIN_LOG"
"${DIE_WITH_PARENT[@]}" "$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/lazy/origin.py" "$T/origin.port" \
    "$ORIGIN_LOG" "$T/a.bin" "$T/b.bin" &
ORIGIN_PID=$!
on_exit kill "$ORIGIN_PID"
wait_until 10 test -s "$T/origin.port" || die "origin.py did not start"
ORIGIN_URL="http://127.0.0.1:$(cat "$T/origin.port")/"

upfs proxy create gen --type generic --url "$NGINX_URL" >/dev/null
upfs proxy create odd --type generic --url "$ORIGIN_URL" >/dev/null
SPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$SPORT"
wait_for_port "$SPORT" 10 || die "the shim is not listening on $SPORT"
G="$MNT/gen"
O="$MNT/odd"

t_options() {
    expect_fail_with "fill: must be auto, never or eager" "$UPFS" --state "$STATE" mount "$T/m2" -o fill=bogus
    expect_fail_with "streams: must be a number from 1 to 16" "$UPFS" --state "$STATE" mount "$T/m2" -o streams=0
    expect_fail_with "lazy_min: must be a size" "$UPFS" --state "$STATE" mount "$T/m2" -o lazy_min=lots
}
check "mount refuses bad fill=, streams= and lazy_min= values" t_options

# ---- the end of an uncached file: one chunk ------------------------------------------------
t_tail() {
    local want got
    want="$(tail -c 65536 "$W/big.bin" | sha_of)"
    got="$(with_timeout 20 dd if="$G/big.bin" bs=65536 skip=$((SIZE / 65536 - 1)) count=1 status=none | sha_of)"
    assert_eq "$got" "$want" "sha256 of the last 64 KiB"
    local gets bytes
    gets="$(nginx_count GET '^/big\.bin$')"
    bytes="$(nginx_bytes '^/big\.bin$')"
    log "tail read: $gets GETs, $bytes bytes: $(nginx_ranges '^/big\.bin$' | tr '\n' ' ')"
    assert_eq "$gets" 1 "GETs of the tail read (one ranged GET, no probe of the first chunk)"
    ((bytes <= CHUNK + 65536)) || die "the tail read cost $bytes bytes from the origin"
    nginx_ranges '^/big\.bin$' | grep -qx "bytes=$((SIZE - CHUNK))-$((SIZE - 1))" ||
        die "the one GET is not of the last chunk"
    assert_eq "$(xattr cached "$G/big.bin")" "partial 0.0%" "cached xattr after the tail read (128 KiB of 256 MiB)"
    # the map in the index follows within 200 ms (src/fetch/lazy.c)
    wait_until 5 eval '[[ "$(stats_field partial_bytes)" == $CHUNK ]]' || true
    assert_eq "$(stats_field partial_objects)" 1 "cache stats: partial objects"
    assert_eq "$(stats_field partial_bytes)" $CHUNK "cache stats: bytes present of partial objects"
}
check "dd of the last 64 KiB of an uncached 256 MiB file: one ranged GET, <= 1 chunk + 64 KiB" t_tail

t_complete() {
    local got
    got="$(with_timeout 60 cat "$G/big.bin" | sha_of)"
    assert_eq "$got" "$(sha_of <"$W/big.bin")" "sha256 of the whole file after the tail read"
    wait_until 10 eval '[[ "$(xattr cached "$G/big.bin")" == complete ]]' || die "not complete: $(xattr cached "$G/big.bin")"
    local bytes
    bytes="$(nginx_bytes '^/big\.bin$')"
    log "whole read: $(nginx_count GET '^/big\.bin$') GETs, $bytes bytes"
    assert_eq "$bytes" "$SIZE" "bytes the origin sent for big.bin (each byte once)"
}
check "a sequential read completes it: each byte fetched once, committed" t_complete

# ---- scattered small reads: one chunk each --------------------------------------------------
# R2's pattern (tools/bench/lazy.sh): 16 processes, each one `dd` of 4 KiB at i/17 of the file.
t_scatter() {
    local i skip size=$((64 * MIB)) blocks=$((64 * MIB / 4096)) gets bytes
    nginx_log_reset
    for i in $(seq 1 16); do
        skip=$((blocks * i / 17 + i * 7))
        assert_eq "$(with_timeout 20 dd if="$G/scatter.bin" bs=4096 skip=$skip count=1 status=none | sha_of)" \
            "$(dd if="$W/scatter.bin" bs=4096 skip=$skip count=1 status=none | sha_of)" "read $i's bytes"
    done
    gets="$(nginx_count GET '^/scatter\.bin$')"
    bytes="$(nginx_bytes '^/scatter\.bin$')"
    log "16 scattered reads: $gets GETs, $bytes bytes: $(nginx_ranges '^/scatter\.bin$' | tr '\n' ' ')"
    assert_eq "$gets" 16 "GETs of 16 scattered 4 KiB reads (one each, the open's probe is the first)"
    ((bytes <= 16 * CHUNK)) || die "16 scattered 4 KiB reads cost $bytes bytes from the origin (> 16 x $CHUNK)"
    [[ "$(xattr cached "$G/scatter.bin")" == partial* ]] || die "not partial: $(xattr cached "$G/scatter.bin")"
}
check "16 scattered 4 KiB reads of an uncached 64 MiB file: one GET of one 128 KiB chunk each" t_scatter

# ---- 32 readers at 32 offsets --------------------------------------------------------------
t_readers() {
    local i pids=() size=$((64 * MIB))
    for i in $(seq 0 31); do
        (dd if="$G/r32.bin" bs=4096 skip=$((i * 2 * MIB / 4096 + 17)) count=16 status=none | sha_of >"$T/r32.$i") &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || die "a reader failed"; done
    for i in $(seq 0 31); do
        assert_eq "$(cat "$T/r32.$i")" \
            "$(dd if="$W/r32.bin" bs=4096 skip=$((i * 2 * MIB / 4096 + 17)) count=16 status=none | sha_of)" \
            "reader $i's bytes"
    done
    local gets bytes
    gets="$(nginx_count GET '^/r32\.bin$')"
    bytes="$(nginx_bytes '^/r32\.bin$')"
    log "32 readers: $gets GETs, $bytes bytes"
    ((bytes <= size + gets * CHUNK)) || die "32 readers cost $bytes bytes in $gets GETs"
    # no byte range asked twice
    nginx_ranges '^/r32\.bin$' | "$PYTHON" -c '
import sys
r = []
for l in sys.stdin:
    l = l.strip()
    if not l.startswith("bytes="):
        sys.exit("a GET without Range: %r" % l)
    a, b = l[6:].split("-")
    r.append((int(a), int(b) if b else 1 << 62))
r.sort()
for x, y in zip(r, r[1:]):
    if y[0] <= x[1]:
        sys.exit("ranges overlap: %r %r" % (x, y))
'
}
check "32 readers at 32 offsets: no byte fetched twice, right bytes" t_readers

# ---- the shim: a Range of an uncached file ------------------------------------------------
# shim_range_one_get FILE FIRST N: a shim Range of N bytes at FIRST of the uncached FILE is a 206
# with the right bytes, for one upstream GET of the chunks the range covers.
shim_range_one_get() {
    local file="$1" first="$2" n="$3" got want re
    re="^/${file//./\\.}\$"
    nginx_log_reset
    got="$(with_timeout 20 curl -sS -o "$T/shim.part" -w '%{http_code}' -r "$first-$((first + n - 1))" \
        "http://127.0.0.1:$SPORT/gen/$file")" || die "curl of the shim failed"
    assert_eq "$got" 206 "status of the shim's Range answer"
    want="$(dd if="$W/$file" iflag=skip_bytes,count_bytes skip="$first" count="$n" status=none | sha_of)"
    assert_eq "$(sha_of <"$T/shim.part")" "$want" "sha256 of the shim's 206 body"
    nginx_expect_count 1 GET "$re"
    nginx_ranges "$re" | grep -qx "bytes=$((first / CHUNK * CHUNK))-$(((first + n - 1) / CHUNK * CHUNK + CHUNK - 1))" ||
        die "the shim's one upstream GET is not the range's chunks: $(nginx_ranges "$re")"
}
t_shim_range() { shim_range_one_get seq.bin $((20 * MIB + 12345)) 100000; }
check "shim: a Range GET of an uncached 32 MiB file is a 206 that costs one ranged upstream GET" t_shim_range

# A Range across several chunks (3) of an uncached file: the probe asks for all of them
# (engine_wait.first_len).
t_shim_range_wide() { shim_range_one_get wide.bin $((5 * MIB + 777)) 300000; }
check "shim: a Range of 300,000 bytes (3 chunks) of an uncached file costs one ranged upstream GET" t_shim_range_wide

# ---- upstreams that get Range wrong --------------------------------------------------------
t_norange() {
    assert_eq "$(with_timeout 30 cat "$O/norange/big.bin" | sha_of)" "$(sha_of <"$T/a.bin")" \
        "sha256 through an upstream that ignores Range"
    assert_eq "$(grep -c '^/norange/' "$ORIGIN_LOG")" 1 "GETs of the upstream that ignores Range"
}
check "an upstream that ignores Range (200, whole body): right bytes, one GET" t_norange

t_416() {
    assert_eq "$(with_timeout 30 dd if="$O/r416/big.bin" bs=65536 skip=300 count=4 status=none | sha_of)" \
        "$(dd if="$T/a.bin" bs=65536 skip=300 count=4 status=none | sha_of)" \
        "sha256 of a read in the middle through an upstream that answers 416"
    assert_eq "$(with_timeout 30 cat "$O/r416/big.bin" | sha_of)" "$(sha_of <"$T/a.bin")" \
        "sha256 through an upstream that answers 416"
    grep -q '^/r416/big.bin 416 ' "$ORIGIN_LOG" || die "no 416 in the origin's log"
    grep -q '^/r416/big.bin 200 ' "$ORIGIN_LOG" || die "no whole GET after the 416"
}
check "an upstream that answers 416: falls back to the whole body, right bytes" t_416

t_swap() {
    # one open: the read of the end (the probe) gets version A, the read of the middle version
    # B: the flight fails, nothing mixed
    run_capture with_timeout 30 "$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.pread(fd, 65536, int(sys.argv[2]) - 65536)
os.pread(fd, 65536, 100 * 65536)' "$O/swap/big.bin" $((24 * MIB))
    ((RC != 0)) || die "a read across the swap succeeded"
    assert_contains "$ERR" "Input/output error" "the reader's error across the swap"
    wait_until 10 eval '[[ "$(xattr error "$O/swap/big.bin")" == digest* ]]' ||
        die "error xattr after the swap: '$(xattr error "$O/swap/big.bin" || true)'"
    [[ "$(xattr cached "$O/swap/big.bin")" == none ]] || die "cached after the swap: $(xattr cached "$O/swap/big.bin")"
    # the next open starts afresh, on one version
    assert_eq "$(with_timeout 30 cat "$O/swap/big.bin" | sha_of)" "$(sha_of <"$T/b.bin")" \
        "sha256 after the swap: the new version whole"
}
check "an upstream that swaps the file between requests: EIO with cause digest, then the new version whole" t_swap

t_baddigest() {
    run_capture with_timeout 30 cat "$O/baddigest/big.bin"
    ((RC != 0)) || die "a file that does not match its stated digest was read to its end"
    assert_contains "$ERR" "Input/output error" "cat's error"
    wait_until 10 eval '[[ "$(xattr error "$O/baddigest/big.bin")" == digest* ]]' ||
        die "error xattr: '$(xattr error "$O/baddigest/big.bin" || true)'"
    assert_eq "$(xattr cached "$O/baddigest/big.bin")" none "cached xattr after the mismatch"
    local key
    key="$(printf 'url:odd/baddigest/big.bin' | sha_of)"
    [[ ! -e "$STATE/partial/$key" ]] ||
        die "the partial object is left after the mismatch: $(ls -l "$STATE/partial/")"
    assert_eq "$(partial_row url:odd/baddigest/big.bin)" "" "the partial object's row after the mismatch"
    run_capture with_timeout 30 cat "$O/baddigest/big.bin"
    ((RC != 0)) || die "a later read succeeded"
}
check "a digest mismatch found at the end commits nothing, drops the chunks, later reads fail" t_baddigest

t_gone() {
    # the open returns before the remote answers (its probe waits for the first read): the 404
    # fails the read
    run_capture with_timeout 30 dd if="$O/gone/big.bin" of=/dev/null bs=65536 skip=100 count=1 status=none
    ((RC != 0)) || die "a read of a file the remote answers 404 for succeeded"
    assert_contains "$ERR" "Input/output error" "dd's error"
    assert_contains "$(xattr error "$O/gone/big.bin" || true)" "404" "the cause of the failed read"
    assert_eq "$(grep -c '^/gone/big.bin 404 ' "$ORIGIN_LOG")" 1 "GETs of the file (the probe, of the read's chunk)"
    grep -q "^/gone/big.bin 404 0 bytes=$((100 * 65536 / CHUNK * CHUNK))-" "$ORIGIN_LOG" ||
        die "the probe did not ask for the read's chunk: $(grep gone "$ORIGIN_LOG")"
}
check "a listed large file the remote answers 404 for: the read fails with EIO, one GET" t_gone

t_busy() {
    # the probe's GET is a 206; the fill's (the second GET) a 503: the failure policy names it
    # http 503 and, the proxy having one URL, asks no more (include/upstreamfs/failure.h) -- a
    # 503 says nothing of the file, so never digest; the chunks are kept and the next read
    # completes the file
    run_capture with_timeout 30 cat "$O/busy/big.bin"
    ((RC != 0)) || die "a read across a 503 succeeded"
    assert_contains "$ERR" "Input/output error" "cat's error across the 503"
    wait_until 10 eval '[[ "$(xattr error "$O/busy/big.bin")" == "http 503 "* ]]' ||
        die "error xattr after a 503 to a ranged GET: '$(xattr error "$O/busy/big.bin" || true)'"
    assert_eq "$(grep '^/busy/big.bin ' "$ORIGIN_LOG" | cut -d' ' -f2 | tr '\n' ' ')" "206 503 " \
        "GETs of the file: the probe's, then the 503 (not asked again)"
    assert_eq "$(with_timeout 30 cat "$O/busy/big.bin" | sha_of)" "$(sha_of <"$T/a.bin")" \
        "sha256 of the file read after the 503"
}
check "a 503 to a later ranged GET: EIO with cause http 503 (not digest), then the file whole" t_busy

# ---- parallel ranged fill ------------------------------------------------------------------
t_streams() {
    local size=$((64 * MIB)) t0 ms conns
    nginx_log_reset
    t0=$(_upfs_now_ms)
    assert_eq "$(with_timeout 60 cat "$G/slow/par.bin" | sha_of)" "$(sha_of <"$W/slow/par.bin")" \
        "sha256 of a 64 MiB file filled by parallel streams"
    ms=$(($(_upfs_now_ms) - t0))
    wait_until 5 eval '(( $(nginx_bytes "^/slow/par\.bin$") >= size ))' || true
    assert_eq "$(nginx_bytes '^/slow/par\.bin$')" "$size" "bytes sent for par.bin (each once)"
    # nginx's $connection: the ranged GETs came over several connections at once
    conns="$(awk -F'\t' '$3 == "GET" && $4 == "/slow/par.bin" { print $12 }' "$NGINX_LOG" | sort -u | wc -l)"
    log "64 MiB at 4 MB/s per connection: $ms ms over $conns connections (one stream: ~16 s)"
    ((conns >= 4)) || die "the fill used $conns connection(s); want the probe's and 4 streams"
}
check "a 64 MiB file at 4 MB/s per connection is filled by 4 concurrent ranged streams" t_streams

t_grown() {
    # the listing (HEAD) says 24 MiB, the file has grown: the probe's 206 names another length
    local want
    want="$( (cat "$T/a.bin"; head -c 4096 /dev/zero | tr '\0' x) | sha_of)"
    with_timeout 30 cat "$O/grown/big.bin" >/dev/null || die "cat of the grown file failed"
    wait_until 10 eval '[[ "$(xattr digest "$O/grown/big.bin")" == "sha256:$want" ]]' ||
        die "digest of the grown file: '$(xattr digest "$O/grown/big.bin" || true)', want the whole new content's"
    grep -q '^/grown/big.bin 200 [0-9]* -$' "$ORIGIN_LOG" || die "no whole GET after the probe: $(grep grown "$ORIGIN_LOG")"
}
check "a file longer than its listing said: fetched whole, never a chunk taken for the file" t_grown

# ---- kill -9 mid-fill, then resume ---------------------------------------------------------
t_resume() {
    local size=$((96 * MIB)) pid before after
    nginx_log_reset
    (cat "$G/slow/slow.bin" >/dev/null 2>&1 || true) &
    sleep 2.5
    pid="$(upfs_daemon_pids "$MNT")"
    [[ -n "$pid" ]] || die "no daemon for $MNT"
    kill -9 $pid
    wait || true
    fusermount3 -uz "$MNT" || true
    sleep 1 # nginx logs the cut request once it notices
    before="$(nginx_bytes '^/slow/slow\.bin$')"
    # (4 streams at 4 MB/s each for 2.5 s: about 40 MB)
    ((before > 20 * MIB && before < size)) || die "before the kill the origin sent $before bytes"
    # the chunk map is kept in the index (no sidecar file): the size and some bytes present
    local rsize present
    IFS=$'\t' read -r rsize present <<<"$(partial_row url:gen/slow/slow.bin)"
    log "resume: the index's row says $present of ${rsize:-?} bytes present"
    assert_eq "$rsize" "$size" "size in the partial object's row after the kill"
    # (what was sent less the socket buffers' and the last 200 ms' bytes, as below)
    ((present > 0 && present <= before && present + 16 * MIB >= before)) ||
        die "the row says $present bytes present (sent: $before)"
    [[ -z "$(find "$STATE/partial" -name '*.map')" ]] || die "a .map file in $STATE/partial: $(ls "$STATE/partial")"
    nginx_log_reset
    upfs_mount "$MNT" -o "listen=127.0.0.1:$SPORT"
    assert_eq "$(with_timeout 60 cat "$G/slow/slow.bin" | sha_of)" "$(sha_of <"$W/slow/slow.bin")" \
        "sha256 of the resumed file"
    after="$(nginx_bytes '^/slow/slow\.bin$')"
    log "resume: $before bytes before the kill, $after after (size $size)"
    # Sent but never written before the kill: what the 4 connections' socket buffers held, and
    # the chunks of the last 200 ms (the map's save interval). Without resumption after would be
    # the whole size, and after + before > size + 20 MiB.
    ((after + before <= size + 16 * MIB)) || die "after the restart the origin sent $after bytes (before: $before)"
    wait_until 10 eval '[[ -z "$(partial_row url:gen/slow/slow.bin)" ]]' ||
        die "the row is left after the commit: $(partial_row url:gen/slow/slow.bin)"
}
check "kill -9 mid-fill: after a remount only the missing chunks are fetched" t_resume

# ---- fill policy ---------------------------------------------------------------------------
# second_mount NAME OPTS: a mount of its own state dir on the same nginx (STATE changes: call in
# a check's subshell)
second_mount() {
    STATE="$T/state-$1"
    upfs proxy create gen --type generic --url "$NGINX_URL" >/dev/null
    upfs_mount "$T/mnt-$1" -o "$2"
}
t_fill_never() {
    second_mount never fill=never
    nginx_log_reset
    with_timeout 20 dd if="$T/mnt-never/gen/seq.bin" of=/dev/null bs=1M count=2 status=none
    sleep 4 # past the flight's linger: no fill ran meanwhile
    local sent
    sent="$(nginx_bytes '^/seq\.bin$')"
    ((sent <= 4 * MIB)) || die "fill=never: a read of the first 2 MiB made the origin send $sent bytes"
    [[ "$(xattr cached "$T/mnt-never/gen/seq.bin")" == partial* ]] || die "fill=never: not partial: $(xattr cached "$T/mnt-never/gen/seq.bin")"
    # reading all of it still commits it, every chunk fetched by its reader
    assert_eq "$(with_timeout 60 cat "$T/mnt-never/gen/seq.bin" | sha_of)" "$(sha_of <"$W/seq.bin")" "fill=never: sha256"
    wait_until 10 eval '[[ "$(xattr cached "$T/mnt-never/gen/seq.bin")" == complete ]]' || die "fill=never: not complete after a whole read"
    # each byte once, and the one byte that probes the resumed partial object (src/fetch/lazy.c)
    assert_eq "$(nginx_bytes '^/seq\.bin$')" $((32 * MIB + 1)) "fill=never: bytes sent for seq.bin (each once)"
    upfs_unmount "$T/mnt-never"
}
upfs_register_mount "$T/mnt-never"
check "fill=never: a read of 2 MiB fetches about 2 MiB and nothing more; a whole read still commits" t_fill_never

t_fill_eager() {
    second_mount eager fill=eager
    nginx_log_reset
    with_timeout 20 dd if="$T/mnt-eager/gen/r32.bin" of=/dev/null bs=65536 skip=1000 count=1 status=none
    wait_until 30 eval '[[ "$(xattr cached "$T/mnt-eager/gen/r32.bin")" == complete ]]' ||
        die "fill=eager: not complete after one read: $(xattr cached "$T/mnt-eager/gen/r32.bin")"
    assert_eq "$(nginx_bytes '^/r32\.bin$')" $((64 * MIB)) "fill=eager: bytes sent for r32.bin (each once)"
    upfs_unmount "$T/mnt-eager"
}
upfs_register_mount "$T/mnt-eager"
check "fill=eager: one random read fills the whole file in the background" t_fill_eager

# ---- quota: partial objects count, and go first when unused -------------------------------
t_evict_partial() {
    local mnt2="$T/mnt2" key_big key_r32
    STATE="$T/state2"
    upfs proxy create gen --type generic --url "$NGINX_URL" >/dev/null
    upfs_mount "$mnt2" -o quota=32900K
    with_timeout 20 dd if="$mnt2/gen/big.bin" of=/dev/null bs=65536 skip=$((SIZE / 65536 - 1)) count=1 status=none
    with_timeout 20 dd if="$mnt2/gen/r32.bin" of=/dev/null bs=65536 skip=900 count=1 status=none
    sleep 3.5 # the flights linger 3 s for another open, then leave the objects partial
    key_big="$(printf 'url:gen/big.bin' | sha_of)"
    key_r32="$(printf 'url:gen/r32.bin' | sha_of)"
    [[ -e "$STATE/partial/$key_big" && -e "$STATE/partial/$key_r32" ]] ||
        die "the partial objects are not kept: $(ls "$STATE/partial")"
    [[ -n "$(partial_row url:gen/big.bin)" && -n "$(partial_row url:gen/r32.bin)" ]] ||
        die "the partial objects have no rows: $(index_sql 'SELECT key, present FROM partial')"
    assert_eq "$(stats_field partial_bytes)" $((2 * CHUNK)) "bytes present of 2 partial objects"
    # big.bin's was last used 5 minutes ago; r32.bin's just now
    index_sql "UPDATE partial SET updated = updated - 300 WHERE key = '$key_big'"
    # a 32 MiB object: cache 32 MiB + partial 2 chunks (32,768 + 256 KiB) > quota 32,900 KiB
    with_timeout 30 cat "$mnt2/gen/seq.bin" >/dev/null
    wait_until 10 eval '[[ -z "$(partial_row url:gen/big.bin)" ]]' || die "the unused partial object was not evicted"
    [[ ! -e "$STATE/partial/$key_big" ]] || die "the evicted partial object's data is left"
    [[ -n "$(partial_row url:gen/r32.bin)" && -e "$STATE/partial/$key_r32" ]] ||
        die "a partial object used within the minute was evicted"
    grep -q "evicted $CHUNK bytes of partial objects" "$STATE/upstreamfs.log" ||
        die "no eviction of partial objects in the log"
    upfs_unmount "$mnt2"
}
upfs_register_mount "$T/mnt2"
check "quota: partial objects count by bytes present; one unused for a minute is evicted first" t_evict_partial

finish
