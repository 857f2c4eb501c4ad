# shellcheck shell=bash
# tests/integration/lib/upstream.sh -- bash front end for upstream.py (fault-injecting HTTP server).
#
# Usage:
#     source "$LIB/common.sh"; source "$LIB/upstream.sh"
#     upstream_start "$T/www"                        # stopped automatically on exit
#     upstream_fault '{"path": "^/10m\\.bin$", "fault": "status", "status": 503, "times": 2}'
#     curl "${UPSTREAM_URL}10m.bin"
#     assert_eq "$(upstream_count GET /10m.bin)" 3 "GETs of 10m.bin"
#
# Provides (every function takes an optional leading "--name NAME" to address a second,
# third, ... server; NAME is [a-z0-9_]; without it the default instance is used):
#     upstream_start [--name N] ROOT [--quiet]   start on a kernel-chosen free port
#     upstream_stop [--name N]                   TERM (KILL after 10 s), wait until the port refuses
#     upstream_restart [--name N]                stop, then start on the SAME port (fresh state:
#                                                no faults, zero counts) -- "remote comes back"
#     upstream_fault [--name N] JSON             add fault rule(s) (an object or an array; see
#                                                upstream.py for the rule format); dies on error
#     upstream_clear_faults [--name N]           remove every fault rule
#     upstream_count [--name N] METHOD PATH      print the count of exactly "METHOD PATH" (PATH is
#                                                percent-decoded, no query string; METHOD "*" = all)
#     upstream_expect_count [--name N] COUNT METHOD PATH [--wait SECS]
#                                                wait up to SECS (default 2) for COUNT, die unless
#                                                exactly COUNT
#     upstream_counts [--name N]                 print all counts as JSON {"GET /path": n}
#     upstream_requests [--name N]               print the request log as JSON (method, path,
#                                                target, range, headers, time)
#     upstream_reset [--name N]                  zero counts and the request log, drop all faults
#     upstream_reset_counts [--name N]           zero counts and the request log only
#
# Exports after upstream_start (default instance / --name N, with N upper-cased):
#     UPSTREAM_PORT / UPSTREAM_N_PORT       the port (127.0.0.1 only)
#     UPSTREAM_URL  / UPSTREAM_N_URL        http://127.0.0.1:PORT/  (trailing slash)
#     UPSTREAM_PID  / UPSTREAM_N_PID        the python process
#     UPSTREAM_LOG  / UPSTREAM_N_LOG        its stderr (one line per request unless --quiet)
#     UPSTREAM_ROOT / UPSTREAM_N_ROOT       the served directory
# The server gets SIGTERM if the test shell dies, even by SIGKILL (DIE_WITH_PARENT), so call
# upstream_start from the test's main shell, not inside $(...).
# Counts are taken when the request line arrives, before any response byte, so they are exact
# as soon as a client has seen any part of the answer.

if [[ -n "${_UPFS_UPSTREAM_SH:-}" ]]; then return 0; fi
_UPFS_UPSTREAM_SH=1
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

UPSTREAM_PY="$UPFS_LIB_DIR/upstream.py"
declare -A _UPSTREAM_PID=() _UPSTREAM_PORT=() _UPSTREAM_DIR=() _UPSTREAM_ROOT=() _UPSTREAM_ARGS=()

# _upstream_name "$@": sets _UN (instance name) and _UNSHIFT (args to drop).
_upstream_name() {
    _UN=default
    _UNSHIFT=0
    if [[ "${1:-}" == "--name" ]]; then
        [[ "${2:-}" =~ ^[a-z0-9_]+$ ]] || die "upstream: bad --name '${2:-}' (use [a-z0-9_]+)"
        _UN="$2"
        _UNSHIFT=2
    fi
}

# _upstream_export NAME: publish UPSTREAM_* (or UPSTREAM_<NAME>_*) variables.
_upstream_export() {
    local n="$1" p
    if [[ "$n" == default ]]; then p=UPSTREAM; else p="UPSTREAM_${n^^}"; fi
    printf -v "${p}_PORT" '%s' "${_UPSTREAM_PORT[$n]}"
    printf -v "${p}_URL" '%s' "http://127.0.0.1:${_UPSTREAM_PORT[$n]}/"
    printf -v "${p}_PID" '%s' "${_UPSTREAM_PID[$n]:-}"
    printf -v "${p}_LOG" '%s' "${_UPSTREAM_DIR[$n]}/upstream.log"
    printf -v "${p}_ROOT" '%s' "${_UPSTREAM_ROOT[$n]}"
    export "${p}_PORT" "${p}_URL" "${p}_PID" "${p}_LOG" "${p}_ROOT"
}

_upstream_url() {
    local n="$1"
    [[ -n "${_UPSTREAM_PORT[$n]:-}" ]] || die "upstream '$n' was not started"
    printf 'http://127.0.0.1:%s' "${_UPSTREAM_PORT[$n]}"
}

