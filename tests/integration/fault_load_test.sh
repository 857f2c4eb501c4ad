#!/bin/bash
# tests/integration/fault_load_test.sh -- 64 shim clients and 16 mount readers for 60 s.
#
#     bash tests/integration/fault_load_test.sh build/upstreamfs      (LOAD_SECS=N to change 60)
#
# upstream.py serves two trees: tree/ (200 files, 4 KiB - 8 MiB, log-uniform sizes, ~200 MiB,
# fixture_bytes) behind proxy "load", and flaky/ (20 files, 4 KiB - 1 MiB) behind proxy
# "flaky", where faults are injected at a low rate: 503 on the first 3 GETs of 10 files and a
# connection reset mid-body on the first GET of 5 others. One mount with the shim in the same
# process (-o quota=96M,listen=...): the quota is half the tree, so objects are evicted and
# fetched again all the time and the mix stays hits + misses. 64 shim clients (curl in a loop)
# and 16 FUSE readers (cat in a loop) pick random files (1 in 10 from flaky/) for LOAD_SECS.
# Asserts:
#   * zero wrong bytes: every successful read (cat status 0, or curl status 0 with HTTP 200)
#     has the file's sha256;
#   * errors only where faults were injected: no failed read at all on proxy "load"; on
#     "flaky" a failure is EIO/EREMOTEIO/ETIMEDOUT (FUSE) or a 5xx / a cut transfer (shim) -- never ENOENT or 404;
#   * the daemon stays up and its RSS (VmRSS, sampled every second) grows by at most 64 MiB
#     from the 10 s mark to the end (min/max reported);
#   * afterwards: integrity_check ok, `cache verify` clean, cache_bytes within quota + the
#     largest object per reader; every request finished (no reader hung).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

SECS="${LOAD_SECS:-60}"
N_SHIM=64
N_FUSE=16
NFILES=200
NFLAKY=20
RSS_LIMIT_KB=$((64 * 1024))

W="$T/www"
MNT="$T/mnt"
mkdir -p "$W/tree" "$W/flaky"
# sizes: log-uniform between 4 KiB and 8 MiB (seeded, so every run has the same tree)
"$PYTHON" - "$NFILES" "$NFLAKY" >"$T/sizes" <<'EOF'
import math, random, sys
r = random.Random(20240101)
n, nf = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print("tree/f%03d.bin %d" % (i, int(math.exp(r.uniform(math.log(4096), math.log(8 << 20))))))
for i in range(nf):
    print("flaky/g%02d.bin %d" % (i, int(math.exp(r.uniform(math.log(4096), math.log(1 << 20))))))
EOF
while read -r rel size; do fixture_bytes "load-$rel" "$size" "$W/$rel"; done <"$T/sizes"
declare -A SHA=()
while read -r hex rel; do SHA["$rel"]="$hex"; done < <(cd "$W" && sha256sum tree/* flaky/*)
TREE=(); FLAKY=()
for rel in "${!SHA[@]}"; do
    if [[ "$rel" == tree/* ]]; then TREE+=("$rel"); else FLAKY+=("$rel"); fi
done
log "tree: ${#TREE[@]} files, $(du -sm "$W/tree" | cut -f1) MiB; flaky: ${#FLAKY[@]} files"

upstream_start "$W" --quiet
upfs proxy create load --type generic --url "${UPSTREAM_URL}tree/" >/dev/null
upfs proxy create flaky --type generic --url "${UPSTREAM_URL}flaky/" >/dev/null
PORT="$(free_port)"
upfs_mount "$MNT" -o "quota=96M,listen=127.0.0.1:$PORT"
wait_for_port "$PORT" 10 || die "the shim is not listening on $PORT"
PID="$(daemon_pid "$MNT")"
# faults on flaky/: 503 x3 on g00..g09, a reset after half the body on g10..g14
FAULTS="["
for i in 00 01 02 03 04 05 06 07 08 09; do
    FAULTS+="{\"path\": \"^/flaky/g$i\\\\.bin\$\", \"method\": \"GET\", \"fault\": \"status\", \"status\": 503, \"times\": 3},"
done
for i in 10 11 12 13 14; do
    FAULTS+="{\"path\": \"^/flaky/g$i\\\\.bin\$\", \"method\": \"GET\", \"fault\": \"reset\", \"times\": 1},"
done
upstream_fault "${FAULTS%,}]"

RES="$T/res"
mkdir -p "$RES"
END_MS=$(($(_upfs_now_ms) + SECS * 1000))

# client KIND ID: loop until END_MS; one line per request:
#   KIND REL RC HTTP_CODE SHA_OK MS ERROR
client() {
    local kind="$1" id="$2" out="$T/res/$1-$2.out" rel proxy rc code ok t0 err
    RANDOM=$((id * 7919 + ${#kind}))
    while (($(_upfs_now_ms) < END_MS)); do
        if ((RANDOM % 10 == 0)); then rel="${FLAKY[RANDOM % ${#FLAKY[@]}]}"; proxy=flaky; else rel="${TREE[RANDOM % ${#TREE[@]}]}"; proxy=load; fi
        t0="$(_upfs_now_ms)"
        rc=0
        code=-
        if [[ "$kind" == shim ]]; then
            code="$(curl --noproxy '*' -sS --max-time 60 -o "$out" -w '%{http_code}' "http://127.0.0.1:$PORT/$proxy/${rel#*/}" 2>"$out.err")" || rc=$?
        else
            timeout -k 5 60 cat -- "$MNT/$proxy/${rel#*/}" >"$out" 2>"$out.err" || rc=$?
        fi
        ok=-
        if ((rc == 0)) && [[ "$code" == - || "$code" == 200 ]]; then
            if [[ "$(openssl dgst -sha256 -r "$out" | cut -d' ' -f1)" == "${SHA[$rel]}" ]]; then ok=1; else ok=0; fi
        fi
        err="$(head -c 120 "$out.err" | tr '\n\t ' '___')"
        printf '%s %s %s %s %s %s %s\n' "$kind" "$rel" "$rc" "$code" "$ok" "$(($(_upfs_now_ms) - t0))" "${err:--}"
    done >"$T/res/$kind-$id.txt"
    rm -f "$out" "$out.err"
}

