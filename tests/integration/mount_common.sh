# shellcheck shell=bash
# tests/integration/mount_common.sh -- shared setup for the mount_*_test.sh integration tests.
#
# Usage (first lines of a test; the built binary is the test's first argument, as for cli_test):
#     #!/bin/bash
#     set -euo pipefail
#     source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
#
# Sources lib/common.sh, lib/nginx.sh, lib/fixtures.sh and lib/upstream.sh, and provides:
#     UPFS                      absolute path of the binary under test
#     T                         the test's private temp dir (removed on exit; KEEP_TMP=1 keeps it)
#     STATE                     $T/state, the state dir every `upfs` call uses
#     upfs ARGS...              "$UPFS" --state "$STATE" ARGS...
#     upfs_mount MNT [ARGS...]  upfs mount MNT ARGS... (within 30 s); registers the cleanup
#                               `fusermount3 -uz MNT` (+ wait for the daemon to exit) once per MNT
#     upfs_register_mount MNT   just that registration (in the main shell, before a `check`
#                               that mounts)
#     upfs_unmount MNT          fusermount3 -u MNT and wait (10 s) until its daemon has exited
#     upfs_daemon_pids MNT      pids of upstreamfs processes serving MNT (this binary, this state)
#     xattr NAME FILE           value of user.upstreamfs.NAME on FILE (status 1 if unreadable)
#     run_capture CMD...        run CMD; sets RC, OUT (stdout) and ERR (stderr); never fails
#     expect_fail_with MSG CMD...   CMD must fail and its stderr must contain MSG
#     expect_ok CMD...          CMD must succeed (stderr shown on failure)
#     stats_field NAME          field NAME of `cache stats --json`
#     index_sql SQL             rows of SQL on STATE/index.db, one a line, fields tab-separated
#                               (Python's sqlite3, waiting for the daemon's locks; committed)
#     check [--setup] DESC CMD...   soft assertion: run CMD (a function using die/assert_*) in a
#                               subshell with set -e; on failure record DESC and go on. Named
#                               by CMD and its words: CHECKS=REGEX runs only the matching ones
#                               (lib/common.sh); --setup: later checks rely on it, it always runs
#     finish                    die listing every failed `check`, else log PASS
# On failure (any exit before `finish` passed) the tail of STATE/upstreamfs.log, nginx's access
# log, and the upstream.py counts are printed, so `ctest --output-on-failure` shows them.

_MOUNT_COMMON_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/common.sh
source "$_MOUNT_COMMON_DIR/lib/common.sh"
# shellcheck source=lib/nginx.sh
source "$_MOUNT_COMMON_DIR/lib/nginx.sh"
# shellcheck source=lib/fixtures.sh
source "$_MOUNT_COMMON_DIR/lib/fixtures.sh"
# shellcheck source=lib/upstream.sh
source "$_MOUNT_COMMON_DIR/lib/upstream.sh"

