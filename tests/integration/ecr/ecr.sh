# shellcheck shell=bash
# tests/integration/ecr/ecr.sh -- the fake ECR APIs and the ECR-Public-shaped registry for
# ecr_test.sh. Source after mount_common.sh (uses T, die, wait_until, on_exit,
# DIE_WITH_PARENT, PYTHON, CURL).
#
#     fake_ecr_start NAME ARGS...    fake_ecr.py --port 0 ARGS... (see its --help); sets
#                                    FAKE_PORT_<NAME>; stopped on exit
#     fake_ecr_count NAME KEY        a count of its /_counts ("ecr.GetAuthorizationToken",
#                                    "ecr-public.DescribeRegistries", "denied", "total"), 0 if absent
#     fake_public_start NAME ARGS... fake_public.py --port 0 ARGS...; sets PUB_PORT_<NAME>
#     fake_public_count NAME KEY     a count of its /_counts ("token", "denied", "bearer.anon", ...)
#     fake_public_control NAME WHAT  POST /_control/WHAT (reset, deny?n=N)
#     selfsigned CN DIR              a self-signed certificate for host CN: DIR/CN.crt, DIR/CN.key

_ECR_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
declare -gA _FAKE_PID=()

# _fake_launch NAME SCRIPT VAR ARGS...: starts SCRIPT, reads its port from stdout's first line.
_fake_launch() {
    local name="$1" script="$2" var="$3" out="$T/$1.out" port
    shift 3
    "${DIE_WITH_PARENT[@]}" "$PYTHON" "$_ECR_LIB_DIR/$script" --port 0 "$@" >"$out" \
        2>"$T/$name.log" &
    _FAKE_PID[$name]=$!
    on_exit _fake_stop "$name"
    wait_until 10 test -s "$out" || die "$script ($name) did not start: $(cat "$T/$name.log")"
    port="$(head -n 1 "$out")"
    [[ "$port" =~ ^[0-9]+$ ]] || die "$script ($name) printed no port: $(cat "$out")"
    printf -v "${var}_${name//[^A-Za-z0-9]/_}" '%s' "$port"
}

_fake_stop() {
    local pid="${_FAKE_PID[$1]:-}"
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _FAKE_PID[$1]=""
}

_counts_get() {
    "${CURL[@]}" "$1" |
        "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$2"
}

fake_ecr_start() {
    local name="$1"
    shift
    _fake_launch "$name" fake_ecr.py FAKE_PORT "$@"
}

fake_ecr_count() {
    local v="FAKE_PORT_${1//[^A-Za-z0-9]/_}"
    _counts_get "http://127.0.0.1:${!v}/_counts" "$2"
}

fake_public_start() {
    local name="$1"
    shift
    _fake_launch "$name" fake_public.py PUB_PORT "$@"
}

fake_public_count() {
    local v="PUB_PORT_${1//[^A-Za-z0-9]/_}"
    _counts_get "http://127.0.0.1:${!v}/_counts" "$2"
}

fake_public_control() {
    local v="PUB_PORT_${1//[^A-Za-z0-9]/_}"
    "${CURL[@]}" -X POST "http://127.0.0.1:${!v}/_control/$2" >/dev/null
}

selfsigned() {
    local cn="$1" dir="$2"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$cn" \
        -addext "subjectAltName=DNS:$cn" -keyout "$dir/$cn.key" -out "$dir/$cn.crt" \
        2>"$T/openssl.log" || die "openssl could not make a certificate for $cn: $(cat "$T/openssl.log")"
}
