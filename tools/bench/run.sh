#!/usr/bin/env bash
# tools/bench/run.sh -- upstreamfs benchmarks: ratios measured side by side in one run.
#
#   tools/bench/run.sh [--quick] [--runs N] [--only P1,P2,...] [--bin PATH] [--out FILE]
#                      [--profile DIR] [--no-install] [--strict]
#
# Run as root on Debian bookworm, from a clone after tools/quickstart.sh (or tools/deps.sh and
# tools/build.sh). It installs the peers it compares against from Debian's packages (nginx-light,
# rclone, wrk, docker-registry, skopeo, ...), starts every server on 127.0.0.1 only, mounts in
# private temp dirs, cleans everything up on exit, and prints one table: measure, ratio, target,
# pass/miss. Every ratio is upstreamfs against a peer measured in the same run, interleaved, as
# the median of --runs runs (default 5). docs/BENCHMARKS.md explains each row.
#
#   --quick        small sizes, one run each: a smoke test of the whole harness (ctest bench_smoke,
#                  under 2 minutes). Its ratios mean little; it fails only when something breaks.
#   --runs N       runs per measurement (default 5; --quick: 1)
#   --only LIST    only these rows (comma-separated, e.g. P1,P2,P9 or M1,M4: the metadata
#                  rows, tools/bench/metadata.sh); setup runs as needed
#   --bin PATH     the upstreamfs binary (default: $UPSTREAMFS_BIN, build/upstreamfs, then PATH)
#   --out FILE     also write the result table (markdown, with machine and date) to FILE
#   --profile DIR  also record `perf record -e cpu-clock -g` of one cold read, one warm read and
#                  one `ls -l` of the big directory, summarised per thread in DIR/*.txt
#   --no-install   do not apt-get anything; rows whose tools are missing say "not run"
#   --strict       exit 3 when a row misses its target (default: exit 0 unless something broke)
# Environment: BENCH_TMPDIR (default /var/tmp) holds fixtures, state dirs and caches; it must be
# a real disk file system (not tmpfs) with ~4 GiB free for a full run. BENCH_KEEP=1 keeps that
# work dir (logs of every server) instead of removing it; BENCH_RT=0 runs the warm readers of P1
# at normal priority; BENCH_FAKE_SHIM=1 tests the registry rows against a second docker-registry
# standing in for the shim (a self-test of the harness, not a measurement).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH_DIR="$ROOT/tools/bench"
LIB="$ROOT/tests/integration/lib"
TEST_NAME=bench
# shellcheck source=../../tests/integration/lib/common.sh
source "$LIB/common.sh"
# shellcheck source=../../tests/integration/lib/nginx.sh
source "$LIB/nginx.sh"
# shellcheck source=../../tests/integration/lib/fixtures.sh
source "$LIB/fixtures.sh"

QUICK=0 RUNS="" ONLY="" BIN="${UPSTREAMFS_BIN:-}" OUT="" PROFILE="" INSTALL=1 STRICT=0
while (($#)); do
    case "$1" in
    --quick) QUICK=1; shift ;;
    --runs) RUNS="$2"; shift 2 ;;
    --only) ONLY=",${2^^},"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --profile) PROFILE="$2"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --strict) STRICT=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

((EUID == 0)) || { echo "run.sh: run as root (it mounts, installs packages and drops the page cache)" >&2; exit 2; }
[[ -e /dev/fuse ]] || { echo "run.sh: /dev/fuse is missing" >&2; exit 1; }
((BASH_VERSINFO[0] >= 5)) || { echo "run.sh: needs bash 5 (EPOCHREALTIME)" >&2; exit 2; }

if ((QUICK)); then
    : "${RUNS:=1}"
    BIG=$((32 << 20)) R3SIZE=$((32 << 20)) P13SIZE=$((64 << 20)) P8SIZE=$((8 << 20)) NFILES=200 NHUGE=1000 LAYERS=(8M 1M 4K) WRK_SECS=1 LS_REPS=2
else
    : "${RUNS:=5}"
    BIG=$((1 << 30)) R3SIZE=$((256 << 20)) P13SIZE=$((256 << 20)) P8SIZE=$((256 << 20)) NFILES=2000 NHUGE=20000 LAYERS=(256M 16M 4K) WRK_SECS=4 LS_REPS=5
fi
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs must be a positive number" >&2; exit 2; }
READERS=32
FIRST=65536

want() {
    local id="${1^^}"
    [[ -z "$ONLY" || "$ONLY" == *",$id,"* ]] && return 0
    [[ "$id" == P8? && "$ONLY" == *",P8,"* ]] && return 0   # P8 means both halves
    [[ "$id" == M[1256]? && "$ONLY" == *",${id:0:2},"* ]]   # M1, M2, M5, M6: all of each
}
want_any() { local r; for r in "$@"; do want "$r" && return 0; done; return 1; }

