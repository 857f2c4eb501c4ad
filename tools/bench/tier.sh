# shellcheck shell=bash
# tools/bench/tier.sh -- row T1 of tools/bench/run.sh: N edges behind one parent against N
# independent clients of the origin, with the origin's link as the limit.
# Sourced by run.sh after its setup; uses its helpers (row, median, ...) and variables
# (W, UPFS, RUNS, QUICK, WWW).
#
#   origin   a second nginx on the fixture tree whose every connection is throttled
#            (limit_rate T1_RATE): the network, not the shared CPU, is the limit
#   parent   `upstreamfs serve` (its own state dir), a generic proxy "files" on the origin
#   edges    T1_EDGES `upstreamfs mount`s (each its own state dir), a generic proxy "files"
#            whose URL is the parent's /files/
# For N in 1 2 4 8 16 (--quick: 1 2 4 8), each run evicts t1.bin everywhere, then N edges read it at once (wall time
# until the last has all its bytes, each reader hashing what it reads, every copy's sha256
# checked) and, side by side, N curls fetch it from the origin at once, hashed the same way. The ratio is hierarchy / curls at N = 8 (target ≤ 1.0: no
# slower); the origin's bytes per run are read from its access log (target: the file's size
# once, whatever N; the curls cost N times that).
# shellcheck disable=SC2154  # W, UPFS, RUNS and the rest are run.sh's

if ((QUICK)); then
    T1_NS=(1 2 4 8) T1_SIZE=$((8 << 20)) T1_RATE=16m
else
    T1_NS=(1 2 4 8 16) T1_SIZE=$((64 << 20)) T1_RATE=32m
fi
T1_EDGES="${T1_NS[-1]}"

t1_setup() {
    local n
    fixture_bytes t1.bin "$T1_SIZE" "$W/t1-www/t1.bin"
    T1_SHA="$(sha256_of "$W/t1-www/t1.bin")"
    T1_PORT="$(free_port)"
    mkdir -p "$W/t1-nginx"
    cat >"$W/t1-nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $W/t1-nginx/nginx.pid;
error_log $W/t1-nginx/error.log;
events { worker_connections 256; }
http {
    access_log $W/t1-nginx/access.log;
    log_format t1 '\$request_uri \$status \$body_bytes_sent';
    access_log $W/t1-nginx/bytes.log t1;
    client_body_temp_path $W/t1-nginx; proxy_temp_path $W/t1-nginx;
    fastcgi_temp_path $W/t1-nginx; uwsgi_temp_path $W/t1-nginx; scgi_temp_path $W/t1-nginx;
    sendfile on;
    server {
        listen 127.0.0.1:$T1_PORT;
        root $W/t1-www;
        limit_rate $T1_RATE;
    }
}
EOF
    "${DIE_WITH_PARENT[@]}" nginx -c "$W/t1-nginx/nginx.conf" -p "$W/t1-nginx" 2>"$W/t1-nginx/stderr" &
    T1_NGINX=$!
    on_exit "kill $T1_NGINX 2>/dev/null; wait $T1_NGINX 2>/dev/null || true"
    wait_for_port "$T1_PORT" 10 || { log "T1: nginx did not start: $(cat "$W/t1-nginx/stderr")"; return 1; }

    T1_P="$W/t1-parent"
    "$UPFS" --state "$T1_P" proxy create files --type generic --url "http://127.0.0.1:$T1_PORT/" >/dev/null
    T1_PPORT="$(free_port)"
    "${DIE_WITH_PARENT[@]}" "$UPFS" --state "$T1_P" serve --listen "127.0.0.1:$T1_PPORT" \
        >"$W/t1-parent.log" 2>&1 &
    T1_PPID=$!
    on_exit "kill -TERM $T1_PPID 2>/dev/null; wait $T1_PPID 2>/dev/null || true"
    wait_for_port "$T1_PPORT" 10 || { log "T1: the parent did not start"; return 1; }
    for ((n = 1; n <= T1_EDGES; n++)); do
        "$UPFS" --state "$W/t1-e$n" proxy create files --type generic \
            --url "http://127.0.0.1:$T1_PPORT/files/" >/dev/null
        mkdir -p "$W/t1-m$n"
        "$UPFS" --state "$W/t1-e$n" mount "$W/t1-m$n" || { log "T1: edge $n did not mount"; return 1; }
        on_exit _unmount "$W/t1-m$n"
        [[ "$(stat -c %s "$W/t1-m$n/files/t1.bin")" == "$T1_SIZE" ]] || { log "T1: edge $n shows a wrong size"; return 1; }
    done
}

