# shellcheck shell=bash
# tests/integration/lib/common.sh -- basic helpers for upstreamfs integration tests.
#
# Usage (at the top of a test script):
#     #!/bin/bash
#     set -euo pipefail
#     LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"   # adjust to where lib/ is
#     source "$LIB/common.sh"
#     T="$(test_tmpdir)"          # private temp dir, removed on exit (see below)
#
# Provides:
#     log MSG...                    message on stderr, prefixed with "[$TEST_NAME]"
#     die MSG...                    log "FAIL: MSG" and exit 1
#     assert_eq A B [MSG]           die unless A == B (string compare)
#     assert_ne A B [MSG]           die if A == B
#     assert_contains HAY NEEDLE [MSG]   die unless NEEDLE is a substring of HAY
#     assert_sha256 FILE HEX        die unless sha256(FILE) == HEX
#     sha256_of FILE                print the lower-case hex sha256 of FILE
#     free_port                     print a TCP port that is currently free on 127.0.0.1
#     with_timeout SECS CMD...      run CMD (command or shell function); status 124 on timeout
#     on_exit CMD...                push a cleanup command; the stack runs in reverse on EXIT
#     test_tmpdir                   print a new `mktemp -d` dir that is removed on EXIT
#     wait_for_port PORT [SECS]     wait (default 10 s) until 127.0.0.1:PORT accepts connections
#     wait_port_closed PORT [SECS]  wait (default 10 s) until 127.0.0.1:PORT refuses connections
#     port_is_open PORT             status 0 if 127.0.0.1:PORT accepts a connection now
#     wait_until SECS CMD...        poll CMD every 50 ms until it succeeds; status 1 on timeout
#                                   (SECS may be a decimal, e.g. 0.5)
#     pid_alive PID                 status 0 if PID exists and is not a zombie
#     DIE_WITH_PARENT               array: command prefix (setpriv --pdeathsig TERM --) for servers
#                                   started with `&`: they get SIGTERM if the test shell is killed,
#                                   even by SIGKILL, when no EXIT trap can run
#     check_wanted NAME [SETUP]     status 0 if the check NAME runs under CHECKS (below)
#
# Checks by name (docs/TESTING.md): a script's `check DESC CMD...` (mount_common.sh) is named
# by CMD and its arguments ("t_quota"). `SCRIPT --list` prints every check's name and
# description and exits without setting anything up; with CHECKS=REGEX in the environment only
# the checks whose names match REGEX (bash =~) run, the others print `skip NAME`. Setup always
# runs, and so does every `check --setup ...`: a check whose effects later checks rely on.
#
# Conventions:
#     TEST_NAME   defaults to the basename of the test script ($0) without ".sh".
#     PYTHON      /usr/bin/python3 (Debian's interpreter; the python3 first on PATH may be another build).
#     CURL        array: curl with --noproxy '*' etc.; use as "${CURL[@]}" URL.
#     Cleanup: sourcing this file installs an EXIT trap (and INT/TERM/HUP traps that exit, which
#     fires EXIT). Do not install your own `trap ... EXIT`; use on_exit instead. on_exit must be
#     called in the test's main shell, not inside $(...) or a pipeline (subshells have their own
#     stack that never runs). The exit status of the script is preserved.
#     A single argument to on_exit is evaluated as shell code (`on_exit 'kill "$pid"'`); several
#     arguments are run as one command with exactly those words (`on_exit rm -rf "$dir"`).

if [[ -n "${_UPFS_COMMON_SH:-}" ]]; then return 0; fi
_UPFS_COMMON_SH=1

# SCRIPT --list: the checks of the running script ($0), read from its text (nothing is set up).
_upfs_list_checks() {
    /usr/bin/python3 - "$1" <<'EOF'
import re, shlex, sys
buf = ""
for line in open(sys.argv[1]).read().split("\n"):
    if not buf and not re.match(r"\s*check\s", line):
        continue
    more = line.endswith("\\")
    buf += line[:-1] + " " if more else line
    if more:
        continue
    try:
        words = shlex.split(buf, comments=True)
    except ValueError:
        words = []
    buf = ""
    setup = len(words) > 1 and words[1] == "--setup"
    words = words[2:] if setup else words[1:]
    if len(words) >= 2:
        print("%s%s\t%s" % (" ".join(words[1:]), " (setup: always runs)" if setup else "", words[0]))
EOF
}
for _upfs_arg in "$@"; do
    if [[ "$_upfs_arg" == --list ]]; then
        _upfs_list_checks "$0"
        exit 0
    fi