# ---- results --------------------------------------------------------------------------------
ORDER=(P1 P2 P3 P4 P5 P6 P7 P8m P8s P9 P10 P11 P13 R1 R2 R3 I1 I2 I3 T1 M1f M1a M2h M2j M3 M4 M5n M5p M6 M6h M6j M6t)
declare -A R_LABEL=(
    [P1]=P1 [P2]=P2 [P3]=P3 [P4]=P4 [P5]=P5 [P6]=P6 [P7]=P7 [P8m]="P8 mount" [P8s]="P8 shim"
    [P9]=P9 [P10]=P10 [P11]=P11 [P13]=P13 [R1]=R1 [R2]=R2 [R3]=R3 [I1]=i1 [I2]=i2 [I3]=i3 [T1]=T1
    [M1f]="M1 full" [M1a]="M1 abbreviated" [M2h]="M2 HTML" [M2j]="M2 JSON" [M3]=M3 [M4]=M4
    [M5n]="M5 npm" [M5p]="M5 pip" [M6]=M6 [M6h]="M6 PyPI HTML" [M6j]="M6 PyPI JSON"
    [M6t]="M6 npm tarballs")
declare -A R_MEASURE R_RATIO R_TARGET R_RESULT R_DETAIL
ERRORS=0

# row ID MEASURE RATIO TARGET RESULT DETAIL
row() {
    R_MEASURE[$1]="$2" R_RATIO[$1]="$3" R_TARGET[$1]="$4" R_RESULT[$1]="$5" R_DETAIL[$1]="$6"
    log "$1: $2: ratio $3 (target $4) $5 -- $6"
}
row_not_run() {
    local id="$1" measure="$2" target="$3" why="$4"
    row "$id" "$measure" "-" "$target" "not run" "$why"
}
row_error() {
    ERRORS=$((ERRORS + 1))
    row "$1" "$2" "-" "$3" "ERROR" "$4"
}

# judge VALUE OP LIMIT -> pass|miss (OP: ge, le, eq)
judge() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == "ge") ? (v + 0 >= l + 0) : (op == "le") ? (v + 0 <= l + 0) : (v + 0 == l + 0)
        print ok ? "pass" : "miss" }'
}

# ---- timing ---------------------------------------------------------------------------------
# tmeas ARRAY CMD...: run CMD (output discarded; stderr kept in $W/last.err) and append its
# wall time in microseconds to ARRAY. Fails (and logs) when CMD fails.
tmeas() {
    local -n _acc="$1"
    shift
    local t0 t1
    t0=${EPOCHREALTIME/./}
    if ! "$@" >/dev/null 2>"$W/last.err"; then
        log "command failed: $* -- $(tail -n 3 "$W/last.err" | tr '\n' ' ')"
        return 1
    fi
    t1=${EPOCHREALTIME/./}
    _acc+=($((t1 - t0)))
}

median() {
    (($#)) || { echo 0; return; }
    printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
        if (NR % 2) printf "%d\n", a[(NR + 1) / 2]; else printf "%d\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
maxof() { printf '%s\n' "$@" | sort -n | tail -n 1; }
# fmt_s US -> "1.234 s"; fmt_ms US -> "12.3 ms"; rate BYTES US -> "123 MB/s"
fmt_s() { awk -v u="$1" 'BEGIN { printf "%.3f s", u / 1e6 }'; }
fmt_ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1e3 }'; }
rate() { awk -v b="$1" -v u="$2" 'BEGIN { if (u <= 0) print "-"; else if (b / u >= 1000) printf "%.2f GB/s", b / u / 1000; else printf "%.0f MB/s", b / u }'; }
# ratio A B -> A/B with 2 decimals (3 when small)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "inf"; else { r = a / b; printf (r < 0.1 ? "%.3f\n" : "%.2f\n"), r } }'; }
list_s() { local x out=""; for x in "$@"; do out+="$(awk -v u="$x" 'BEGIN { printf "%.3f", u / 1e6 }') "; done; echo "${out% }"; }
human() { awk -v b="$1" 'BEGIN { if (b >= 1073741824) printf "%g GiB", b / 1073741824; else if (b >= 1048576) printf "%g MiB", b / 1048576; else printf "%g KiB", b / 1024 }'; }

drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

# ---- packages -------------------------------------------------------------------------------
# Installs the Debian packages the peers need (as tools/deps.sh does: no service starts).
need_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    if ((!INSTALL)); then
        log "missing packages (--no-install): ${missing[*]}"
        return 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$W/apt.log" 2>&1 || true
    local had_policy=0
    [[ -e /usr/sbin/policy-rc.d ]] && had_policy=1
    ((had_policy)) || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
    local rc=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$W/apt.log" 2>&1 || rc=$?
    ((had_policy)) || rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || log "apt-get install ${missing[*]} failed: $(tail -n 3 "$W/apt.log" | tr '\n' ' ')"
    return "$rc"
}

# ---- setup ----------------------------------------------------------------------------------
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
BASE="${BENCH_TMPDIR:-/var/tmp}"
mkdir -p "$BASE"
W="$(mktemp -d "$BASE/upfs-bench.XXXXXX")"
if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
    on_exit 'log "BENCH_KEEP=1: keeping $W"'
else
    on_exit rm -rf -- "$W"
fi
export TMPDIR="$W"   # nginx's private dir and mktemp go here too

if [[ -z "$BIN" ]]; then
    if [[ -x "$ROOT/build/upstreamfs" ]]; then BIN="$ROOT/build/upstreamfs"
    else BIN="$(command -v upstreamfs || true)"; fi
fi
[[ -n "$BIN" && -x "$BIN" ]] || die "no upstreamfs binary: build it (tools/build.sh) or pass --bin PATH"
UPFS="$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")"
log "binary $UPFS, work dir $W, runs $RUNS$( ((QUICK)) && echo ', quick')"

