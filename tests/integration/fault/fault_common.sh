# shellcheck shell=bash
# tests/integration/fault/fault_common.sh -- shared helpers for the fault_*_test.sh and
# secrets_test.sh integration tests (docs/RELIABILITY.md lists what each of them proves).
#
# Usage (first lines of a test; the built binary is the test's first argument):
#     #!/bin/bash
#     set -euo pipefail
#     source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"
#
# Sources ../mount_common.sh (UPFS, T, STATE, upfs, upfs_mount, check, finish, ...; see there)
# and ../shim/shim_common.sh (serve_start, http_get, ...), and adds:
#     MIB                       1048576
#     elapsed_ms CMD...         run CMD (never fails); sets RC, OUT, ERR and MS (wall time, ms)
#     db_integrity [STATEDIR]   print PRAGMA integrity_check of STATEDIR/index.db (Debian's
#                               /usr/bin/python3 sqlite3 module); "ok" when sound
#     mounts_on MNT             how many fuse mounts /proc/self/mounts lists on MNT
#     daemon_pid MNT            the one upstreamfs daemon serving MNT (dies if none or several)
#     tmp_leftovers [STATEDIR]  print the names in STATEDIR/tmp (empty output: nothing left)
#     verify_clean [STATEDIR]   die unless `cache verify --json` exits 0 and reports bad 0
#     bg_wait PID SECS          wait up to SECS for a background child; sets BG_RC (124: still
#                               running after SECS, then it is killed)
#     rx STRING                 STRING as an anchored Python regex for upstream.py/nginx counts
#     no_upfs_left              status 0 when no process of this binary runs on this STATE
#     upfs_state_pids           pids of processes of this binary with this STATE on their
#                               command line (mount daemons, serve, CLI commands)

_FAULT_COMMON_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../mount_common.sh
source "$_FAULT_COMMON_DIR/../mount_common.sh" "$@"
# shellcheck source=../shim/shim_common.sh
source "$_FAULT_COMMON_DIR/../shim/shim_common.sh"
command -v curl >/dev/null || die "curl is missing"
command -v openssl >/dev/null || die "openssl is missing"

# shellcheck disable=SC2034  # MIB, MS, BG_RC are for the tests that source this file
MIB=$((1024 * 1024))

# shellcheck disable=SC2034
elapsed_ms() {
    local t0
    t0="$(_upfs_now_ms)"
    run_capture "$@"
    MS=$(($(_upfs_now_ms) - t0))
}

db_integrity() {
    local dir="${1:-$STATE}"
    [[ -f "$dir/index.db" ]] || { echo "no index.db in $dir"; return 0; }
    "$PYTHON" - "$dir/index.db" <<'EOF' 2>&1
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
print("\n".join(r[0] for r in c.execute("PRAGMA integrity_check")))
EOF
}

mounts_on() {
    local n
    n="$(grep -cF " $1 fuse" /proc/self/mounts || true)"
    echo "${n:-0}"
}

daemon_pid() {
    local pids
    pids="$(upfs_daemon_pids "$1")"
    [[ -n "$pids" ]] || die "no upstreamfs daemon serves $1"
    [[ "$(wc -l <<<"$pids")" == 1 ]] || die "several daemons serve $1: $(tr '\n' ' ' <<<"$pids")"
    echo "$pids"
}

tmp_leftovers() {
    local dir="${1:-$STATE}"
    ls -A -- "$dir/tmp" 2>/dev/null || true
}

verify_clean() {
    local dir="${1:-$STATE}" bad
    run_capture "$UPFS" --state "$dir" cache verify --json
    ((RC == 0)) || die "cache verify --json exited $RC: ${OUT:0:300} ${ERR:0:300}"
    bad="$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["bad"])' "$OUT" 2>/dev/null)" ||
        die "cache verify --json printed no report: '${OUT:0:300}'"
    assert_eq "$bad" 0 "objects failing cache verify ($OUT)"
}

# shellcheck disable=SC2034
bg_wait() {
    local pid="$1" secs="$2"
    BG_RC=0
    if ! wait_until "$secs" _upfs_pid_dead "$pid"; then
        _upfs_kill_tree "$pid" KILL
        wait "$pid" 2>/dev/null || true
        BG_RC=124
        return 0
    fi
    wait "$pid" 2>/dev/null || BG_RC=$?
}

rx() { printf '^/%s$' "$(sed 's/[.+*?()|[\]{}^$]/\\&/g' <<<"${1#/}")"; }

upfs_state_pids() {
    local p exe cmd want
    want="$(readlink -f "$UPFS")"
    for p in $(pgrep -f -- "$STATE" || true); do
        exe="$(readlink "/proc/$p/exe" 2>/dev/null)" || continue
        [[ "$exe" == "$want" ]] || continue
        cmd="$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" || continue
        [[ "$cmd" == *"$STATE"* ]] || continue
        pid_alive "$p" && echo "$p"
    done
    return 0
}

no_upfs_left() { [[ -z "$(upfs_state_pids)" ]]; }
