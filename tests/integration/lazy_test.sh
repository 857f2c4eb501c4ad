#!/bin/bash
# tests/integration/lazy_test.sh -- large files are read by the chunks asked for (issue 15).
#
#     bash tests/integration/lazy_test.sh build/upstreamfs
#
# A generic proxy over nginx (access log: method, status, body_bytes_sent, Range) and over
# tests/integration/lazy/origin.py (upstreams that get Range wrong). Asserts:
#  - dd of the last 64 KiB of an uncached 256 MiB file: the open's probe (one chunk) and one
#    ranged GET of the last chunk, <= 2 MiB from the origin, the bytes' sha256 right, the file
#    `partial` in user.upstreamfs.cached with the share present, counted by `cache stats`;
#  - a later sequential read completes it: every byte fetched once (sum of body_bytes_sent
#    == the size), the sha256 right, the object committed (digest xattr, `complete`);
#  - 32 readers at 32 offsets of an uncached file: no byte fetched twice (ranges disjoint,
#    bytes sent <= size + one chunk per request), each reader's bytes right;
#  - kill -9 of the daemon mid-fill (a slow location), then a remount: the read completes,
#    and the origin sends only about the missing part (< size - what was present + 2 chunks);
#  - an upstream that ignores Range (200 whole), one that answers 416, both read right; one
#    that swaps the file between requests: EIO and cause digest, never bytes of both versions;
#  - a file whose content does not match its expected sha256 (digest found at the end): the
#    reader gets EIO, nothing is committed, the partial object is gone;
#  - the shim: a Range GET of an uncached file answers 206 with the right bytes and costs one
#    ranged upstream GET.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

W="$T/www"
MNT="$T/mnt"
MIB=$((1024 * 1024))
SIZE=$((256 * MIB))
CHUNK=$MIB
mkdir -p "$W/slow"
fixture_bytes big.bin "$SIZE" "$W/big.bin"
fixture_bytes r32.bin $((64 * MIB)) "$W/r32.bin"
fixture_bytes seq.bin $((32 * MIB)) "$W/seq.bin"
fixture_bytes slow.bin $((96 * MIB)) "$W/slow/slow.bin"
NGINX_EXTRA='location /slow/ { limit_rate 16m; }'
nginx_start "$W"

sha_of() { sha256sum | cut -d' ' -f1; }
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

upfs proxy create gen --type generic --url "$NGINX_URL" >/dev/null
upfs_mount "$MNT"
G="$MNT/gen"

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
    ((gets <= 2)) || die "the tail read made $gets GETs (want the probe and one ranged GET)"
    ((bytes <= 2 * CHUNK)) || die "the tail read cost $bytes bytes from the origin"
    nginx_ranges '^/big\.bin$' | grep -qx "bytes=$((SIZE - CHUNK))-$((SIZE - 1))" ||
        die "no ranged GET of the last chunk"
    assert_contains "$(xattr cached "$G/big.bin")" partial "cached xattr after the tail read"
}
check "dd of the last 64 KiB of an uncached 256 MiB file: one ranged GET, <= 2 chunks" t_tail

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

finish