need_packages nginx-light curl attr fuse3 openssl python3 procps util-linux ||
    die "the base packages are missing (tools/deps.sh --test installs them)"
HAVE_RCLONE=1 HAVE_WRK=1 HAVE_REGISTRY=1
need_packages rclone || HAVE_RCLONE=0
need_packages wrk || HAVE_WRK=0
need_packages docker-registry skopeo || HAVE_REGISTRY=0
command -v rclone >/dev/null || HAVE_RCLONE=0
command -v wrk >/dev/null || HAVE_WRK=0
command -v docker-registry >/dev/null && command -v skopeo >/dev/null || HAVE_REGISTRY=0

# Fixtures: one big file, the P8 file, a directory of NFILES small files.
WWW="$W/www"
mkdir -p "$WWW/many"
log "writing fixtures ($(human "$BIG") + $(human "$P8SIZE") + $NFILES small files)"
fixture_bytes big.bin "$BIG" "$WWW/big.bin"
fixture_bytes p8.bin "$P8SIZE" "$WWW/p8.bin"
for ((i = 0; i < NFILES; i++)); do printf 'file %d\n' "$i" >"$WWW/many/f$(printf '%05d' "$i").txt"; done
if want I3; then
    mkdir -p "$WWW/huge"
    (cd "$WWW/huge" && for ((i = 0; i < NHUGE; i++)); do : >"h$i"; done)
fi
if want P13; then # a file under /slow/, where nginx limits every connection's rate (lazy.sh)
    mkdir -p "$WWW/slow"
    fixture_bytes p13.bin "$P13SIZE" "$WWW/slow/p13.bin"
fi
BIG_SHA="$(sha256_of "$WWW/big.bin")"
P8_SHA="$(sha256_of "$WWW/p8.bin")"
NGINX_EXTRA="location /slow/ { limit_rate ${P13RATE:=8m}; }"
nginx_start "$WWW"

STATE="$W/state"
MNT="$W/mnt"
mkdir -p "$MNT"
upfs() { "$UPFS" --state "$STATE" "$@"; }
upfs proxy create files --type generic --url "$NGINX_URL" >/dev/null
upfs mount "$MNT" || die "upstreamfs mount failed"
on_exit _unmount "$MNT"
_unmount() {
    local m="$1"
    if grep -qF " $m " /proc/self/mounts; then
        fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
    fi
}
DPID=""
for p in $(pgrep -f -- "$MNT" || true); do
    [[ "$(readlink "/proc/$p/exe" 2>/dev/null)" == "$UPFS" ]] || continue
    tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "$STATE" && DPID="$p"
done
[[ -n "$DPID" ]] || die "cannot find the daemon serving $MNT"
F="$MNT/files"
ls -l "$F" >/dev/null
ls -l "$F/many" >/dev/null
[[ "$(stat -c %s "$F/big.bin")" == "$BIG" ]] || die "ls -l shows a wrong size for big.bin"

