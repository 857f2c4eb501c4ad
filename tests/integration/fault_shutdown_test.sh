#!/bin/bash
# tests/integration/fault_shutdown_test.sh -- unmount and SIGTERM with reads in flight.
#
#     bash tests/integration/fault_shutdown_test.sh build/upstreamfs
#
# upstream.py serves 24 MiB files throttled to 4 MiB/s (a download takes ~6 s), some stalled
# (1 MiB, then nothing for 120 s) or with headers delayed 120 s. Each case uses its own mount
# point and files. Asserts:
#   1. `fusermount3 -u` while a shim client (-o listen=) is mid-download: the unmount succeeds;
#      within 5 s the daemon is gone (no process of this binary on this state dir, pgrep), the
#      client's transfer has ended with an error (never a clean 200), tmp/ holds nothing and
#      integrity_check is ok;
#   2. `fusermount3 -u` while a FUSE reader is mid-read: the kernel refuses (busy) at once --
#      checked only so that it does not hang -- and the mount keeps serving;
#      `fusermount3 -uz` then (reader and a shim client in flight): returns at once and MNT is
#      detached at once; the reader and the client end (all bytes right, or an error) and never
#      hang; within 5 s of the last of them no daemon is left. (Lazy unmount keeps open files
#      working by definition, so "within 5 s of -uz" is reported, not asserted; see
#      docs/RELIABILITY.md.)
#   3. SIGTERM of the mount daemon with five requests in flight (FUSE: mid-read, blocked in read
#      on a stalled download, blocked in open on headers that never come; shim: mid-download,
#      waiting for headers): within 5 s the daemon has exited, MNT is unmounted, every cat has
#      exited with an error, every curl has ended without a clean 200, no process is left and
#      integrity_check is ok; and (a check of its own) the partial downloads are gone from tmp/;
#   4. SIGTERM of `upstreamfs serve` with a client mid-download: serve exits with status 0
#      within 5 s and the client's transfer ends with an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

W="$T/www"
for f in u1 uz1 uz2 t1 t2 t3 t4 t5 v1; do fixture_bytes "shut-$f" $((24 * MIB)) "$W/$f.bin"; done
upstream_start "$W" --quiet
upfs proxy create gen --type generic --url "$UPSTREAM_URL" >/dev/null
upstream_fault '[
    {"path": "^/(u1|uz1|uz2|t1|t4|v1)\\.bin$", "method": "GET", "fault": "slow", "bps": 4194304},
    {"path": "^/t2\\.bin$", "method": "GET", "fault": "stall", "bytes": 1048576, "seconds": 120},
    {"path": "^/(t3|t5)\\.bin$", "method": "GET", "fault": "delay", "seconds": 120}]'

# bg_cat NAME PATH: cat PATH to $T/NAME.out in the background; sets BG_PID_<NAME>
bg_cat() {
    cat -- "$2" >"$T/$1.out" 2>"$T/$1.err" &
    printf -v "BG_PID_$1" '%s' "$!"
}
# bg_curl NAME URL: curl URL to $T/NAME.out, status code to $T/NAME.code
bg_curl() {
    "${CURL[@]}" --max-time 120 -o "$T/$1.out" -w '%{http_code}' "$2" >"$T/$1.code" 2>"$T/$1.err" &
    printf -v "BG_PID_$1" '%s' "$!"
}
_has_bytes() { [[ -f "$T/$1.out" ]] && (($(stat -c %s "$T/$1.out") >= $2)); }
_got_get() { (($(upstream_count GET "/$1") >= 1)); }
pid_of() { local v="BG_PID_$1"; echo "${!v}"; }
outcome() { echo "$1: status $BG_RC, $(stat -c %s "$T/$1.out" 2>/dev/null || echo 0) bytes, $(cat "$T/$1.code" 2>/dev/null) $(head -c 160 "$T/$1.err" | tr '\n' ' ')"; }