done
unset _upfs_arg

check_wanted() {
    [[ -z "${CHECKS:-}" || "${2:-0}" == 1 || "$1" =~ $CHECKS ]]
}

: "${TEST_NAME:=$(basename "${0%.sh}")}"
: "${PYTHON:=/usr/bin/python3}"
# shellcheck disable=SC2034  # used by the other lib files and by tests
UPFS_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034
CURL=(curl --noproxy '*' --silent --show-error)

log() {
    printf '[%s] %s\n' "$TEST_NAME" "$*" >&2
}

die() {
    log "FAIL: $*"
    exit 1
}

assert_eq() {
    local a="$1" b="$2" msg="${3:-values differ}"
    if [[ "$a" != "$b" ]]; then
        die "$msg: expected '$b', got '$a'"
    fi
}

assert_ne() {
    local a="$1" b="$2" msg="${3:-values are equal}"
    if [[ "$a" == "$b" ]]; then
        die "$msg: both are '$a'"
    fi
}

assert_contains() {
    local hay="$1" needle="$2" msg="${3:-substring not found}"
    if [[ "$hay" != *"$needle"* ]]; then
        die "$msg: '$needle' not in '${hay:0:500}'"
    fi
}

sha256_of() {
    local f="$1" out
    [[ -f "$f" ]] || { log "sha256_of: no such file: $f"; return 1; }
    # openssl uses SHA-NI when present (~4x faster than coreutils sha256sum on 1 GiB).
    out="$(openssl dgst -sha256 -r "$f")" || return 1
    printf '%s\n' "${out%% *}"
}

assert_sha256() {
    local f="$1" want="${2,,}" got
    [[ -f "$f" ]] || die "assert_sha256: no such file: $f"
    got="$(sha256_of "$f")" || die "assert_sha256: cannot hash $f"
    if [[ "$got" != "$want" ]]; then
        die "sha256 of $f: expected $want, got $got"
    fi
}

