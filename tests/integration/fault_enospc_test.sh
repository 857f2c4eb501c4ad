#!/bin/bash
# tests/integration/fault_enospc_test.sh -- a full disk under the state dir.
#
#     bash tests/integration/fault_enospc_test.sh build/upstreamfs
#
# The state dir lives on a 64 MiB tmpfs (mount -t tmpfs -o size=64m); the mount's quota (1 GiB)
# is far above it, so the disk fills before the quota is reached. Where a tmpfs cannot be
# mounted (not root, no CAP_SYS_ADMIN) the test says so and exits 77 (ctest: skipped).
# A generic proxy on upstream.py serves twelve 8 MiB files (96 MiB) and one 80 MiB file.
# Asserts:
#   * reading the twelve files one after another: each read returns the right sha256 or fails
#     with ENOSPC ("No space left on device") -- never another error, never wrong bytes; the
#     daemon keeps running (same pid, mount answers) throughout;
#   * the disk really filled or the engine evicted (not all twelve are cached at the end);
#   * PRAGMA integrity_check is ok and `cache verify` is clean; nothing is left in STATE/tmp;
#   * the engine's own eviction on ENOSPC (reader.c dl_fail: "evicting half of the cache") makes
#     room: a second read of each file that failed succeeds without help;
#   * after `cache evict gen` frees room, every file that still failed reads with the right
#     sha256;
#   * a file larger than the whole disk (80 MiB) fails with ENOSPC within 60 s (no hang), leaves
#     nothing in tmp/ (the tmpfs has room again), and the daemon, integrity_check and verify
#     are still fine; a small file reads afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

FS="$T/statefs"
mkdir -p "$FS"
if ! mount -t tmpfs -o size=64m,mode=0700 upfs-enospc "$FS" 2>"$T/tmpfs.err"; then
    log "SKIP: cannot mount a 64 MiB tmpfs for the state dir: $(cat "$T/tmpfs.err") (needs root or CAP_SYS_ADMIN)"
    exit 77
fi
# registered before upfs_mount registers the FUSE cleanup, so it runs after the daemon is gone
on_exit "umount '$FS' 2>/dev/null || umount -l '$FS' 2>/dev/null || true"
STATE="$FS/state"
# keep the daemon's log where KEEP_TMP=1 finds it after the tmpfs is gone
on_exit "cp -f '$STATE/upstreamfs.log' '$T/upstreamfs.log' 2>/dev/null || true"

W="$T/www"
MNT="$T/mnt"
N=12
declare -A SHA=()
for i in $(seq -w 1 $N); do
    fixture_bytes "enospc-$i" $((8 * MIB)) "$W/f$i.bin"
    SHA[f$i.bin]="$(sha256_of "$W/f$i.bin")"
done
fixture_bytes enospc-huge $((80 * MIB)) "$W/huge.bin"
printf 'small file after the disk was full\n' >"$W/small.txt"
SHA[small.txt]="$(sha256_of "$W/small.txt")"
upstream_start "$W" --quiet
upfs proxy create gen --type generic --url "$UPSTREAM_URL" >/dev/null
upfs_mount "$MNT" -o quota=1G
G="$MNT/gen"
PID="$(daemon_pid "$MNT")"
log "state on $(df -h "$FS" | tail -n 1)"

daemon_alive() {
    pid_alive "$PID" || die "the daemon ($PID) died: $(tail -n 5 "$STATE/upstreamfs.log" 2>/dev/null)"
    with_timeout 10 stat "$G" >/dev/null 2>&1 || die "the mount does not answer (stat $G)"
}

FAILED=()
# read_one NAME: right bytes, or ENOSPC (recorded in FAILED); anything else dies
read_one() {
    local f="$1"
    elapsed_ms with_timeout 60 cp -- "$G/$f" "$T/read.tmp"
    if ((RC == 0)); then
        [[ "$(sha256_of "$T/read.tmp")" == "${SHA[$f]}" ]] || die "$f: read succeeded with WRONG bytes"
        log "$f: ok ($MS ms); tmpfs $(df --output=avail -B1M "$FS" | tail -n 1 | tr -d ' ') MiB free"
    elif ((RC == 124)); then
        die "$f: the read hung for 60 s on a full disk"
    elif [[ "$ERR" == *"No space left on device"* ]]; then
        log "$f: ENOSPC after $MS ms"
        FAILED+=("$f")
    else
        die "$f: failed with something else than ENOSPC (status $RC): $ERR"
    fi
    rm -f "$T/read.tmp"
}