[[ $# -ge 1 && -x "$1" ]] || die "usage: $0 PATH/TO/upstreamfs (got '${1:-}')"
UPFS="$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
[[ -e /dev/fuse ]] || die "/dev/fuse is missing: these tests mount for real"
command -v fusermount3 >/dev/null || die "fusermount3 is missing (package fuse3)"
command -v getfattr >/dev/null || die "getfattr is missing (package attr)"

T="$(test_tmpdir)"
STATE="$T/state"
_UPFS_FAILED=()
_UPFS_SELECTED=0 # checks run under CHECKS, --setup ones aside
_UPFS_PASSED=0
_UPFS_MOUNTS=()
_UPFS_DIAG_REGISTERED=0
_UPFS_DIAG_DONE=0
_UPFS_STARTED=$SECONDS

upfs() {
    "$UPFS" --state "$STATE" "$@"
}

upfs_daemon_pids() {
    local mnt="$1" p exe cmd want
    want="$(readlink -f "$UPFS")"
    for p in $(pgrep -f -- "$mnt" || true); do
        exe="$(readlink "/proc/$p/exe" 2>/dev/null)" || continue
        [[ "$exe" == "$want" ]] || continue
        cmd="$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" || continue
        [[ "$cmd" == *"$STATE"* ]] || continue
        pid_alive "$p" && echo "$p"
    done
}

_upfs_no_daemon() { [[ -z "$(upfs_daemon_pids "$1")" ]]; }

upfs_unmount() {
    local mnt="$1"
    if mountpoint -q "$mnt" 2>/dev/null || grep -qF " $mnt " /proc/self/mounts; then
        fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
    fi
    wait_until 10 _upfs_no_daemon "$mnt" || log "upfs_unmount: daemon for $mnt still running: $(upfs_daemon_pids "$mnt" | tr '\n' ' ')"
}

# Cleanup for one mount point: lazy unmount, then give the daemon a moment to exit so the
# temp dir is not removed under it; a daemon that does not exit is killed by its pid.
_upfs_cleanup_mount() {
    local mnt="$1" p i
    # more than one mount may be stacked on MNT (e.g. a remount over a dead one)
    for i in 1 2 3 4 5; do
        grep -qF " $mnt fuse" /proc/self/mounts || break
        ((i == 1)) || log "cleanup: $mnt is still mounted after fusermount3 -uz; unmounting again"
        fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    done
    if ! wait_until 10 _upfs_no_daemon "$mnt"; then
        for p in $(upfs_daemon_pids "$mnt"); do
            log "cleanup: daemon $p for $mnt did not exit after unmount; killing it"
            kill -KILL "$p" 2>/dev/null || true
        done
    fi
}

# upfs_register_mount MNT: register MNT's cleanup (and the failure diagnostics) once. Must run
# in the test's main shell: upfs_mount calls it, so call this first when upfs_mount itself
# runs inside a `check` (a subshell).
upfs_register_mount() {
    local mnt="$1" m
    for m in "${_UPFS_MOUNTS[@]}"; do [[ "$m" == "$mnt" ]] && return 0; done
    _UPFS_MOUNTS+=("$mnt")
    if ((!_UPFS_DIAG_REGISTERED)); then
        # runs after the unmounts but before the servers' log dirs are removed
        on_exit _upfs_diag
        _UPFS_DIAG_REGISTERED=1
    fi
    on_exit _upfs_cleanup_mount "$mnt"
}

upfs_mount() {
    local mnt="$1" rc=0
    shift
    mkdir -p -- "$mnt"
    upfs_register_mount "$mnt"
    with_timeout 30 "$UPFS" --state "$STATE" mount "$mnt" "$@" || rc=$?
    ((rc == 0)) || die "upstreamfs mount $mnt $* failed (status $rc)"
    grep -qF " $mnt fuse" /proc/self/mounts || die "mount returned 0 but $mnt is not in /proc/self/mounts"
}

xattr() {
    getfattr --absolute-names --only-values -n "user.upstreamfs.$1" -- "$2" 2>/dev/null
}

run_capture() {
    local eo ee
    eo="$(mktemp "$T/.out.XXXXXX")"
    ee="$(mktemp "$T/.err.XXXXXX")"
    RC=0
    "$@" >"$eo" 2>"$ee" || RC=$?
    OUT="$(cat "$eo")"
    ERR="$(cat "$ee")"
    rm -f -- "$eo" "$ee"
}

expect_fail_with() {
    local msg="$1"
    shift
    run_capture "$@"
    if ((RC == 0)); then
        die "'$*' succeeded (stdout: '${OUT:0:200}'), expected failure with '$msg'"
    fi
    assert_contains "$ERR" "$msg" "stderr of '$*' (status $RC)"
}

expect_ok() {
    run_capture "$@"
    ((RC == 0)) || die "'$*' failed with status $RC: ${ERR:0:500}"
}

stats_field() {
    upfs cache stats --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

index_sql() {
    "$PYTHON" -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
for r in c.execute(sys.argv[2]).fetchall():
    print("\t".join(map(str, r)))
c.commit()' "$STATE/index.db" "$1"
}

check() {
    local setup=0 desc name rc=0
    if [[ "$1" == --setup ]]; then
        setup=1
        shift
    fi
    desc="$1"
    shift
    name="$*"
    if ! check_wanted "$name" "$setup"; then
        log "skip $name"
        return 0
    fi
    ((setup)) || _UPFS_SELECTED=$((_UPFS_SELECTED + 1))
    set +e
    (
        set -e
        "$@"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        _UPFS_FAILED+=("$name: $desc")
        log "CHECK FAILED: $name: $desc"
    else
        log "ok: $name: $desc"
    fi
    return 0
}

finish() {
    if [[ -n "${CHECKS:-}" ]] && ((_UPFS_SELECTED == 0)); then
        die "CHECKS='$CHECKS' matched no check of $TEST_NAME (--list prints their names)"
    fi
    if ((${#_UPFS_FAILED[@]} > 0)); then
        local f
        for f in "${_UPFS_FAILED[@]}"; do log "failed check: $f"; done
        die "${#_UPFS_FAILED[@]} check(s) failed"
    fi
    _UPFS_PASSED=1
    log "PASS ($((SECONDS - _UPFS_STARTED)) s)"
}

_upfs_diag() {
    ((_UPFS_PASSED || _UPFS_DIAG_DONE)) && return 0
    _UPFS_DIAG_DONE=1
    log "---- diagnostics ----"
    if [[ -f "$STATE/upstreamfs.log" ]]; then
        log "last lines of $STATE/upstreamfs.log:"
        tail -n 80 -- "$STATE/upstreamfs.log" >&2 || true
    fi
    if [[ -n "${NGINX_LOG:-}" && -f "${NGINX_LOG:-}" ]]; then
        log "last lines of nginx's access log:"
        tail -n 60 -- "$NGINX_LOG" >&2 || true
    fi
    if [[ -n "${UPSTREAM_PORT:-}" ]] && port_is_open "$UPSTREAM_PORT"; then
        log "upstream.py counts:"
        upstream_counts >&2 || true
        echo >&2
    fi
    return 0
}
# Fallback for a failure before the first mount (upfs_mount registers it again, later, so that
# it runs before nginx's and upstream.py's log dirs are removed).
on_exit _upfs_diag