cached_state() { getfattr --only-values -n user.upstreamfs.cached "$1" 2>/dev/null || echo "?"; }
is_complete() { [[ "$(cached_state "$1")" == complete ]]; }
wait_complete() { wait_until 300 is_complete "$1" || { log "$1 never became complete"; return 1; }; }
evict() {
    local name="$1"
    is_complete "$F/$name" || wait_until 300 _not_partial "$F/$name" || true
    upfs cache evict "files/$name" >/dev/null 2>"$W/evict.err" || { log "cache evict files/$name: $(cat "$W/evict.err")"; return 1; }
    [[ "$(cached_state "$F/$name")" == none ]] || { log "files/$name still cached after evict ($(cached_state "$F/$name"))"; return 1; }
}
_not_partial() { [[ "$(cached_state "$1")" != partial* ]]; }
blob_of() {
    local d
    d="$(getfattr --only-values -n user.upstreamfs.digest "$1" 2>/dev/null)" || return 1
    d="${d#sha256:}"
    printf '%s/blobs/sha256/%s/%s\n' "$STATE" "${d:0:2}" "$d"
}
hwm_reset() { echo 5 >"/proc/$DPID/clear_refs"; }
HZ="$(getconf CLK_TCK)"
# proc_cpu_ms PID: user + system CPU time of PID (all threads, dead ones included) in ms; 0 when unknown
proc_cpu_ms() {
    local -a f
    [[ "$1" =~ ^[0-9]+$ ]] && read -r -a f 2>/dev/null <"/proc/$1/stat" || { echo 0; return; }
    echo $(((f[13] + f[14]) * 1000 / HZ))
}
cpu_ms() { proc_cpu_ms "$DPID"; }
# CPU time of this shell's children that have ended (a curl run by tmeas), in ms
children_cpu_ms() {
    local -a f
    read -r -a f <"/proc/$$/stat"
    echo $(((f[15] + f[16]) * 1000 / HZ))
}
# per_gib MS BYTES -> "1.234 s" of CPU per GiB
per_gib() { awk -v m="$1" -v b="$2" 'BEGIN { printf "%.2f s", m / 1000 * 1073741824 / b }'; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$DPID/status"; }
read_file() { dd if="$1" of=/dev/null bs=1M status=none; }
# Warm reads never reach the daemon (page cache, keep_cache), and on a shared 2-core machine
# their wall time is mostly other processes' CPU: run those readers (and the curl clients of the
# warm blob GETs, P6) at SCHED_FIFO priority 10, both sides alike; servers and daemons keep their
# normal priority. BENCH_RT=0 turns this off.
RT=()
if [[ "${BENCH_RT:-1}" == 1 ]] && command -v chrt >/dev/null && chrt -f 10 true 2>/dev/null; then RT=(chrt -f 10); fi
read_file_rt() { "${RT[@]}" dd if="$1" of=/dev/null bs=1M status=none; }
lsrep() { local i; for ((i = 0; i < LS_REPS; i++)); do ls -l "$1" >/dev/null; done; }
read_first() { dd if="$1" of=/dev/null bs="$FIRST" count=1 status=none; }

# rclone mount of the same nginx tree (http backend, --vfs-cache-mode full, rclone's defaults).
RMNT="$W/rclone-mnt"
RCACHE="$W/rclone-cache"
RCONF="$W/rclone.conf"
: >"$RCONF"
mkdir -p "$RMNT"
rclone_up() {
    rclone_down
    rm -rf -- "$RCACHE"
    rclone mount ":http:" "$RMNT" --http-url "$NGINX_URL" --vfs-cache-mode full \
        --cache-dir "$RCACHE" --config "$RCONF" --log-file "$W/rclone.log" --daemon ||
        { log "rclone mount failed: $(tail -n 3 "$W/rclone.log")"; return 1; }
    wait_until 30 mountpoint -q "$RMNT" || { log "rclone mount did not come up"; return 1; }
    stat "$RMNT/big.bin" >/dev/null
}
_rclone_pids() {
    local p
    for p in $(pgrep -x rclone || true); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- " $RMNT " && echo "$p"
    done
}
_rclone_gone() { [[ -z "$(_rclone_pids)" ]]; }
rclone_down() {
    if grep -qF " $RMNT " /proc/self/mounts; then
        fusermount3 -u "$RMNT" 2>/dev/null || fusermount3 -uz "$RMNT" 2>/dev/null || true
    fi
    wait_until 20 _rclone_gone || { local p; for p in $(_rclone_pids); do kill "$p" 2>/dev/null || true; done; }
}
((HAVE_RCLONE)) && on_exit rclone_down

# ---- P2 P3 P5 P10 i2: cold reads ------------------------------------------------------------
M_BIG="$(human "$BIG")"
T_CURL=() T_CURLNULL=() T_COLD=() T_FIRST=() T_RCOLD=() HWM=() DCPU=() CCPU=() RCPU=()
cold_rows=(P2 P3 P5 P10 I2)
if want_any "${cold_rows[@]}"; then
    do_rclone=0
    ((HAVE_RCLONE)) && want P5 && do_rclone=1
    log "cold reads of big.bin ($M_BIG), $RUNS run(s)"
    for ((run = 1; run <= RUNS; run++)); do
        # curl of the same URL, saved on the same file system as the cache (what the mount does)
        rm -f "$W/curl.out"; drop_caches
        c0="$(children_cpu_ms)"
        tmeas T_CURL curl --noproxy '*' -sf -o "$W/curl.out" "${NGINX_URL}big.bin" || break
        CCPU+=($(($(children_cpu_ms) - c0)))
        rm -f "$W/curl.out"
        drop_caches
        tmeas T_CURLNULL curl --noproxy '*' -sf -o /dev/null "${NGINX_URL}big.bin" || break
        # upstreamfs: evicted, page cache dropped, then one read of the whole file
        evict big.bin || break
        drop_caches
        hwm_reset
        c0="$(cpu_ms)"
        tmeas T_COLD read_file "$F/big.bin" || break
        wait_complete "$F/big.bin" || break
        HWM+=("$(hwm_kib)")
        DCPU+=($(($(cpu_ms) - c0)))
        # upstreamfs: evicted, page cache dropped, then the first 64 KiB only
        evict big.bin || break
        drop_caches
        tmeas T_FIRST read_first "$F/big.bin" || break
        wait_complete "$F/big.bin" || break
        # rclone: a fresh mount with an empty cache (its listing fetched before the clock starts)
        if ((do_rclone)); then
            rclone_up || { HAVE_RCLONE=0; do_rclone=0; continue; }
            drop_caches
            rpid="$(_rclone_pids | head -n 1 || true)"
            c0="$(proc_cpu_ms "$rpid")"
            tmeas T_RCOLD read_file "$RMNT/big.bin" || { do_rclone=0; continue; }
            RCPU+=($(($(proc_cpu_ms "$rpid") - c0)))
        fi
    done
    # the cached copy is what the mount returned: check it once, outside the clock
    COLD_OK=1
    got="$(sha256_of "$(blob_of "$F/big.bin")" 2>/dev/null || true)"
    [[ "$got" == "$BIG_SHA" ]] || { COLD_OK=0; log "sha256 of the cached big.bin is '$got', want $BIG_SHA"; }
    mount_sha="$(openssl dgst -sha256 -r <"$F/big.bin" | cut -d' ' -f1)"
    [[ "$mount_sha" == "$BIG_SHA" ]] || { COLD_OK=0; log "sha256 through the mount is $mount_sha, want $BIG_SHA"; }

    n=${#T_COLD[@]}
    if ((n < RUNS || !COLD_OK)); then
        for r in P2 P3 P10; do row_error "$r" "cold read" "-" "cold runs failed ($n of $RUNS done; content ok=$COLD_OK); see the log above"; done
    else
        mc="$(median "${T_COLD[@]}")" mcurl="$(median "${T_CURL[@]}")" mfirst="$(median "${T_FIRST[@]}")"
        r="$(ratio "$mcurl" "$mc")"
        # CPU per GiB (medians): the daemon's for a cold read, curl's for -o file, rclone's (P5)
        cpu_d="$(per_gib "$(median "${DCPU[@]}")" "$BIG")" cpu_c="$(per_gib "$(median "${CCPU[@]}")" "$BIG")"
        r_rc="-" cpu_r="-"
        if ((${#T_RCOLD[@]} == RUNS)); then
            r_rc="$(ratio "$(median "${T_RCOLD[@]}")" "$mc")" cpu_r="$(per_gib "$(median "${RCPU[@]}")" "$BIG")"
        fi
        side="mount / curl -o file $r, mount / rclone $r_rc; CPU per GiB: daemon $cpu_d, curl -o file $cpu_c, rclone $cpu_r"
        want P2 && row P2 "cold read of $M_BIG (first open), mount / curl -o file, same nginx" "$r" "≥ 1.0" \
            "$(judge "$r" ge 1.0)" "mount $(fmt_s "$mc") ($(rate "$BIG" "$mc")), curl $(fmt_s "$mcurl") ($(rate "$BIG" "$mcurl")); $side; daemon CPU per cold read [$(list_s $(printf '%s000\n' "${DCPU[@]}"))]; runs mount [$(list_s "${T_COLD[@]}")] curl [$(list_s "${T_CURL[@]}")]"
        r="$(ratio "$mfirst" "$mc")"
        want P3 && row P3 "first 64 KiB of an uncached $M_BIG file / whole file cold (time)" "$r" "≤ 0.05" \
            "$(judge "$r" le 0.05)" "first 64 KiB $(fmt_ms "$mfirst"), whole $(fmt_s "$mc"); runs [$(list_s "${T_FIRST[@]}")]"
        peak="$(maxof "${HWM[@]}")"
        pm="$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')"
        want P10 && row P10 "peak RSS (VmHWM) of the daemon while streaming $M_BIG cold" "$pm MiB" "≤ 64 MiB" \
            "$(judge "$pm" le 64)" "max over $RUNS runs; per run KiB [${HWM[*]}]"
        mnull="$(median "${T_CURLNULL[@]}")"
        r="$(ratio "$mnull" "$mc")"
        want I2 && row I2 "cold read, mount / curl -o /dev/null (info: curl stores nothing)" "$r" "-" "info" \
            "curl to /dev/null $(fmt_s "$mnull") ($(rate "$BIG" "$mnull"))"
        if want P5; then
            if ((${#T_RCOLD[@]} == RUNS)); then
                mr="$(median "${T_RCOLD[@]}")"
                r="$(ratio "$mr" "$mc")"
                row P5 "cold read of $M_BIG, mount / rclone mount (http, --vfs-cache-mode full)" "$r" "≥ 2" \
                    "$(judge "$r" ge 2)" "mount $(fmt_s "$mc"), rclone $(fmt_s "$mr") ($(rate "$BIG" "$mr")); $side; rclone runs [$(list_s "${T_RCOLD[@]}")]"
            elif ((!HAVE_RCLONE)); then
                row_not_run P5 "cold read, mount / rclone mount" "≥ 2" "rclone unavailable (package rclone; see $W/rclone.log)"
            else
                row_error P5 "cold read, mount / rclone mount" "≥ 2" "rclone cold runs failed: $(tail -n 2 "$W/rclone.log" 2>/dev/null | tr '\n' ' ')"
            fi
        fi
    fi
fi

# ---- P1 P4 i1: warm reads -------------------------------------------------------------------
if want_any P1 P4 I1; then
    log "warm reads of big.bin, $RUNS run(s)"
    read_file "$F/big.bin"   # fills the store (if an earlier row did not) and the page cache
    wait_complete "$F/big.bin"
    BLOB="$(blob_of "$F/big.bin")"
    read_file "$F/big.bin"; read_file "$BLOB"
    do_rclone=0
    if ((HAVE_RCLONE)) && want P4; then
        { mountpoint -q "$RMNT" || rclone_up; } && read_file "$RMNT/big.bin" && read_file "$RMNT/big.bin" && do_rclone=1
    fi
    T_WARM=() T_FILE=() T_RWARM=() T_DWARM=() T_DFILE=()
    # Warm reads take ~0.1 s and the machine is noisy: 3x the runs, alternating which goes first.
    for ((run = 1; run <= 3 * RUNS; run++)); do
        if ((run % 2)); then
            tmeas T_WARM read_file_rt "$F/big.bin" || break
            tmeas T_FILE read_file_rt "$BLOB" || break
        else
            tmeas T_FILE read_file_rt "$BLOB" || break
            tmeas T_WARM read_file_rt "$F/big.bin" || break
        fi
        if ((do_rclone && run <= RUNS)); then tmeas T_RWARM read_file "$RMNT/big.bin" || do_rclone=0; fi
    done
    if want I1; then
        for ((run = 1; run <= RUNS; run++)); do
            drop_caches; tmeas T_DWARM read_file "$F/big.bin" || break
            drop_caches; tmeas T_DFILE read_file "$BLOB" || break
        done
    fi
    if ((${#T_WARM[@]} == 3 * RUNS)); then
        mw="$(median "${T_WARM[@]}")" mf="$(median "${T_FILE[@]}")"
        r="$(ratio "$mf" "$mw")"
        want P1 && row P1 "warm read of a cached $M_BIG file, mount / the cache file itself" "$r" "≥ 0.9" \
            "$(judge "$r" ge 0.9)" "mount $(fmt_s "$mw") ($(rate "$BIG" "$mw")), file $(fmt_s "$mf") ($(rate "$BIG" "$mf")); readers at ${RT[*]:-normal priority}; runs mount [$(list_s "${T_WARM[@]}")] file [$(list_s "${T_FILE[@]}")]"
        if want P4; then
            if ((${#T_RWARM[@]} == RUNS)); then
                mr="$(median "${T_RWARM[@]}")"
                r="$(ratio "$mr" "$mw")"
                row P4 "warm read of $M_BIG, mount / rclone mount (same file, cached by both)" "$r" "≥ 5" \
                    "$(judge "$r" ge 5)" "mount $(fmt_s "$mw"), rclone $(fmt_s "$mr") ($(rate "$BIG" "$mr")); rclone runs [$(list_s "${T_RWARM[@]}")]"
            else
                row_not_run P4 "warm read, mount / rclone mount" "≥ 5" "rclone unavailable or its reads failed (see $W/rclone.log)"
            fi
        fi
        if want I1 && ((${#T_DWARM[@]} == RUNS)); then
            md="$(median "${T_DWARM[@]}")" mdf="$(median "${T_DFILE[@]}")"
            r="$(ratio "$mdf" "$md")"
            row I1 "cached in the store, page cache dropped: mount / the cache file (info)" "$r" "-" "info" \
                "mount $(fmt_s "$md") ($(rate "$BIG" "$md")), file $(fmt_s "$mdf") ($(rate "$BIG" "$mdf")); read_ahead_kb of the mount $(cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb" 2>/dev/null || echo '?')"
        fi
    else
        row_error P1 "warm read" "≥ 0.9" "warm runs failed"
    fi
fi

# ---- P8 (mount): concurrent cold readers ----------------------------------------------------
if want P8m; then
    log "$READERS concurrent cold readers of p8.bin ($(human "$P8SIZE")), $RUNS run(s)"
    GETS=() SENT=() T_P8=() P8_OK=1
    for ((run = 1; run <= RUNS; run++)); do
        if [[ "$(cached_state "$F/p8.bin")" != none ]]; then evict p8.bin || { P8_OK=0; break; }; fi
        drop_caches
        n0="$(nginx_count GET '^/p8\.bin$')" l0="$(wc -l <"$NGINX_LOG")"
        pids=()
        t0=${EPOCHREALTIME/./}
        for ((k = 0; k < READERS; k++)); do
            (openssl dgst -sha256 -r <"$F/p8.bin" | cut -d' ' -f1 >"$W/p8.$k") &
            pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || P8_OK=0; done
        t1=${EPOCHREALTIME/./}
        T_P8+=($((t1 - t0)))
        for ((k = 0; k < READERS; k++)); do
            [[ "$(cat "$W/p8.$k")" == "$P8_SHA" ]] || { P8_OK=0; log "reader $k of run $run read wrong bytes"; }
        done
        wait_complete "$F/p8.bin" || P8_OK=0
        sleep 0.3   # nginx logs a request when its response is done
        GETS+=($(($(nginx_count GET '^/p8\.bin$') - n0)))
        # a partial object (src/fetch/lazy.c) comes in ranged GETs: single flight is about bytes
        SENT+=("$(tail -n +$((l0 + 1)) "$NGINX_LOG" | awk -F'\t' '$3 == "GET" && $4 == "/p8.bin" { s += $7 } END { print s + 0 }')")
    done
    if ((P8_OK && ${#GETS[@]} == RUNS)); then
        g="$(ratio "$(maxof "${SENT[@]}")" "$P8SIZE")"
        row P8m "$READERS concurrent cold readers of one $(human "$P8SIZE") file (mount): upstream bytes / size" "$g" "1" \
            "$(judge "$g" le 1)" "bytes per run [${SENT[*]}] in GETs per run [${GETS[*]}] (the worst is shown); all readers got the right sha256; wall $(fmt_s "$(median "${T_P8[@]}")")"
    else
        row_error P8m "$READERS concurrent cold readers (mount)" "1" "readers failed or read wrong bytes (GETs per run [${GETS[*]}])"
    fi
fi

# ---- P9: ls -l of a cached directory --------------------------------------------------------
if want P9; then
    log "ls -l of $NFILES files, $RUNS run(s) of $LS_REPS"
    [[ "$(ls "$F/many" | wc -l)" == "$NFILES" ]] || log "the mount lists $(ls "$F/many" | wc -l) files in many/, want $NFILES"
    lsrep "$F/many"; lsrep "$WWW/many"
    T_LS=() T_LSL=()
    for ((run = 1; run <= RUNS; run++)); do
        tmeas T_LS lsrep "$F/many" || break
        tmeas T_LSL lsrep "$WWW/many" || break
    done
    if ((${#T_LS[@]} == RUNS)); then
        ml="$(median "${T_LS[@]}")" mll="$(median "${T_LSL[@]}")"
        r="$(ratio "$ml" "$mll")"
        row P9 "ls -l of a cached directory of $NFILES files, mount / local disk (time)" "$r" "≤ 3" \
            "$(judge "$r" le 3)" "mount $(fmt_ms $((ml / LS_REPS))), local $(fmt_ms $((mll / LS_REPS))) per ls -l"
    else
        row_error P9 "ls -l" "≤ 3" "ls -l failed"
    fi
fi

# ---- i3: readdir of a very large directory ---------------------------------------------------
if want I3; then
    log "ls -f of $NHUGE entries, $RUNS run(s)"
    lsf() { ls -f "$1" >/dev/null; }
    lsf "$F/huge"; lsf "$F/huge"; lsf "$WWW/huge"
    T_H=() T_HL=()
    for ((run = 1; run <= RUNS; run++)); do
        tmeas T_H lsf "$F/huge" || break
        tmeas T_HL lsf "$WWW/huge" || break
    done
    if ((${#T_H[@]} == RUNS)); then
        mh="$(median "${T_H[@]}")" mhl="$(median "${T_HL[@]}")"
        row I3 "ls -f (readdir only) of a cached directory of $NHUGE entries, mount / local (info, time)" \
            "$(ratio "$mh" "$mhl")" "-" "info" "mount $(fmt_ms "$mh"), local $(fmt_ms "$mhl"); runs mount [$(list_s "${T_H[@]}")]"
    else
        row_error I3 "ls -f of $NHUGE entries" "-" "ls -f failed"
    fi
fi

# ---- profiles (optional) --------------------------------------------------------------------
if [[ -n "$PROFILE" ]]; then
    mkdir -p "$PROFILE"
    if command -v perf >/dev/null && perf record -e cpu-clock -o "$W/probe.data" true >/dev/null 2>&1; then
        # profile NAME CMD...: cpu-clock samples of the daemon (-p) while CMD (maybe a function) runs
        profile() {
            local name="$1" ppid
            shift
            perf record -g -e cpu-clock -p "$DPID" -o "$W/$name.data" >/dev/null 2>"$W/perf.err" &
            ppid=$!
            sleep 0.5
            "$@" >/dev/null || log "profile $name: '$*' failed"
            kill -INT "$ppid" 2>/dev/null || true
            wait "$ppid" 2>/dev/null || true
            perf script -i "$W/$name.data" -F comm,pid,tid,ip,sym,dso 2>/dev/null |
                /usr/bin/python3 "$BENCH_DIR/perf_threads.py" --pid "$DPID" >"$PROFILE/$name.txt"
            log "profile of $name: $PROFILE/$name.txt"
        }
        evict big.bin && drop_caches && profile cold-read read_file "$F/big.bin"
        wait_complete "$F/big.bin"
        read_file "$F/big.bin"
        profile warm-read read_file "$F/big.bin"
        profile ls-l lsrep "$F/many"
    else
        log "--profile: perf is missing or cannot record cpu-clock; skipped"
    fi
fi

# ---- shim: P6 P7 P8 (shim) P11 ---------------------------------------------------------------
shim_rows=(P6 P7 P8s P11)
m_p6="shim: warm GET of a ${LAYERS[0]}iB blob / docker-registry pull-through (throughput)"
m_p7="skopeo copy of a 3-layer image through the shim, cold / directly from the upstream (time)"
m_p8s="$READERS concurrent clients of one blob (shim): upstream bytes / blob size"
m_p11="cached manifest GET, wrk -c64: shim / docker-registry pull-through (requests/s)"
shim_not_run() {
    local why="$1"
    want P6 && row_not_run P6 "$m_p6" "≥ 1.0" "$why"
    want P7 && row_not_run P7 "$m_p7" "≤ 1.2" "$why"
    want P8s && row_not_run P8s "$m_p8s" "≤ 1" "$why"
    want P11 && row_not_run P11 "$m_p11" "≥ 1.0" "$why"
    return 0
}

if want_any "${shim_rows[@]}"; then
    if ((!HAVE_REGISTRY)); then
        shim_not_run "docker-registry or skopeo unavailable (Debian packages docker-registry, skopeo)"
    else
        # shellcheck source=shim.sh
        source "$BENCH_DIR/shim.sh"
        shim_bench || true
    fi
fi

# ---- R1 R2 R3 P13: lazy reads of uncached files, a rate-limited upstream (issue 15) --------
if want_any R1 R2 R3 P13; then
    # shellcheck source=lazy.sh
    source "$BENCH_DIR/lazy.sh"
    lazy_bench || true
    want P13 && { limited_bench || true; }
fi

# ---- T1: edges behind a parent --------------------------------------------------------------
if want T1; then
    # shellcheck source=tier.sh
    source "$BENCH_DIR/tier.sh"
    t1_bench || true
fi

# ---- M1-M6: index documents through the shim --------------------------------------------------
if want_any M1f M1a M2h M2j M3 M4 M5n M5p M6 M6h M6j M6t; then
    # shellcheck source=metadata.sh
    source "$BENCH_DIR/metadata.sh"
    m_bench || true
fi

# ---- table ----------------------------------------------------------------------------------
machine() {
    local model cores mem kernel fuse
    model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    cores="$(grep -c '^processor' /proc/cpuinfo)"
    mem="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    kernel="$(cat /proc/sys/kernel/osrelease)"
    fuse="$(dpkg-query -W -f='${Version}' libfuse3-3 2>/dev/null || echo '?')"
    printf '%s cores (%s), %s RAM, kernel %s, libfuse3 %s' "$cores" "$model" "$mem" "$kernel" "$fuse"
}

print_table() {
    local id
    echo "upstreamfs benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'); $(machine)"
    echo "runs per measurement: $RUNS (median)$( ((QUICK)) && echo '; --quick: small sizes, ratios are not meaningful'); load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| # | measure | ratio | target | result | measured |"
    echo "|---|---|---|---|---|---|"
    for id in "${ORDER[@]}"; do
        [[ -n "${R_MEASURE[$id]:-}" ]] || continue
        printf '| %s | %s | %s | %s | %s | %s |\n' "${R_LABEL[$id]}" "${R_MEASURE[$id]}" "${R_RATIO[$id]}" \
            "${R_TARGET[$id]}" "${R_RESULT[$id]}" "${R_DETAIL[$id]}"
    done
}

echo
print_table | tee "$W/table.md"
[[ -z "$OUT" ]] || cp "$W/table.md" "$OUT"
misses=0
for id in "${ORDER[@]}"; do [[ "${R_RESULT[$id]:-}" == miss ]] && misses=$((misses + 1)); done
echo
echo "$((${#R_MEASURE[@]})) rows: $misses missed, $ERRORS errors"
if ((ERRORS)); then exit 1; fi
if ((STRICT && misses && !QUICK)); then exit 3; fi
exit 0
