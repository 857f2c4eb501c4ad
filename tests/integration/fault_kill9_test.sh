#!/bin/bash
# tests/integration/fault_kill9_test.sh -- crash safety: kill -9 of the daemon at random points
# of a 1 GiB download, 20 times.
#
#     bash tests/integration/fault_kill9_test.sh build/upstreamfs      (FAULT_SEED=N to replay)
#
# A generic proxy on upstream.py serves a 1 GiB file throttled to 256 MiB/s ("slow" fault), so a
# download takes ~4 s. Each round: cat the file through the mount, wait until the daemon's temp
# file in STATE/tmp/ reaches a random offset (round 1: the moment the temp file exists; round 20:
# the moment it is complete, i.e. during verification/commit), kill -9 the daemon. Asserts:
#   * the reader is not left hanging: cat exits (with an error unless it had finished) within 10 s;
#   * on the dead state: PRAGMA integrity_check of index.db is ok;
#   * `upstreamfs mount MNT` on the same mount point succeeds on its own (it detaches the dead
#     mount) and afterwards /proc/self/mounts lists exactly one fuse mount on MNT;
#   * the restarted daemon clears the dead one's leftovers in STATE/tmp/;
#   * `cache verify` reports 0 bad, integrity_check is ok; if the object was committed before the
#     kill it reads back with the right sha256 (then it is evicted for the next round);
#   * finally (fault cleared) the whole 1 GiB reads with the right sha256, verify and integrity
#     are clean, tmp/ is empty, and one mount remains.
# 20 rounds over 1 GiB take ~80 s on 2 cores (the kill point, not the file size, sets the cost).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

ROUNDS="${FAULT_KILL9_ROUNDS:-20}"
SIZE=$((1024 * MIB))
BPS=$((256 * MIB))
SEED="${FAULT_SEED:-$(($(date +%s) % 32768))}"
RANDOM="$SEED"
log "FAULT_SEED=$SEED (set it to replay the same kill points)"

W="$T/www"
MNT="$T/mnt"
fixture_bytes kill9-1g "$SIZE" "$W/1g.bin"
WANT="$(sha256_of "$W/1g.bin")"
upstream_start "$W" --quiet
upfs proxy create big --type generic --url "$UPSTREAM_URL" >/dev/null
upfs_mount "$MNT"
F="$MNT/big/1g.bin"
assert_eq "$(with_timeout 20 stat -c %s "$F")" "$SIZE" "size of 1g.bin (from HEAD)"
upstream_fault "{\"path\": \"^/1g\\\\.bin\$\", \"method\": \"GET\", \"fault\": \"slow\", \"bps\": $BPS}"

