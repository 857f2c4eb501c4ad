#!/bin/bash
# tests/integration/fault_slow_test.sh -- deadlines against stalled and slow remotes, 429 with
# Retry-After, and 5xx never remembered as "not found".
#
#     bash tests/integration/fault_slow_test.sh build/upstreamfs
#
# One mount with the shim in the same process (-o listen=), proxies on upstream.py. Asserts:
#   * deadlines (all five readers run at once, each on its own file of proxy "dl"):
#       - headers never come (delay 120 s): cat fails (EIO or ETIMEDOUT) within 25 s;
#       - stall before the first body byte (stall 0 B, 120 s): cat fails within 25 s;
#       - stall after 1 MiB (the reader already has bytes): cat fails within 25 s;
#       - a 1 B/s remote (slow, bps 1): cat fails within 25 s;
#       - a shim client of a stalled file: the HTTP response ends (error, never a clean 200)
#         within 25 s;
#     and none of them leaves anything in STATE/tmp or in the store;
#   * 429 with Retry-After: 4 on a GET (proxy "rl"): no request of any kind reaches the remote
#     for that proxy until 4 s have passed since the 429; readers polling every 250 ms get the
#     file (right sha256) no later than 4 s + 3 s after the 429; exactly 2 GETs in all; while
#     "rl" is held, another proxy ("e5") on the same remote reads normally;
#   * a 5xx is never remembered as absence (proxy "e5", --negative-ttl 300): a 503 at lookup
#     and a 502 on the GET both give EREMOTEIO (never ENOENT); after the fault clears both files read
#     within 5 s (the back-off, not the 300 s negative TTL); through the shim a 503 is a 5xx
#     (never 404) and the file is a 200 within 5 s of the fault clearing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

SRV="$T/srv"
MNT="$T/mnt"
for f in delay stall0 stallmid slow1 stallshim; do fixture_bytes "dl-$f" $((4 * MIB)) "$SRV/dl/$f.bin"; done
fixture_bytes rl-ra $((64 * 1024)) "$SRV/rl/ra.bin"
for f in look get shim iso; do fixture_bytes "e5-$f" $((256 * 1024)) "$SRV/e5/$f.bin"; done
upstream_start "$SRV" --quiet

upfs proxy create dl --type generic --url "${UPSTREAM_URL}dl/" >/dev/null
upfs proxy create rl --type generic --url "${UPSTREAM_URL}rl/" >/dev/null
upfs proxy create e5 --type generic --url "${UPSTREAM_URL}e5/" --negative-ttl 300 >/dev/null
PORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$PORT"
wait_for_port "$PORT" 10 || die "the mount's shim is not listening on $PORT"
S="http://127.0.0.1:$PORT"

