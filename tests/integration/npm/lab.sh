# The npm lab registry (registry.py in this directory) for the integration tests; sourced after
# lib/common.sh. Its names are its own: docker/registry.sh has registry_start/registry_stop.
#     REGISTRY_PY                this directory's registry.py (build, serve, unpublish)
#     npm_lab_start DIR [ARGS]   serve DIR (made by `registry.py build`) on a free port, ARGS
#                                passed to `serve` (e.g. --full-only); sets REG_PORT and REG_URL;
#                                stopped on exit
#     npm_lab_stop               stop it (a test may start it again)
REGISTRY_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/registry.py"
NPM_LAB_PID=""

npm_lab_start() {
    local dir="$1"
    shift
    rm -f "$T/reg.port"
    "${DIE_WITH_PARENT[@]}" "$PYTHON" "$REGISTRY_PY" serve "$dir" --port-file "$T/reg.port" "$@" \
        >/dev/null 2>"$T/reg.log" &
    NPM_LAB_PID=$!
    wait_until 10 test -s "$T/reg.port" || die "the fixture registry did not start: $(cat "$T/reg.log")"
    REG_PORT="$(cat "$T/reg.port")"
    REG_URL="http://127.0.0.1:$REG_PORT/"
}

npm_lab_stop() {
    [[ -n "$NPM_LAB_PID" ]] || return 0
    kill -TERM "$NPM_LAB_PID" 2>/dev/null || true
    wait "$NPM_LAB_PID" 2>/dev/null || true
    NPM_LAB_PID=""
}
on_exit npm_lab_stop