# one sample a second, without forking (awk/date would be delayed by the load itself)
rss_sampler() {
    local t0 now k v val rest
    t0="${EPOCHREALTIME/./}"
    while :; do
        now="${EPOCHREALTIME/./}"
        ((now / 1000 < END_MS)) || break
        v=dead
        if [[ -r "/proc/$PID/status" ]]; then
            while read -r k val rest; do
                if [[ "$k" == VmRSS: ]]; then v="$val"; break; fi
            done <"/proc/$PID/status" || true
        fi
        echo "$(((now - t0) / 1000000)) $v"
        sleep 1
    done >"$T/rss.txt"
}

log "starting $N_SHIM shim clients and $N_FUSE mount readers for $SECS s"
PIDS=()
rss_sampler &
RSS_PID=$!
for ((i = 0; i < N_SHIM; i++)); do client shim "$i" & PIDS+=($!); done
for ((i = 0; i < N_FUSE; i++)); do client fuse "$i" & PIDS+=($!); done
HUNG=0
for p in "${PIDS[@]}"; do
    bg_wait "$p" $((SECS + 90))
    ((BG_RC != 124)) || HUNG=$((HUNG + 1))
done
bg_wait "$RSS_PID" 5
cat "$RES"/*.txt >"$T/all.txt"

t_no_hang() {
    ((HUNG == 0)) || die "$HUNG client loop(s) were still running 90 s after the end (a request hung)"
    pid_alive "$PID" || die "the daemon died under load: $(tail -n 20 "$STATE/upstreamfs.log")"
    with_timeout 10 stat "$MNT/load" >/dev/null || die "the mount does not answer after the load"
}
check "every client finished, the daemon is alive and answers" t_no_hang

t_summary() {
    "$PYTHON" - "$T/all.txt" <<'EOF' >&2
import collections, sys
c = collections.Counter()
ms = collections.defaultdict(list)
for line in open(sys.argv[1]):
    kind, rel, rc, code, ok, t, err = line.split(" ", 6)
    proxy = "flaky" if rel.startswith("flaky/") else "load"
    res = "ok" if ok == "1" else ("WRONG" if ok == "0" else "error")
    c[(kind, proxy, res)] += 1
    ms[kind].append(int(t))
for k in sorted(c):
    print("[load] %-4s %-5s %-5s %6d" % (k + (c[k],)))
for k, v in ms.items():
    v.sort()
    print("[load] %s latency ms: median %d, p99 %d, max %d, %d requests" % (k, v[len(v) // 2], v[int(len(v) * .99)], v[-1], len(v)))
EOF
}
check "summary" t_summary

t_no_wrong_bytes() {
    local n
    n="$(awk '$5 == "0"' "$T/all.txt" | wc -l)"
    ((n == 0)) || die "$n read(s) returned WRONG bytes: $(awk '$5 == "0"' "$T/all.txt" | head -5 | tr '\n' ';')"
    (($(awk '$5 == "1"' "$T/all.txt" | wc -l) >= 200)) || die "fewer than 200 successful reads in $SECS s: $(wc -l <"$T/all.txt") requests"
}
check "zero wrong bytes: every successful read matches its sha256" t_no_wrong_bytes

t_errors_only_where_injected() {
    local bad flaky_bad
    bad="$(awk '$5 != "1" && $2 ~ /^tree\//' "$T/all.txt")"
    [[ -z "$bad" ]] || die "$(wc -l <<<"$bad") failed read(s) on proxy load, where no fault was injected: $(head -5 <<<"$bad" | tr '\n' ';')"
    # flaky: FUSE errors must be a failure of the remote (EIO, EREMOTEIO or ETIMEDOUT, by cause:
    # docs/troubleshooting.md); shim errors a 5xx or a cut transfer (curl 18/52/56), never 404
    flaky_bad="$(awk '$5 != "1" && $2 ~ /^flaky\// {
        if ($1 == "fuse" && $7 !~ /Input\/output_error|Remote_I\/O_error|Connection_timed_out/) print
        if ($1 == "shim" && !($4 ~ /^5/ || $3 == 18 || $3 == 52 || $3 == 56)) print }' "$T/all.txt")"
    [[ -z "$flaky_bad" ]] || die "failures on proxy flaky that are not EIO/5xx/cut: $(head -5 <<<"$flaky_bad" | tr '\n' ';')"
    log "injected faults hit: $(upstream_faults_hits)"
}
upstream_faults_hits() {
    "${CURL[@]}" --max-time 10 "${UPSTREAM_URL}_control/faults" |
        "$PYTHON" -c 'import json,sys; print(sum(r["hits"] for r in json.load(sys.stdin)))'
}
check "errors only where faults were injected (proxy flaky), and only EIO / 5xx / cut transfers" t_errors_only_where_injected

t_rss() {
    local r10 rend rmin rmax
    [[ -s "$T/rss.txt" ]] || die "no RSS samples"
    if grep -q dead "$T/rss.txt"; then die "the daemon disappeared during the run"; fi
    r10="$(awk '$1 >= 10 {print $2; exit}' "$T/rss.txt")"
    rend="$(tail -n 1 "$T/rss.txt" | cut -d' ' -f2)"
    rmin="$(cut -d' ' -f2 "$T/rss.txt" | sort -n | head -n 1)"
    rmax="$(cut -d' ' -f2 "$T/rss.txt" | sort -n | tail -n 1)"
    log "daemon VmRSS over $(wc -l <"$T/rss.txt") samples: min $((rmin / 1024)) MiB, max $((rmax / 1024)) MiB, at 10 s $((${r10:-0} / 1024)) MiB, at the end $((rend / 1024)) MiB"
    [[ -n "$r10" ]] || die "the run was shorter than 10 s"
    if [[ -n "${UPSTREAMFS_SANITIZER:-}" ]]; then
        # ASan keeps freed memory in quarantine (256 MiB by default) and gives every thread fake
        # stacks: RSS there measures the sanitizer. The uninstrumented build's run applies the limit.
        log "no RSS limit under $UPSTREAMFS_SANITIZER (grew by $(((rend - r10) / 1024)) MiB): the sanitizer's memory"
        return 0
    fi
    ((rend - r10 <= RSS_LIMIT_KB)) || die "VmRSS grew by $(((rend - r10) / 1024)) MiB from the 10 s mark to the end (limit 64 MiB)"
}
if [[ -n "${UPSTREAMFS_SANITIZER:-}" ]]; then
    check "the daemon's RSS was sampled (the 64 MiB limit is checked in the uninstrumented build)" t_rss
else
    check "the daemon's RSS grows by at most 64 MiB from the 10 s mark to the end" t_rss
fi

t_after() {
    assert_eq "$(db_integrity)" ok "integrity_check after the load"
    verify_clean
    local bytes
    bytes="$(stats_field cache_bytes)"
    log "cache_bytes after the load: $((bytes / MIB)) MiB (quota 96 MiB)"
    ((bytes <= (96 + 8 * (N_SHIM + N_FUSE)) * MIB)) || die "cache_bytes $bytes is far above the 96 MiB quota"
}
check "after the load: integrity_check ok, cache verify clean, cache within its quota" t_after

finish