# Prints a port that is free on 127.0.0.1 right now. It is picked at random below the kernel's
# ephemeral range (so outgoing connections do not grab it) and checked by binding to it. Another
# process may still take it before you do: servers started by this library retry on a bind error.
free_port() {
    "$PYTHON" - <<'EOF'
import random, socket
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    lo = 32768
top = max(min(lo, 65536) - 1, 10000)
for _ in range(200):
    port = random.randint(10000, top)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

# with_timeout SECS CMD... : external commands go through coreutils timeout (TERM, then KILL
# 5 s later); shell functions run in a subshell that a watchdog kills (with its children).
# Returns CMD's status, or 124 on timeout.
with_timeout() {
    local secs="$1"; shift
    if [[ "$(type -t "$1")" != "function" ]]; then
        timeout --kill-after=5 "$secs" "$@"
        return
    fi
    local pid wd rc=0 flag
    flag="$(mktemp)"
    ( "$@" ) &
    pid=$!
    (
        sleep "$secs" || exit 0
        [[ -e "$flag" ]] || exit 0
        echo timeout >"$flag"
        _upfs_kill_tree "$pid" TERM
        sleep 2
        _upfs_kill_tree "$pid" KILL
    ) >/dev/null 2>&1 &
    wd=$!
    wait "$pid" || rc=$?
    if [[ -s "$flag" ]]; then rc=124; fi
    rm -f "$flag"
    _upfs_kill_tree "$wd" TERM
    wait "$wd" 2>/dev/null || true
    return "$rc"
}

# _upfs_kill_tree PID [SIGNAL]: signal PID and all of its descendants (children first listed
# by /proc, so this only touches processes we started).
_upfs_kill_tree() {
    local pid="$1" sig="${2:-TERM}" child
    for child in $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
        _upfs_kill_tree "$child" "$sig"
    done
    kill "-$sig" "$pid" 2>/dev/null || true
}

# ---- cleanup stack -------------------------------------------------------------------------
_UPFS_EXIT_STACK=()
_UPFS_EXIT_PID="$BASHPID"

on_exit() {
    (($# > 0)) || return 0
    if [[ "$BASHPID" != "$_UPFS_EXIT_PID" ]]; then
        log "WARNING: on_exit called in a subshell; '$*' will not run at exit"
    fi
    if (($# == 1)); then
        _UPFS_EXIT_STACK+=("$1")
    else
        _UPFS_EXIT_STACK+=("$(printf '%q ' "$@")")
    fi
}

_upfs_run_exit_stack() {
    local rc=$? i
    [[ "$BASHPID" == "$_UPFS_EXIT_PID" ]] || return "$rc"
    set +e
    trap - EXIT
    for ((i = ${#_UPFS_EXIT_STACK[@]} - 1; i >= 0; i--)); do
        eval "${_UPFS_EXIT_STACK[i]}" </dev/null || log "cleanup '${_UPFS_EXIT_STACK[i]}' failed"
    done
    _UPFS_EXIT_STACK=()
    exit "$rc"
}

trap _upfs_run_exit_stack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# test_tmpdir is normally used as T="$(test_tmpdir)", i.e. in a subshell, so it cannot register
# its own cleanup. Instead, every dir it creates is recorded in a file that the main shell's
# exit stack removes (registered once, right here).
_UPFS_TMPDIRS_FILE="$(mktemp "${TMPDIR:-/tmp}/upfs-tmpdirs.XXXXXX")"
test_tmpdir() {
    local d
    d="$(mktemp -d "${TMPDIR:-/tmp}/upfs-${TEST_NAME//[^A-Za-z0-9_.-]/_}.XXXXXX")"
    printf '%s\n' "$d" >>"$_UPFS_TMPDIRS_FILE"
    printf '%s\n' "$d"
}
_upfs_rm_tmpdirs() {
    local d
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        log "KEEP_TMP=1: keeping $(tr '\n' ' ' <"$_UPFS_TMPDIRS_FILE")"
    else
        while IFS= read -r d; do
            if [[ -n "$d" && -d "$d" ]]; then rm -rf -- "$d"; fi
        done <"$_UPFS_TMPDIRS_FILE"
    fi
    rm -f -- "$_UPFS_TMPDIRS_FILE"
}
on_exit _upfs_rm_tmpdirs

# ---- processes -----------------------------------------------------------------------------
# pid_alive PID: status 0 if PID exists and is not a zombie (an exited child not yet reaped).
pid_alive() {
    local pid="$1" stat
    [[ -n "$pid" ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}
_upfs_pid_dead() { ! pid_alive "$1"; }

# DIE_WITH_PARENT: prefix for commands started in the background with `&`, so they get SIGTERM
# when the shell that started them dies, even by SIGKILL (where no EXIT trap runs).
# Use as: "${DIE_WITH_PARENT[@]}" server args... &
if setpriv --help 2>&1 | grep -q -- --pdeathsig; then
    DIE_WITH_PARENT=(setpriv --pdeathsig TERM --)
else
    # shellcheck disable=SC2034
    DIE_WITH_PARENT=()
fi

# ---- waiting -------------------------------------------------------------------------------
# port_is_open PORT [ADDR]: something listens on ADDR (default 127.0.0.1):PORT
port_is_open() {
    local port="$1" addr="${2:-127.0.0.1}"
    (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null
}

# wait_for_port PORT [SECS [ADDR]]
wait_for_port() {
    local port="$1" secs="${2:-10}" addr="${3:-127.0.0.1}"
    wait_until "$secs" port_is_open "$port" "$addr" || { log "port $addr:$port not open after ${secs}s"; return 1; }
}

_upfs_port_closed() { ! port_is_open "$1"; }

wait_port_closed() {
    local port="$1" secs="${2:-10}"
    wait_until "$secs" _upfs_port_closed "$port" || { log "port $port still open after ${secs}s"; return 1; }
}

# _upfs_ms SECS: SECS (integer or decimal, e.g. 2.5) in milliseconds.
_upfs_ms() {
    local s="$1" int frac
    int="${s%%.*}"; frac=""
    if [[ "$s" == *.* ]]; then frac="${s#*.}"; fi
    frac="${frac}000"; frac="${frac:0:3}"
    echo $((10#${int:-0} * 1000 + 10#$frac))
}

_upfs_now_ms() {
    local t
    t="$(date +%s%N)"
    echo $((t / 1000000))
}

wait_until() {
    local secs="$1"; shift
    local deadline
    deadline=$(($(_upfs_now_ms) + $(_upfs_ms "$secs")))
    until "$@"; do
        (($(_upfs_now_ms) < deadline)) || return 1
        sleep 0.05
    done
}