mount_with_shim() {
    local mnt="$1"
    PORT="$(free_port)"
    upfs_mount "$mnt" -o "listen=127.0.0.1:$PORT"
    wait_for_port "$PORT" 10 || die "the shim of $mnt is not listening on $PORT"
}

# mounts are made inside checks (subshells): register their cleanup here, in the main shell
for m in mnt1 mnt2 mnt3; do upfs_register_mount "$T/$m"; done
SERVE_PIDFILE="$T/serve.pid"
on_exit '[[ -s "$SERVE_PIDFILE" ]] && kill -KILL "$(cat "$SERVE_PIDFILE")" 2>/dev/null || true'

# ---- 1. fusermount3 -u with a shim client mid-download ---------------------------------------
t_unmount_shim() {
    local m="$T/mnt1" t0 ms bad=()
    mount_with_shim "$m"
    bg_curl u1 "http://127.0.0.1:$PORT/gen/u1.bin"
    wait_until 20 _has_bytes u1 $MIB || die "the shim client did not start receiving u1.bin"
    t0="$(_upfs_now_ms)"
    run_capture with_timeout 10 fusermount3 -u "$m"
    ((RC == 0)) || die "fusermount3 -u with only a shim client in flight failed (status $RC): $ERR"
    wait_until 5 no_upfs_left || bad+=("upstreamfs still running 5 s after fusermount3 -u: $(upfs_state_pids | tr '\n' ' ')")
    bg_wait "$(pid_of u1)" $((5 - ($(_upfs_now_ms) - t0) / 1000 > 0 ? 5 - ($(_upfs_now_ms) - t0) / 1000 : 0))
    ms=$(($(_upfs_now_ms) - t0))
    log "fusermount3 -u: $(outcome u1) after $ms ms"
    ((BG_RC != 124)) || bad+=("the shim client was still receiving 5 s after the unmount")
    [[ "$BG_RC/$(cat "$T/u1.code")" != 0/200 ]] || bad+=("the shim client got a clean 200 although the daemon stopped mid-download")
    assert_eq "$(mounts_on "$m")" 0 "mounts on $m after fusermount3 -u"
    wait_until 5 no_upfs_left || die "daemon still running"
    assert_eq "$(tmp_leftovers | tr '\n' ' ')" "" "STATE/tmp after the shutdown"
    assert_eq "$(db_integrity)" ok "integrity_check after the shutdown"
    ((${#bad[@]} == 0)) || die "$(printf '%s; ' "${bad[@]}")"
}
check "fusermount3 -u with a shim client mid-download: daemon gone and client cut within 5 s" t_unmount_shim

# ---- 2. fusermount3 -u (refused while busy), then -uz, with reads in flight ------------------
t_unmount_lazy() {
    local m="$T/mnt2" t0 tend=0 ms bad=() r want1 want2
    want1="$(sha256_of "$W/uz1.bin")"
    want2="$(sha256_of "$W/uz2.bin")"
    mount_with_shim "$m"
    bg_cat uz1 "$m/gen/uz1.bin"
    bg_curl uz2 "http://127.0.0.1:$PORT/gen/uz2.bin"
    wait_until 20 _has_bytes uz1 $MIB || die "the FUSE reader did not start receiving uz1.bin"
    wait_until 20 _has_bytes uz2 $MIB || die "the shim client did not start receiving uz2.bin"
    elapsed_ms with_timeout 10 fusermount3 -u "$m"
    ((RC != 124)) || die "fusermount3 -u with an open file hung"
    log "fusermount3 -u with a FUSE reader in flight: status $RC after $MS ms: $ERR"
    if ((RC != 0)); then
        with_timeout 10 stat "$m/gen" >/dev/null || die "the mount stopped answering after a refused fusermount3 -u"
    fi
    t0="$(_upfs_now_ms)"
    if grep -qF " $m fuse" /proc/self/mounts; then
        run_capture with_timeout 10 fusermount3 -uz "$m"
        ((RC == 0)) || die "fusermount3 -uz failed (status $RC): $ERR"
        (($(_upfs_now_ms) - t0 < 5000)) || bad+=("fusermount3 -uz took $(($(_upfs_now_ms) - t0)) ms")
    fi
    assert_eq "$(mounts_on "$m")" 0 "mounts on $m right after fusermount3 -uz"
    # the readers end: the rest of a 24 MiB download at 4 MiB/s is < 6 s, the stall deadline 20 s
    for r in uz1 uz2; do
        bg_wait "$(pid_of "$r")" 30
        log "after -uz: $(outcome "$r") after $(($(_upfs_now_ms) - t0)) ms"
        ((BG_RC != 124)) || bad+=("$r was still running 30 s after fusermount3 -uz")
    done
    tend="$(_upfs_now_ms)"
    if wait_until 5 no_upfs_left; then
        ms=$(($(_upfs_now_ms) - t0))
        log "no daemon left $ms ms after fusermount3 -uz ($((ms <= 5000 ? 1 : 0)) = within 5 s of the -uz; $(($(_upfs_now_ms) - tend)) ms after the last reader ended)"
    else
        bad+=("the daemon still runs 5 s after the last reader of the lazily unmounted mount ended: $(upfs_state_pids | tr '\n' ' ')")
    fi
    # whatever the readers got must be right when they report success
    if [[ -s "$T/uz1.out" ]] && ! grep -q . "$T/uz1.err"; then
        [[ "$(sha256_of "$T/uz1.out")" == "$want1" ]] || bad+=("the FUSE reader finished with wrong bytes after -uz")
    fi
    if [[ "$(cat "$T/uz2.code")" == 200 ]] && ! grep -q . "$T/uz2.err"; then
        [[ "$(sha256_of "$T/uz2.out")" == "$want2" ]] || bad+=("the shim client finished with wrong bytes after -uz")
    fi
    assert_eq "$(db_integrity)" ok "integrity_check after -uz"
    ((${#bad[@]} == 0)) || die "$(printf '%s; ' "${bad[@]}")"
}
check "fusermount3 -u refuses while busy without hanging; -uz detaches at once, readers end, no daemon left" t_unmount_lazy

# ---- 3. SIGTERM with five requests in flight -------------------------------------------------
t_sigterm() {
    local m="$T/mnt3" pid t0 r bad=() ms
    mount_with_shim "$m"
    pid="$(daemon_pid "$m")"
    bg_cat t1 "$m/gen/t1.bin"
    bg_cat t2 "$m/gen/t2.bin"
    bg_cat t3 "$m/gen/t3.bin"
    bg_curl t4 "http://127.0.0.1:$PORT/gen/t4.bin"
    bg_curl t5 "http://127.0.0.1:$PORT/gen/t5.bin"
    wait_until 20 _has_bytes t1 $MIB || die "t1 (slow) did not start"
    # a 24 MiB file is a partial object: its first answer is one 128 KiB chunk (the probe,
    # src/fetch/lazy.c), after which every answer stalls
    wait_until 20 _has_bytes t2 $((128 * 1024)) || die "t2 (stalled) did not receive its first chunk"
    wait_until 20 _has_bytes t4 $MIB || die "t4 (shim, slow) did not start"
    wait_until 10 _got_get t3.bin || die "t3 (headers delayed) never reached the remote"
    wait_until 10 _got_get t5.bin || die "t5 (shim, headers delayed) never reached the remote"
    sleep 0.3
    t0="$(_upfs_now_ms)"
    kill -TERM "$pid"
    wait_until 5 _upfs_pid_dead "$pid" || bad+=("the daemon ignored SIGTERM for 5 s")
    ms=$(($(_upfs_now_ms) - t0))
    log "daemon $pid gone $ms ms after SIGTERM"
    for r in t1 t2 t3 t4 t5; do
        bg_wait "$(pid_of "$r")" $((ms < 5000 ? (5000 - ms) / 1000 + 1 : 1))
        log "SIGTERM: $(outcome "$r") at $(($(_upfs_now_ms) - t0)) ms"
        if ((BG_RC == 124)); then bad+=("$r still running 5 s after SIGTERM"); continue; fi
        case "$r" in
            t1 | t2 | t3) ((BG_RC != 0)) || bad+=("$r: cat succeeded although the daemon stopped mid-download") ;;
            *) [[ "$BG_RC/$(cat "$T/$r.code")" != 0/200 ]] || bad+=("$r: the shim client got a clean 200") ;;
        esac
    done
    (($(_upfs_now_ms) - t0 <= 6000)) || bad+=("the readers took $(($(_upfs_now_ms) - t0)) ms to end after SIGTERM")
    assert_eq "$(mounts_on "$m")" 0 "mounts on $m after SIGTERM"
    wait_until 2 no_upfs_left || bad+=("processes left after SIGTERM: $(upfs_state_pids | tr '\n' ' ')")
    wait_until 2 test -z "$(tmp_leftovers)" || true
    (cd "$STATE/tmp" && ls -l --time-style=+ 2>/dev/null | tail -n +2) >"$T/tmp-after-sigterm"
    assert_eq "$(db_integrity)" ok "integrity_check after SIGTERM"
    grep -q "unmounting $m" "$STATE/upstreamfs.log" || bad+=("the daemon did not log its shutdown")
    ((${#bad[@]} == 0)) || die "$(printf '%s; ' "${bad[@]}")"
}
check "SIGTERM with 5 requests in flight (read, stalled read, open, 2 shim): all end within 5 s, nothing left" t_sigterm

t_sigterm_tmp() {
    [[ -f "$T/tmp-after-sigterm" ]] || die "t_sigterm did not get that far"
    [[ ! -s "$T/tmp-after-sigterm" ]] || die "partial downloads left in STATE/tmp by the SIGTERM shutdown (removed only by the next start): $(tr '\n' ';' <"$T/tmp-after-sigterm")"
}
check "a SIGTERM shutdown removes its partial downloads from STATE/tmp" t_sigterm_tmp

# ---- 4. SIGTERM of serve ---------------------------------------------------------------------
t_serve_sigterm() {
    local pid port rc=0 t0
    port="$(free_port)"
    "$UPFS" --state "$STATE" serve --listen "127.0.0.1:$port" </dev/null >"$T/serve.log" 2>&1 &
    pid=$!
    echo "$pid" >"$SERVE_PIDFILE"
    wait_for_port "$port" 10 || die "serve did not start: $(cat "$T/serve.log")"
    bg_curl v1 "http://127.0.0.1:$port/gen/v1.bin"
    wait_until 20 _has_bytes v1 $MIB || die "the serve client did not start receiving v1.bin"
    t0="$(_upfs_now_ms)"
    kill -TERM "$pid"
    wait_until 5 _upfs_pid_dead "$pid" || die "serve still runs 5 s after SIGTERM"
    wait "$pid" || rc=$?
    log "serve exited with status $rc $(($(_upfs_now_ms) - t0)) ms after SIGTERM"
    bg_wait "$(pid_of v1)" 3
    log "serve SIGTERM: $(outcome v1)"
    ((BG_RC != 124)) || die "the client of serve still receives after serve exited"
    [[ "$BG_RC/$(cat "$T/v1.code")" != 0/200 ]] || die "the serve client got a clean 200 although serve stopped mid-download"
    assert_eq "$rc" 0 "exit status of serve after SIGTERM"
    wait_until 2 no_upfs_left || die "processes left after serve stopped: $(upfs_state_pids | tr '\n' ' ')"
    assert_eq "$(tmp_leftovers | tr '\n' ' ')" "" "STATE/tmp after serve stopped"
}
check "SIGTERM of serve with a client mid-download: exit 0 within 5 s, the client cut" t_serve_sigterm

finish