# ---- deadlines -------------------------------------------------------------------------------
LIMIT_MS=25000
_cached_is_none() { [[ "$(xattr cached "$1" || echo '?')" == none ]]; }
t_deadlines() {
    local f blobs0 st0 pids=() names=() i rc ms bad=()
    for f in delay stall0 stallmid slow1 stallshim; do
        with_timeout 20 stat "$MNT/dl/$f.bin" >/dev/null || die "stat dl/$f.bin failed"
    done
    blobs0="$(find "$STATE/blobs" -type f | wc -l)"
    upstream_fault '[
        {"path": "^/dl/delay\\.bin$",     "method": "GET", "fault": "delay", "seconds": 120},
        {"path": "^/dl/stall0\\.bin$",    "method": "GET", "fault": "stall", "bytes": 0, "seconds": 120},
        {"path": "^/dl/stallmid\\.bin$",  "method": "GET", "fault": "stall", "bytes": 1048576, "seconds": 120},
        {"path": "^/dl/slow1\\.bin$",     "method": "GET", "fault": "slow", "bps": 1},
        {"path": "^/dl/stallshim\\.bin$", "method": "GET", "fault": "stall", "bytes": 65536, "seconds": 120}]'
    st0="$(_upfs_now_ms)"
    for f in delay stall0 stallmid slow1; do
        (
            t0="$(_upfs_now_ms)"
            rc=0
            timeout -k 5 60 cat -- "$MNT/dl/$f.bin" >"$T/$f.out" 2>"$T/$f.err" || rc=$?
            echo "$rc $(($(_upfs_now_ms) - t0))" >"$T/$f.res"
        ) &
        pids+=($!)
        names+=("$f")
    done
    (
        t0="$(_upfs_now_ms)"
        rc=0
        code="$("${CURL[@]}" --max-time 60 -o "$T/stallshim.out" -w '%{http_code}' "$S/dl/stallshim.bin" 2>"$T/stallshim.err")" || rc=$?
        echo "$rc $(($(_upfs_now_ms) - t0)) $code" >"$T/stallshim.res"
    ) &
    pids+=($!)
    names+=(stallshim)
    for i in "${pids[@]}"; do wait "$i" || true; done
    log "all five readers ended after $(($(_upfs_now_ms) - st0)) ms"
    for f in delay stall0 stallmid slow1; do
        read -r rc ms <"$T/$f.res"
        log "$f: cat status $rc after $ms ms, $(stat -c %s "$T/$f.out") bytes: $(head -c 200 "$T/$f.err" | tr '\n' ' ')"
        if ((rc == 124 || rc == 137)); then bad+=("$f: cat still blocked after 60 s"); continue; fi
        ((rc != 0)) || { bad+=("$f: cat succeeded"); continue; }
        ((ms <= LIMIT_MS)) || bad+=("$f: cat took $ms ms to fail (limit $LIMIT_MS)")
        grep -qE 'Input/output error|Connection timed out' "$T/$f.err" || bad+=("$f: error is not EIO/ETIMEDOUT: $(head -c 200 "$T/$f.err")")
    done
    read -r rc ms code <"$T/stallshim.res"
    log "stallshim (shim): curl exit $rc, status $code after $ms ms, $(stat -c %s "$T/stallshim.out") bytes: $(head -c 200 "$T/stallshim.err" | tr '\n' ' ')"
    if ((rc == 28)); then
        bad+=("shim client of a stalled download still waiting after 60 s")
    else
        ((ms <= LIMIT_MS)) || bad+=("shim client ended after $ms ms (limit $LIMIT_MS)")
        [[ "$rc/$code" != 0/200 ]] || bad+=("shim client got a clean 200 of a stalled download")
    fi
    # A reader may give up (its own stall deadline) a moment before the download does: the
    # abandoned download must be gone shortly after, leaving nothing cached.
    for f in delay stall0 stallmid slow1 stallshim; do
        wait_until 5 _cached_is_none "$MNT/dl/$f.bin" ||
            bad+=("$f: user.upstreamfs.cached is $(xattr cached "$MNT/dl/$f.bin" || echo '?')")
    done
    wait_until 5 test -z "$(tmp_leftovers)" || bad+=("STATE/tmp still holds: $(tmp_leftovers | tr '\n' ' ')")
    assert_eq "$(find "$STATE/blobs" -type f | wc -l)" "$blobs0" "blobs after the abandoned downloads"
    upstream_clear_faults
    ((${#bad[@]} == 0)) || die "$(printf '%s; ' "${bad[@]}")"
}
check "stalled (no headers / no first byte / mid-body), 1 B/s and shim-stalled downloads end within 25 s" t_deadlines

# ---- 429 with Retry-After --------------------------------------------------------------------
RA=4
t_retry_after() {
    local want t0 tries=0 ok=0 res
    want="$(sha256_of "$SRV/rl/ra.bin")"
    with_timeout 20 stat "$MNT/rl/ra.bin" >/dev/null || die "stat rl/ra.bin failed"
    upstream_reset_counts
    upstream_fault "{\"path\": \"^/rl/ra\\\\.bin\$\", \"method\": \"GET\", \"fault\": \"retry_after\", \"seconds\": $RA, \"status\": 429, \"times\": 1}"
    t0="$(_upfs_now_ms)"
    while (($(_upfs_now_ms) - t0 < (RA + 10) * 1000)); do
        tries=$((tries + 1))
        if with_timeout 30 cat -- "$MNT/rl/ra.bin" >"$T/ra.out" 2>"$T/ra.err"; then ok=1; break; fi
        if ((tries == 1)); then
            # the hold is per proxy: another proxy on the same remote reads meanwhile
            with_timeout 10 cat -- "$MNT/e5/iso.bin" >"$T/iso.out" || die "proxy e5 failed while proxy rl was held by Retry-After"
            assert_sha256 "$T/iso.out" "$(sha256_of "$SRV/e5/iso.bin")"
        fi
        sleep 0.25
    done
    log "429 Retry-After: $RA: success=$ok after $tries read(s), $(($(_upfs_now_ms) - t0)) ms; last error: $(head -c 200 "$T/ra.err")"
    ((ok)) || die "rl/ra.bin did not read within $((RA + 10)) s of a 429 with Retry-After: $RA"
    assert_sha256 "$T/ra.out" "$want"
    upstream_requests >"$T/requests.json"
    res="$("$PYTHON" - "$T/requests.json" "$RA" <<'EOF'
import json, sys
reqs = [r for r in json.load(open(sys.argv[1])) if r["path"].startswith("/rl/")]
ra = float(sys.argv[2])
gets = [r for r in reqs if r["method"] == "GET" and r["path"] == "/rl/ra.bin"]
if not gets:
    print("FAIL no GET of /rl/ra.bin reached the remote"); sys.exit()
t429 = gets[0]["time"]
early = ["%s %s at +%.2fs" % (r["method"], r["path"], r["time"] - t429)
         for r in reqs if t429 < r["time"] < t429 + ra - 0.05]
after = [r["time"] - t429 for r in gets[1:]]
if early:
    print("FAIL requests before Retry-After elapsed: " + ", ".join(early)); sys.exit()
if len(gets) != 2:
    print("FAIL %d GETs of /rl/ra.bin (want 2: the 429, then one after %gs): %s"
          % (len(gets), ra, ", ".join("+%.2fs" % a for a in after))); sys.exit()
if after[0] > ra + 3:
    print("FAIL the retry came %.2fs after the 429 (Retry-After %gs; limit %gs)" % (after[0], ra, ra + 3)); sys.exit()
print("OK retry %.2fs after the 429" % after[0])
EOF
)"
    log "$res"
    [[ "$res" == OK* ]] || die "${res#FAIL }"
}
check "429 with Retry-After: 4: no request before 4 s, then success within 7 s, 2 GETs" t_retry_after

# ---- 5xx is not "not found" ------------------------------------------------------------------
_reads() {
    cat -- "$MNT/e5/look.bin" >"$T/look.out" 2>/dev/null && cat -- "$MNT/e5/get.bin" >"$T/get.out" 2>/dev/null
}
t_5xx_not_absent() {
    local t0 i
    with_timeout 20 stat "$MNT/e5/get.bin" >/dev/null || die "stat e5/get.bin failed"
    upstream_fault '[{"path": "^/e5/look\\.bin/?$", "fault": "status", "status": 503},
                     {"path": "^/e5/get\\.bin$", "method": "GET", "fault": "status", "status": 502}]'
    for i in 1 2; do
        expect_fail_with "Remote I/O error" with_timeout 30 cat -- "$MNT/e5/look.bin"
        [[ "$ERR" != *"No such file"* ]] || die "a 503 at lookup was reported as ENOENT"
        expect_fail_with "Remote I/O error" with_timeout 30 cat -- "$MNT/e5/get.bin"
    done
    run_capture stat "$MNT/e5/look.bin"
    [[ "$ERR" != *"No such file"* ]] || die "stat after two 503s at lookup: ENOENT (the 5xx was remembered as absence)"
    (($(upstream_count '*' /e5/look.bin) >= 1)) || die "look.bin was never requested"
    (($(upstream_count GET /e5/get.bin) >= 1)) || die "get.bin was never requested"
    upstream_clear_faults
    t0="$(_upfs_now_ms)"
    wait_until 5 _reads || die "5 s after the 5xx cleared, look.bin/get.bin still fail (negative TTL is 300 s): $(cat "$MNT/e5/look.bin" 2>&1 >/dev/null; cat "$MNT/e5/get.bin" 2>&1 >/dev/null)"
    log "both files read $(($(_upfs_now_ms) - t0)) ms after the fault cleared"
    assert_sha256 "$T/look.out" "$(sha256_of "$SRV/e5/look.bin")"
    assert_sha256 "$T/get.out" "$(sha256_of "$SRV/e5/get.bin")"
}
check "503 at lookup and 502 on GET: EREMOTEIO (cause http), not ENOENT; both read within 5 s of the fault clearing" t_5xx_not_absent