t_fill() {
    local i n=0
    for i in $(seq -w 1 $N); do
        read_one "f$i.bin"
        daemon_alive
    done
    for i in $(seq -w 1 $N); do
        [[ "$(xattr cached "$G/f$i.bin")" == complete ]] && n=$((n + 1))
    done
    log "after reading $N x 8 MiB into a 64 MiB disk: $n cached, ${#FAILED[@]} ENOSPC (${FAILED[*]:-none}), evictions: $(grep -c 'evict' "$STATE/upstreamfs.log" || true) log line(s)"
    ((n < N)) || die "all $N x 8 MiB files are cached on a 64 MiB disk?"
    # an empty list must stay an empty file (printf would write one empty line)
    if ((${#FAILED[@]})); then printf '%s\n' "${FAILED[@]}"; fi >"$T/failed.list"
}
check --setup "filling the disk: each read gives the right bytes or ENOSPC; the daemon keeps running" t_fill

t_consistent() {
    daemon_alive
    assert_eq "$(db_integrity)" ok "integrity_check after the disk filled"
    verify_clean
    wait_until 5 test -z "$(tmp_leftovers)" || die "STATE/tmp still holds $(tmp_leftovers | tr '\n' ' ')"
}
check "after the disk filled: integrity_check ok, cache verify clean, tmp/ empty" t_consistent

t_auto_evict() {
    local f again=()
    FAILED=()
    [[ -s "$T/failed.list" ]] || { log "no read failed with ENOSPC (the engine evicted in time)"; return 0; }
    mapfile -t again <"$T/failed.list"
    # dl_fail (src/engine/reader.c) logs "evicting half of the cache" on ENOSPC so that "the next
    # attempt can succeed": a second read of each failed file must now find room
    for f in "${again[@]}"; do read_one "$f"; done
    # an empty list must stay an empty file (printf would write one empty line)
    if ((${#FAILED[@]})); then printf '%s\n' "${FAILED[@]}"; fi >"$T/failed.list"
    daemon_alive
    ((${#FAILED[@]} == 0)) || die "the engine logged $(grep -c 'evicting half of the cache' "$STATE/upstreamfs.log" || true) x 'no space left for a download; evicting half of the cache' but evicted nothing ($(grep -c 'evicted [0-9]* object' "$STATE/upstreamfs.log" || true) 'evicted N object(s)' lines; cache_objects $(stats_field cache_objects)); a second read still fails with ENOSPC: ${FAILED[*]}"
}
check "after ENOSPC the engine's own eviction makes room: a second read of each failed file succeeds" t_auto_evict

t_recover() {
    local f again=()
    FAILED=()
    [[ -s "$T/failed.list" ]] || return 0
    mapfile -t again <"$T/failed.list"
    expect_ok upfs cache evict gen
    log "cache evict gen: $OUT"
    for f in "${again[@]}"; do read_one "$f"; done
    ((${#FAILED[@]} == 0)) || die "after cache evict gen these still fail with ENOSPC: ${FAILED[*]}"
    daemon_alive
}
check "after cache evict frees room, the files that failed read with the right sha256" t_recover

_space_back() { (($(df --output=avail -B1M "$FS" | tail -n 1 | tr -d ' ') >= $1)); }
t_huge() {
    local avail0 avail1
    avail0="$(df --output=avail -B1M "$FS" | tail -n 1 | tr -d ' ')"
    elapsed_ms with_timeout 60 cp -- "$G/huge.bin" "$T/huge.tmp"
    rm -f "$T/huge.tmp"
    ((RC != 124)) || die "reading an 80 MiB file into a 64 MiB disk hung for 60 s"
    ((RC != 0)) || die "an 80 MiB file was read through a 64 MiB disk (the engine streamed it without caching?) -- unexpected but not wrong; check it"
    assert_contains "$ERR" "No space left on device" "reading a file larger than the disk"
    log "huge.bin: ENOSPC after $MS ms"
    daemon_alive
    wait_until 5 test -z "$(tmp_leftovers)" || die "STATE/tmp still holds $(tmp_leftovers | tr '\n' ' ') after the oversize download"
    # the reader may hear of ENOSPC (a stream's write failed) a moment before the flight has
    # ended and truncated its partial file (src/fetch/flight.c, finish_failed)
    wait_until 5 _space_back 8 || true
    avail1="$(df --output=avail -B1M "$FS" | tail -n 1 | tr -d ' ')"
    log "tmpfs free: $avail0 MiB before, $avail1 MiB after"
    ((avail1 >= 8)) || die "only $avail1 MiB free on the state disk 5 s after the failed download"
    assert_eq "$(db_integrity)" ok "integrity_check after the oversize download"
    verify_clean
    read_one small.txt
    ((${#FAILED[@]} == 0)) || die "a small file fails with ENOSPC after the oversize download"
}
check "a file larger than the disk: ENOSPC (no hang), tmp/ cleaned, the daemon and the index fine" t_huge

finish