# tmp_size: bytes in the (single) download temp file, or -1 when there is none
tmp_size() {
    local f s=-1
    for f in "$STATE"/tmp/*; do
        [[ -f "$f" ]] || continue
        s="$(stat -c %s -- "$f" 2>/dev/null || echo -1)"
    done
    echo "$s"
}

KILL_AT=0
CAT_PID=""
_reached() { (($(tmp_size) >= KILL_AT)) || ! pid_alive "$CAT_PID"; }

ROUND_FAILS=()
fail_round() { ROUND_FAILS+=("round $1 (kill at $2 B): $3"); log "round $1: FAIL: $3"; }

t_rounds() {
    local i pid at cached left integ
    for ((i = 1; i <= ROUNDS; i++)); do
        if ((i == 1)); then
            KILL_AT=0
        elif ((i == ROUNDS)); then
            KILL_AT=$SIZE
        else
            KILL_AT=$(((RANDOM * 32768 + RANDOM) % SIZE))
        fi
        pid="$(daemon_pid "$MNT")"
        cat -- "$F" >/dev/null 2>"$T/cat.err" &
        CAT_PID=$!
        wait_until 60 _reached || die "round $i: the download did not reach $KILL_AT bytes in 60 s (temp file: $(tmp_size) B)"
        at="$(tmp_size)"
        kill -KILL "$pid"
        wait_until 10 _upfs_pid_dead "$pid" || die "round $i: daemon $pid survived kill -9"
        bg_wait "$CAT_PID" 10
        if ((BG_RC == 124)); then
            fail_round "$i" "$at" "cat was still blocked 10 s after the daemon died"
        elif ((BG_RC == 0)) && ((at >= 0 && at < SIZE)); then
            fail_round "$i" "$at" "cat succeeded although the daemon died at $at of $SIZE bytes"
        fi
        # at -1: no temp file was left, i.e. the download had been committed before the kill
        log "round $i: killed daemon $pid at $at B of the download (target $KILL_AT); cat status $BG_RC ($(head -c 200 "$T/cat.err" | tr '\n' ' '))"

        integ="$(db_integrity)"
        [[ "$integ" == ok ]] || fail_round "$i" "$at" "integrity_check on the dead state: $integ"

        # the mount command must clean the dead mount itself
        run_capture with_timeout 30 "$UPFS" --state "$STATE" mount "$MNT"
        ((RC == 0)) || die "round $i: upstreamfs mount over the dead mount failed (status $RC): $ERR"
        [[ "$(mounts_on "$MNT")" == 1 ]] ||
            fail_round "$i" "$at" "$(mounts_on "$MNT") fuse mounts on $MNT after the remount: $(grep -F " $MNT " /proc/self/mounts | tr '\n' ';')"
        with_timeout 10 stat "$MNT/big" >/dev/null 2>&1 || die "round $i: $MNT/big is not usable after the remount"
        if ! wait_until 5 test -z "$(tmp_leftovers)"; then
            left="$(tmp_leftovers | tr '\n' ' ')"
            [[ -z "$left" ]] || fail_round "$i" "$at" "STATE/tmp still holds '$left' 5 s after the restart"
        fi
        (verify_clean) 2>"$T/verify.err" || fail_round "$i" "$at" "$(tail -n 1 "$T/verify.err")"
        integ="$(db_integrity)"
        [[ "$integ" == ok ]] || fail_round "$i" "$at" "integrity_check after the restart: $integ"

        cached="$(xattr cached "$F" || echo '?')"
        if [[ "$cached" == complete ]]; then
            # committed before the kill: it must be the right content; evict it for the next round
            with_timeout 60 cat -- "$F" >"$T/read.tmp" || fail_round "$i" "$at" "cat of the committed file failed"
            [[ "$(sha256_of "$T/read.tmp")" == "$WANT" ]] || fail_round "$i" "$at" "the committed file has the wrong sha256"
            rm -f "$T/read.tmp"
            run_capture upfs cache evict big/1g.bin
            ((RC == 0)) || die "round $i: cache evict big/1g.bin failed: $ERR"
            log "round $i: the object had been committed before the kill (read back, evicted)"
        elif [[ "$cached" != none ]]; then
            fail_round "$i" "$at" "user.upstreamfs.cached is '$cached' after the restart (want none or complete)"
        fi
    done
    ((${#ROUND_FAILS[@]} == 0)) || die "${#ROUND_FAILS[@]} problem(s): $(printf '%s; ' "${ROUND_FAILS[@]}")"
}
check --setup "$ROUNDS x kill -9 mid-download: restart cleans the dead mount and tmp/, verify and integrity_check clean" t_rounds

t_final() {
    local integ
    upstream_clear_faults
    with_timeout 120 cat -- "$F" >"$T/final.bin" || die "the final read of 1g.bin failed: $(cat "$T/final.bin" >/dev/null; echo)"
    assert_sha256 "$T/final.bin" "$WANT"
    rm -f "$T/final.bin"
    assert_eq "$(xattr cached "$F")" complete "user.upstreamfs.cached after the final read"
    verify_clean
    integ="$(db_integrity)"
    assert_eq "$integ" ok "integrity_check at the end"
    assert_eq "$(tmp_leftovers | tr '\n' ' ')" "" "files left in STATE/tmp at the end"
    assert_eq "$(mounts_on "$MNT")" 1 "fuse mounts on $MNT at the end"
    [[ -f "$STATE/blobs/sha256/${WANT:0:2}/$WANT" ]] || die "the blob is not at blobs/sha256/${WANT:0:2}/$WANT"
    log "GETs of 1g.bin over the test: $(upstream_count GET /1g.bin)"
}
check "after the kills the download completes with the right sha256" t_final

finish