_shim_ok() {
    [[ "$("${CURL[@]}" --max-time 30 -o "$T/shim5.out" -w '%{http_code}' "$S/e5/shim.bin" 2>/dev/null)" == 200 ]]
}
t_5xx_shim() {
    local code
    upstream_fault '{"path": "^/e5/shim\\.bin/?$", "fault": "status", "status": 503}'
    code="$("${CURL[@]}" --max-time 30 -o /dev/null -w '%{http_code}' "$S/e5/shim.bin" 2>/dev/null || true)"
    [[ "$code" == 5* ]] || die "a 503 from the remote reached the shim client as $code (want a 5xx)"
    code="$("${CURL[@]}" --max-time 30 -o /dev/null -w '%{http_code}' "$S/e5/shim.bin" 2>/dev/null || true)"
    [[ "$code" != 404 ]] || die "the second GET after a 503 is a 404: the 5xx was remembered as absence"
    upstream_clear_faults
    wait_until 5 _shim_ok || die "5 s after the 503 cleared, the shim still does not serve e5/shim.bin"
    assert_sha256 "$T/shim5.out" "$(sha256_of "$SRV/e5/shim.bin")"
}
check "through the shim a 503 is a 5xx (never 404), and a 200 within 5 s of clearing" t_5xx_shim

finish