# the origin's body bytes for t1.bin since the log was last emptied
t1_origin_bytes() { awk '$1 == "/t1.bin" { s += $3 } END { print s + 0 }' "$W/t1-nginx/bytes.log"; }

t1_evict() {
    local n s
    for s in "$T1_P" "$W"/t1-e[0-9]*; do
        "$UPFS" --state "$s" cache evict files/t1.bin >/dev/null 2>&1 || true
    done
    for ((n = 1; n <= T1_EDGES; n++)); do
        [[ "$(getfattr --only-values -n user.upstreamfs.cached "$W/t1-m$n/files/t1.bin" 2>/dev/null)" == none ]] ||
            { log "T1: edge $n still has t1.bin"; return 1; }
    done
}

# t1_edges N: N edges read t1.bin at once; prints the wall time (us); fails on wrong bytes
t1_edges() {
    local n="$1" k t0 t1 pids=() ok=1
    t0=${EPOCHREALTIME/./}
    for ((k = 1; k <= n; k++)); do
        openssl dgst -sha256 -r "$W/t1-m$k/files/t1.bin" >"$W/t1-sum.$k" &
        pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k" || ok=0; done
    t1=${EPOCHREALTIME/./}
    for ((k = 1; k <= n; k++)); do
        [[ "$(cut -d' ' -f1 "$W/t1-sum.$k")" == "$T1_SHA" ]] || { ok=0; log "T1: edge $k read wrong bytes"; }
    done
    ((ok)) && echo $((t1 - t0))
}

# t1_curls N: N curls fetch t1.bin from the origin at once, each hashed as it arrives as the
# edges' readers hash theirs; prints the wall time (us); fails on wrong bytes
t1_curls() {
    local n="$1" k t0 t1 pids=() ok=1
    t0=${EPOCHREALTIME/./}
    for ((k = 1; k <= n; k++)); do
        { curl -sf "http://127.0.0.1:$T1_PORT/t1.bin" | openssl dgst -sha256 -r >"$W/t1-csum.$k"; } &
        pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k" || ok=0; done
    t1=${EPOCHREALTIME/./}
    for ((k = 1; k <= n; k++)); do
        [[ "$(cut -d' ' -f1 "$W/t1-csum.$k")" == "$T1_SHA" ]] || { ok=0; log "T1: curl $k got wrong bytes"; }
    done
    ((ok)) && echo $((t1 - t0))
}

t1_bench() {
    local m="N edges through one parent / N curls from the origin, origin throttled to $T1_RATE/s per connection (wall time at N = 8)"
    if ! t1_setup; then
        row_error T1 "$m" "≤ 1.0" "setup failed (see the log above)"
        return 1
    fi
    log "T1: $(human "$T1_SIZE") at $T1_RATE/s per connection, N in ${T1_NS[*]}, $RUNS run(s)"
    local n run te tc detail="" ratio8="" worst_bytes=0 b
    for n in "${T1_NS[@]}"; do
        local TE=() TC=()
        for ((run = 0; run < RUNS; run++)); do
            t1_evict || { row_error T1 "$m" "≤ 1.0" "evict failed"; return 1; }
            : >"$W/t1-nginx/bytes.log"
            te="$(t1_edges "$n")" || { row_error T1 "$m" "≤ 1.0" "edges failed or read wrong bytes"; return 1; }
            b="$(t1_origin_bytes)"
            ((b > worst_bytes)) && worst_bytes=$b
            tc="$(t1_curls "$n")" || { row_error T1 "$m" "≤ 1.0" "curl from the origin failed"; return 1; }
            TE+=("$te") TC+=("$tc")
        done
        local me mc
        me="$(median "${TE[@]}")" mc="$(median "${TC[@]}")"
        detail+="N=$n: edges $(fmt_s "$me"), curls $(fmt_s "$mc") ($(ratio "$me" "$mc")×); "
        ((n == 8)) && ratio8="$(ratio "$me" "$mc")"
    done
    detail+="origin bytes per run of the edges at most $(human "$worst_bytes") (the file is $(human "$T1_SIZE"); N curls cost N×)"
    local verdict
    verdict="$(judge "$ratio8" le 1.0)"
    ((worst_bytes > T1_SIZE)) && verdict=miss
    row T1 "$m" "$ratio8" "≤ 1.0, origin bytes = size" "$verdict" "$detail"
}