# _upstream_launch NAME PORT: start python, wait for its port; sets _UPSTREAM_PID/_UPSTREAM_PORT.
_upstream_launch() {
    local n="$1" port="$2" dir="${_UPSTREAM_DIR[$1]}" pid deadline
    local -a extra=()
    if [[ -n "${_UPSTREAM_ARGS[$n]:-}" ]]; then read -r -a extra <<<"${_UPSTREAM_ARGS[$n]}"; fi
    rm -f -- "$dir/port"
    "${DIE_WITH_PARENT[@]}" "$PYTHON" "$UPSTREAM_PY" --root "${_UPSTREAM_ROOT[$n]}" --port "$port" --port-file "$dir/port" \
        "${extra[@]}" </dev/null >"$dir/stdout" 2>>"$dir/upstream.log" &
    pid=$!
    deadline=$(($(_upfs_now_ms) + 10000))
    until [[ -s "$dir/port" ]]; do
        if ! pid_alive "$pid"; then
            wait "$pid" 2>/dev/null || true
            cat "$dir/upstream.log" >&2
            die "upstream.py ($n) exited during startup"
        fi
        if (($(_upfs_now_ms) > deadline)); then
            _upfs_kill_tree "$pid" KILL
            wait "$pid" 2>/dev/null || true
            cat "$dir/upstream.log" >&2
            die "upstream.py ($n) did not report its port"
        fi
        sleep 0.02
    done
    _UPSTREAM_PID[$n]="$pid"
    _UPSTREAM_PORT[$n]="$(<"$dir/port")"
    _upstream_export "$n"
}

upstream_start() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    local n="$_UN" root="${1:?upstream_start [--name N] ROOT [--quiet]}" dir
    shift
    [[ -d "$root" ]] || die "upstream_start: not a directory: $root"
    if [[ -n "${_UPSTREAM_PID[$n]:-}" ]] && pid_alive "${_UPSTREAM_PID[$n]}"; then
        die "upstream_start: instance '$n' already running"
    fi
    dir="$(mktemp -d "${TMPDIR:-/tmp}/upfs-upstream.XXXXXX")"
    on_exit rm -rf -- "$dir"
    on_exit upstream_stop --name "$n"
    _UPSTREAM_DIR[$n]="$dir"
    _UPSTREAM_ROOT[$n]="$(cd "$root" && pwd -P)"
    _UPSTREAM_ARGS[$n]="$*"
    _upstream_launch "$n" 0
    log "upstream '$n' on http://127.0.0.1:${_UPSTREAM_PORT[$n]}/ (root ${_UPSTREAM_ROOT[$n]}), pid ${_UPSTREAM_PID[$n]}"
}

upstream_stop() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    local n="$_UN" pid
    pid="${_UPSTREAM_PID[$n]:-}"
    [[ -n "$pid" ]] || return 0
    _UPSTREAM_PID[$n]=""
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_until 10 _upfs_pid_dead "$pid"; then
            log "upstream_stop: pid $pid ignored TERM, killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    _upstream_export "$n"
    wait_port_closed "${_UPSTREAM_PORT[$n]}" 10 || log "upstream_stop: port ${_UPSTREAM_PORT[$n]} still open"
}

upstream_restart() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    local n="$_UN"
    [[ -n "${_UPSTREAM_PORT[$n]:-}" ]] || die "upstream_restart: upstream_start first"
    upstream_stop --name "$n"
    _upstream_launch "$n" "${_UPSTREAM_PORT[$n]}"
    log "upstream '$n' restarted on port ${_UPSTREAM_PORT[$n]}, pid ${_UPSTREAM_PID[$n]}"
}

# _upstream_post NAME CMD [JSON]
_upstream_post() {
    local url out body="${3:-}"
    if [[ -z "$body" ]]; then body='{}'; fi
    url="$(_upstream_url "$1")" || return 1
    out="$("${CURL[@]}" --fail-with-body --max-time 10 -X POST -H 'Content-Type: application/json' \
        --data-binary "$body" "$url/_control/$2" 2>&1)" || die "upstream $2 failed: $out"
}

upstream_fault() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    _upstream_post "$_UN" fault "${1:?upstream_fault [--name N] JSON}"
}

upstream_clear_faults() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    _upstream_post "$_UN" clear_faults
}

upstream_reset() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    _upstream_post "$_UN" reset
}

upstream_reset_counts() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    _upstream_post "$_UN" reset_counts
}

upstream_count() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    local url
    (($# == 2)) || die "usage: upstream_count [--name N] METHOD PATH"
    url="$(_upstream_url "$_UN")" || return 1
    "${CURL[@]}" --fail --max-time 10 -G --data-urlencode "method=$1" --data-urlencode "path=$2" \
        "$url/_control/count" || die "upstream_count: control request failed"
}

upstream_counts() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    local url
    url="$(_upstream_url "$_UN")" || return 1
    "${CURL[@]}" --fail --max-time 10 "$url/_control/counts"
}

upstream_requests() {
    _upstream_name "$@"; shift "$_UNSHIFT"
    local url
    url="$(_upstream_url "$_UN")" || return 1
    "${CURL[@]}" --fail --max-time 10 "$url/_control/requests"
}

_UPSTREAM_WANT=0
_upstream_count_reached() { (($(upstream_count "$@") >= _UPSTREAM_WANT)); }

upstream_expect_count() {
    local -a name=() args=()
    local secs=2 got
    if [[ "${1:-}" == "--name" ]]; then name=(--name "$2"); shift 2; fi
    _UPSTREAM_WANT="${1:?upstream_expect_count [--name N] COUNT METHOD PATH [--wait SECS]}"
    shift
    while (($#)); do
        case "$1" in
            --wait) secs="$2"; shift 2 ;;
            *) args+=("$1"); shift ;;
        esac
    done
    wait_until "$secs" _upstream_count_reached "${name[@]}" "${args[@]}" || true
    got="$(upstream_count "${name[@]}" "${args[@]}")"
    if [[ "$got" != "$_UPSTREAM_WANT" ]]; then
        log "upstream counts:"; upstream_counts "${name[@]}" >&2 || true
        die "upstream_count ${args[*]}: expected $_UPSTREAM_WANT request(s), got $got"
    fi
}
