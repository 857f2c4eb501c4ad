# shellcheck shell=bash
# tests/integration/shim/shim_common.sh -- helpers for the shim_*_test.sh integration tests.
#
# Usage (after sourcing ../mount_common.sh, which provides UPFS, STATE, T, upfs, die, ...):
#     source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
#
# Provides:
#     serve_start NAME [ARGS...]   start "upstreamfs --state $STATE serve --listen ADDR:PORT
#                                  ARGS..." in the background on a free port (retried on a port
#                                  race; ADDR is $SERVE_ADDR, default 127.0.0.1); sets
#                                  SERVE_ADDR_<NAME>, SERVE_PORT_<NAME>, SERVE_PID_<NAME> and
#                                  SERVE_LOG_<NAME> ($T/serve-NAME.log, the access log); stopped
#                                  (SIGTERM, then waited for) on exit
#     files_server_start DIR       serve DIR over HTTP on 127.0.0.1 (python3 -m http.server) on a
#                                  free port; sets FPORT; stopped on exit
#     serve_stop NAME              SIGTERM and wait; dies unless it exits 0 within 10 s (call it
#                                  from the main shell: only the parent can read the status)
#     http_get URL [CURL_ARGS...]  GET URL into $T/body; sets HTTP_STATUS, BODY (first 64 KiB as
#                                  text), HEADERS (the response headers, CR stripped)
#     http_req METHOD URL [DATA]   the same for any method; DATA (JSON) is sent as the body
#                                  (HEAD: $T/body stays empty; curl reads no body after a HEAD)
#     api_req METHOD URL [DATA]... http_req with the admin token of $STATE (Authorization:
#     api_get URL [CURL_ARGS...]   Bearer, from $STATE/admin-token): what /api/v1 needs
#     admin_header_file            writes that header to a 0600 file for curl -H @FILE; prints
#                                  the file's name
#     header_of NAME               the value of response header NAME from the last http_* call
#     json_field EXPR              evaluate EXPR (Python, the parsed BODY is `j`) and print it
#     json_eq A B                  status 0 when the JSON texts A and B are equal as values
#     metric_of URL NAME           the value of the unlabelled metric upstreamfs_NAME in the
#                                  /metrics page at URL
#     ls_reads URL DIR PATTERN     ls -l DIR (a stat of each entry, as ls -l does); prints the
#                                  number of its lines matching PATTERN (grep) and the number of
#                                  documents the daemon read from its store meanwhile
#                                  (document_reads_total in the /metrics page at URL)

_SHIM_COMMON_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

serve_start() {
    local name="$1" port pid log attempt addr="${SERVE_ADDR:-127.0.0.1}"
    shift
    log="$T/serve-$name.log"
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        "${DIE_WITH_PARENT[@]}" "$UPFS" --state "$STATE" serve --listen "$addr:$port" "$@" \
            </dev/null >"$log" 2>&1 &
        pid=$!
        if wait_until 10 port_is_open "$port" "$addr"; then
            break
        fi
        if pid_alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        pid=""
        if ! grep -q "Address already in use" "$log"; then
            cat "$log" >&2
            die "serve $name did not start"
        fi
        log "serve $name: port $port taken, retrying ($attempt)"
    done
    [[ -n "$pid" ]] || die "serve $name: no free port"
    printf -v "SERVE_PORT_$name" '%s' "$port"
    printf -v "SERVE_ADDR_$name" '%s' "$addr"
    printf -v "SERVE_PID_$name" '%s' "$pid"
    printf -v "SERVE_LOG_$name" '%s' "$log"
    on_exit "_serve_cleanup $pid"
}

files_server_start() {
    FPORT="$(free_port)"
    "${DIE_WITH_PARENT[@]}" "$PYTHON" -m http.server --bind 127.0.0.1 --directory "$1" "$FPORT" \
        >"$T/files.log" 2>&1 &
    local pid=$!
    on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null || true"
    wait_for_port "$FPORT" || die "the fixture server did not start"
}

_serve_cleanup() {
    local pid="$1"
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_until 10 _upfs_pid_dead "$pid" || kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

serve_stop() {
    local name="$1" pidvar="SERVE_PID_$1" rc=0
    local pid="${!pidvar}"
    kill -TERM "$pid" 2>/dev/null || true
    wait_until 10 _upfs_pid_dead "$pid" || die "serve $name did not stop within 10 s of SIGTERM"
    wait "$pid" 2>/dev/null || rc=$?
    ((rc == 0)) || die "serve $name exited with status $rc after SIGTERM"
}

http_req() {
    local method="$1" url="$2" data="${3-}" args=()
    shift 3 2>/dev/null || shift $#
    args=(-X "$method" -o "$T/body" -D "$T/headers" -w '%{http_code}')
    # curl -I writes the headers where the body would go; only -D keeps them here
    if [[ "$method" == HEAD ]]; then args=(-I -o /dev/null -D "$T/headers" -w '%{http_code}'); fi
    : >"$T/body"
    if [[ -n "$data" ]]; then args+=(-H 'Content-Type: application/json' --data-binary "$data"); fi
    HTTP_STATUS="$("${CURL[@]}" --max-time 60 "${args[@]}" "$@" "$url" 2>"$T/curl.err")" || true
    HEADERS="$(tr -d '\r' <"$T/headers" 2>/dev/null || true)"
    BODY="$(head -c 65536 "$T/body" 2>/dev/null | tr -d '\0' || true)"
}

api_req() {
    local method="$1" url="$2" data="${3-}"
    shift 3 2>/dev/null || shift $#
    admin_header_file >/dev/null
    http_req "$method" "$url" "$data" -H "@$T/admin-auth.hdr" "$@"
}

# Writes "Authorization: Bearer TOKEN" ($STATE/admin-token) to $T/admin-auth.hdr (0600) for
# curl's -H @FILE, so the token is never in a process's arguments; prints the file's name.
admin_header_file() {
    (umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$STATE/admin-token")" >"$T/admin-auth.hdr")
    printf '%s\n' "$T/admin-auth.hdr"
}

api_get() {
    local url="$1"
    shift
    api_req GET "$url" "" "$@"
}

http_get() {
    local url="$1"
    shift
    http_req GET "$url" "" "$@"
}

header_of() {
    awk -v n="$1" 'BEGIN { n = tolower(n) } { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v } }' <<<"$HEADERS" | tail -n 1
}

json_field() {
    "$PYTHON" -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$BODY" "$1"
}

json_eq() {
    "$PYTHON" -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]) == json.loads(sys.argv[2]) else 1)' "$1" "$2"
}

metric_of() {
    "${CURL[@]}" "$1" | awk -v m="upstreamfs_$2" '$1 == m { print $2 }'
}

ls_reads() {
    local before after
    before="$(metric_of "$1" document_reads_total)"
    [[ -n "$before" ]] || die "$1 has no upstreamfs_document_reads_total"
    ls -l "$2" >"$T/ls-reads"
    after="$(metric_of "$1" document_reads_total)"
    echo "$(grep -c "$3" "$T/ls-reads") $((after - before))"
}
