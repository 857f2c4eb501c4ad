# shellcheck shell=bash
# tools/bench/shim.sh -- the HTTP shim rows of tools/bench/run.sh (P6, P7, P8 shim, P11).
# Sourced by run.sh after its setup; uses its helpers (row, tmeas, median, proc_cpu_ms, ...) and variables
# (W, UPFS, RUNS, LAYERS, WRK_SECS, READERS, HAVE_WRK, BENCH_DIR).
#
# Servers, all on 127.0.0.1 and stopped on exit:
#   upstream   docker-registry (distribution) with the benchmark image bench/img:v1, pushed by
#              skopeo from an OCI layout that mkimage.py writes (3 layers: LAYERS[0..2])
#   px         docker-registry in pull-through mode (proxy.remoteurl = the upstream): the peer
#   shim       `upstreamfs serve` on its own state dir with a docker proxy "hub" of the upstream
# Upstream requests are counted in the upstream registry's access log.
# shellcheck disable=SC2154  # m_p6 ... m_p11, W, RT and the rest are run.sh's

declare -gA _BREG_PID=() _BREG_PORT=() _BREG_LOG=()
SHIM_PID="" SHIM_PORT="" SSTATE="" SHIM_PREFIX="hub/"
MT_OCI="application/vnd.oci.image.manifest.v1+json"
ACCEPT="Accept: $MT_OCI, application/vnd.docker.distribution.manifest.v2+json"

# breg_start NAME [REMOTE_URL]: docker-registry with filesystem storage $W/reg-NAME (emptied),
# in pull-through mode of REMOTE_URL when given.
breg_start() {
    local name="$1" remote="${2:-}" port cfg dir="$W/reg-$1" _
    rm -rf -- "$dir"
    mkdir -p "$dir/storage"
    for _ in 1 2 3; do
        port="$(free_port)"
        cfg="$dir/config.yml"
        cat >"$cfg" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: upstreamfs-bench-secret
EOF
        if [[ -n "$remote" ]]; then
            printf 'proxy:\n  remoteurl: %s\n' "$remote" >>"$cfg"
        fi
        _BREG_LOG[$name]="$dir/registry.log"
        "${DIE_WITH_PARENT[@]}" docker-registry serve "$cfg" >>"$dir/registry.log" 2>&1 &
        _BREG_PID[$name]=$!
        if wait_for_port "$port" 15; then
            _BREG_PORT[$name]="$port"
            return 0
        fi
        kill "${_BREG_PID[$name]}" 2>/dev/null || true
        wait "${_BREG_PID[$name]}" 2>/dev/null || true
    done
    log "docker-registry $name did not start: $(tail -n 5 "$dir/registry.log" | tr '\n' ' ')"
    return 1
}

breg_stop() {
    local pid="${_BREG_PID[$1]:-}"
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    _BREG_PID[$1]=""
}

breg_stop_all() {
    local n
    for n in "${!_BREG_PID[@]}"; do breg_stop "$n"; done
}

# upstream_gets PATH_SUFFIX: GETs the upstream registry logged for /v2/bench/img/PATH_SUFFIX
upstream_gets() {
    grep -cF "\"GET /v2/bench/img/$1 " "${_BREG_LOG[up]}" || true
}

# upstream_bytes PATH_SUFFIX: the body bytes of those GETs (the access log's combined format:
# "METHOD URI PROTO" STATUS BYTES ...), e.g. the ranged GETs of a partial object summed
upstream_bytes() {
    awk -v req="\"GET /v2/bench/img/$1 " '
        (i = index($0, req)) { s = substr($0, i + 1); sub(/^[^"]*" /, "", s); split(s, a, " ")
                               if (a[2] ~ /^[0-9]+$/) n += a[2] }
        END { print n + 0 }' "${_BREG_LOG[up]}"
}

# shim_start: `upstreamfs serve` on a fresh state dir whose docker proxy "hub" is the upstream.
shim_start() {
    shim_stop
    if [[ "${BENCH_FAKE_SHIM:-0}" == 1 ]]; then
        # Harness self-test only: a second pull-through docker-registry stands in for the shim.
        breg_start fake "http://127.0.0.1:${_BREG_PORT[up]}" || return 1
        SHIM_PORT="${_BREG_PORT[fake]}" SHIM_PREFIX="" SHIM_PID="fake"
        return 0
    fi
    SHIM_PREFIX="hub/"
    SSTATE="$(mktemp -d "$W/shim-state.XXXXXX")"
    "$UPFS" --state "$SSTATE" proxy create hub --type docker --source custom \
        --url "http://127.0.0.1:${_BREG_PORT[up]}/" >/dev/null || { log "proxy create hub failed"; return 1; }
    local _
    for _ in 1 2 3; do
        SHIM_PORT="$(free_port)"
        "${DIE_WITH_PARENT[@]}" "$UPFS" --state "$SSTATE" --log-level warn serve \
            --listen "127.0.0.1:$SHIM_PORT" >>"$W/serve.log" 2>&1 &
        SHIM_PID=$!
        if wait_for_port "$SHIM_PORT" 15; then return 0; fi
        kill "$SHIM_PID" 2>/dev/null || true
        wait "$SHIM_PID" 2>/dev/null || true
        SHIM_PID=""
    done
    log "upstreamfs serve did not start: $(tail -n 5 "$W/serve.log" | tr '\n' ' ')"
    return 1
}

shim_stop() {
    [[ -n "$SHIM_PID" ]] || return 0
    if [[ "$SHIM_PID" == fake ]]; then breg_stop fake; SHIM_PID=""; return 0; fi
    kill "$SHIM_PID" 2>/dev/null || true
    wait "$SHIM_PID" 2>/dev/null || true
    SHIM_PID=""
    if [[ -n "$SSTATE" ]]; then rm -rf -- "$SSTATE"; SSTATE=""; fi
}

shim_url() { printf 'http://127.0.0.1:%s/v2/%sbench/img/%s' "$SHIM_PORT" "$SHIM_PREFIX" "$1"; }
px_url() { printf 'http://127.0.0.1:%s/v2/bench/img/%s' "${_BREG_PORT[px]}" "$1"; }

# http_get URL [OUT]: status code of a GET (body to OUT, default /dev/null)
http_get() {
    curl --noproxy '*' -s -H "$ACCEPT" -o "${2:-/dev/null}" -w '%{http_code}' --max-time 120 "$1" || true
}
get_ok() { [[ "$(http_get "$1" "${2:-/dev/null}")" == 200 ]]; }

# sha_of_url URL: sha256 hex of the body of a GET
sha_of_url() { curl --noproxy '*' -sf --max-time 300 "$1" | openssl dgst -sha256 -r | cut -d' ' -f1; }

wrk_rps() {
    local url="$1" out
    out="$(wrk -t2 -c64 -d"${WRK_SECS}s" -H "$ACCEPT" "$url" 2>&1)" || { log "wrk failed: $out"; return 1; }
    if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
        log "wrk $url: $(grep 'Non-2xx' <<<"$out")"
        return 1
    fi
    awk '/^Requests\/sec:/ { printf "%d\n", $2 }' <<<"$out"
}

skopeo_copy() {
    rm -rf -- "$W/skopeo-out"
    skopeo --insecure-policy copy --quiet --src-tls-verify=false "docker://$1" "dir:$W/skopeo-out"
}

shim_bench() {
    on_exit shim_stop
    on_exit breg_stop_all
    local img="$W/img" info
    log "shim rows: building a 3-layer image (${LAYERS[*]}) and the registries"
    info="$(/usr/bin/python3 "$BENCH_DIR/mkimage.py" "$img" v1 "${LAYERS[@]}")" || { shim_not_run "mkimage.py failed"; return 1; }
    MDIG="$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["manifest"])' "$info")"
    BDIG="$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["layers"][0]["digest"])' "$info")"
    BSIZE="$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["layers"][0]["size"])' "$info")"
    breg_start up || { shim_not_run "docker-registry (upstream) did not start"; return 1; }
    if ! skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$img:v1" \
        "docker://127.0.0.1:${_BREG_PORT[up]}/bench/img:v1" >"$W/push.log" 2>&1; then
        shim_not_run "skopeo push to the upstream registry failed: $(tail -n 2 "$W/push.log" | tr '\n' ' ')"
        return 1
    fi
    rm -rf -- "$img"
    breg_start px "http://127.0.0.1:${_BREG_PORT[up]}" || { shim_not_run "docker-registry (pull-through) did not start"; return 1; }
    shim_start || { shim_not_run "upstreamfs serve did not start (see $W/serve.log)"; return 1; }

    # Is the shim's registry API there yet?
    local code
    code="$(http_get "$(shim_url manifests/v1)" "$W/probe.body")"
    if [[ "$code" != 200 ]]; then
        shim_not_run "the shim's /v2 routes are not ready: GET /v2/${SHIM_PREFIX}bench/img/manifests/v1 answered HTTP $code $(head -c 160 "$W/probe.body" | tr -d '\n')"
        return 0
    fi

    local bhex="${BDIG#sha256:}"
    # ---- P6: warm GET of the big blob --------------------------------------------------------
    if want P6; then
        local T_S=() T_P=() ok=1
        get_ok "$(px_url manifests/v1)" || { log "the pull-through registry cannot serve the manifest"; ok=0; }
        [[ "$(sha_of_url "$(shim_url "blobs/$BDIG")")" == "$bhex" ]] || { log "shim: wrong bytes for $BDIG"; ok=0; }
        [[ "$(sha_of_url "$(px_url "blobs/$BDIG")")" == "$bhex" ]] || { log "pull-through: wrong bytes for $BDIG"; ok=0; }
        sleep 1   # the pull-through registry commits its copy after the first response
        get_ok "$(shim_url "blobs/$BDIG")" && get_ok "$(px_url "blobs/$BDIG")" || ok=0
        local n0 cs0 cp0 cs1 cp1
        n0="$(upstream_gets "blobs/$BDIG")"
        cs0="$(proc_cpu_ms "$SHIM_PID")" cp0="$(proc_cpu_ms "${_BREG_PID[px]}")"
        for ((run = 1; ok && run <= RUNS; run++)); do
            tmeas T_S "${RT[@]}" curl --noproxy '*' -sf -o /dev/null "$(shim_url "blobs/$BDIG")" || ok=0
            tmeas T_P "${RT[@]}" curl --noproxy '*' -sf -o /dev/null "$(px_url "blobs/$BDIG")" || ok=0
        done
        cs1="$(proc_cpu_ms "$SHIM_PID")" cp1="$(proc_cpu_ms "${_BREG_PID[px]}")"
        local n1
        n1="$(upstream_gets "blobs/$BDIG")"
        if ((ok && ${#T_S[@]} == RUNS)); then
            local ms mp r
            ms="$(median "${T_S[@]}")" mp="$(median "${T_P[@]}")"
            r="$(ratio "$mp" "$ms")"
            row P6 "$m_p6" "$r" "≥ 1.0" "$(judge "$r" ge 1.0)" \
                "shim $(fmt_s "$ms") ($(rate "$BSIZE" "$ms")), docker-registry $(fmt_s "$mp") ($(rate "$BSIZE" "$mp")); server CPU per GET: shim $(((cs1 - cs0) / RUNS)) ms, docker-registry $(((cp1 - cp0) / RUNS)) ms; clients at ${RT[*]:-normal priority}; upstream GETs during the timed runs: $((n1 - n0)); runs shim [$(list_s "${T_S[@]}")] registry [$(list_s "${T_P[@]}")]"
        else
            row_error P6 "$m_p6" "≥ 1.0" "blob GETs failed or returned wrong bytes"
        fi
    fi

    # ---- P11: requests/s of a cached manifest GET --------------------------------------------
    if want P11; then
        if ((!HAVE_WRK)); then
            row_not_run P11 "$m_p11" "≥ 1.0" "wrk unavailable (package wrk)"
        else
            local R_S=() R_P=() ok=1 v
            get_ok "$(shim_url "manifests/$MDIG")" && get_ok "$(px_url "manifests/$MDIG")" || ok=0
            for ((run = 1; ok && run <= RUNS; run++)); do
                v="$(wrk_rps "$(shim_url "manifests/$MDIG")")" && R_S+=("$v") || ok=0
                v="$(wrk_rps "$(px_url "manifests/$MDIG")")" && R_P+=("$v") || ok=0
            done
            if ((ok && ${#R_S[@]} == RUNS)); then
                local ms mp r
                ms="$(median "${R_S[@]}")" mp="$(median "${R_P[@]}")"
                r="$(ratio "$ms" "$mp")"
                row P11 "$m_p11" "$r" "≥ 1.0" "$(judge "$r" ge 1.0)" \
                    "shim $ms req/s, docker-registry $mp req/s (by digest, wrk -t2 -c64 -d${WRK_SECS}s); runs shim [${R_S[*]}] registry [${R_P[*]}]"
            else
                row_error P11 "$m_p11" "≥ 1.0" "manifest GETs failed or answered non-2xx (see the log above)"
            fi
        fi
    fi

    # ---- P7: skopeo copy, cold through the shim vs direct ------------------------------------
    if want P7; then
        local T_S=() T_D=() ok=1
        for ((run = 1; ok && run <= RUNS; run++)); do
            shim_start || { ok=0; break; }
            drop_caches
            tmeas T_S skopeo_copy "127.0.0.1:$SHIM_PORT/${SHIM_PREFIX}bench/img:v1" || { ok=0; break; }
            if ((run == 1)); then
                [[ "$(sha256_of "$W/skopeo-out/$bhex")" == "$bhex" ]] || { log "skopeo through the shim: wrong layer bytes"; ok=0; }
            fi
            drop_caches
            tmeas T_D skopeo_copy "127.0.0.1:${_BREG_PORT[up]}/bench/img:v1" || { ok=0; break; }
        done
        rm -rf -- "$W/skopeo-out"
        if ((ok && ${#T_S[@]} == RUNS)); then
            local ms md r
            ms="$(median "${T_S[@]}")" md="$(median "${T_D[@]}")"
            r="$(ratio "$ms" "$md")"
            row P7 "$m_p7" "$r" "≤ 1.2" "$(judge "$r" le 1.2)" \
                "through the shim $(fmt_s "$ms"), direct $(fmt_s "$md"); runs shim [$(list_s "${T_S[@]}")] direct [$(list_s "${T_D[@]}")]"
        else
            row_error P7 "$m_p7" "≤ 1.2" "skopeo copy failed: $(tail -n 2 "$W/last.err" | tr '\n' ' ')"
        fi
    fi

    # ---- P8 (shim): concurrent cold clients of one blob --------------------------------------
    if want P8s; then
        local GETS=() SENT=() ok=1 n0 b0 k pids p peer="-"
        for ((run = 1; ok && run <= RUNS; run++)); do
            shim_start || { ok=0; break; }
            get_ok "$(shim_url manifests/v1)" || { ok=0; break; }
            drop_caches
            n0="$(upstream_gets "blobs/$BDIG")" b0="$(upstream_bytes "blobs/$BDIG")"
            pids=()
            for ((k = 0; k < READERS; k++)); do
                if ((run == 1)); then
                    (sha_of_url "$(shim_url "blobs/$BDIG")" >"$W/p8s.$k") &
                else
                    (curl --noproxy '*' -s -o /dev/null -w '%{http_code} %{size_download}' "$(shim_url "blobs/$BDIG")" >"$W/p8s.$k") &
                fi
                pids+=($!)
            done
            for p in "${pids[@]}"; do wait "$p" || ok=0; done
            for ((k = 0; k < READERS; k++)); do
                if ((run == 1)); then
                    [[ "$(cat "$W/p8s.$k")" == "$bhex" ]] || { log "shim client $k got wrong bytes"; ok=0; }
                else
                    [[ "$(cat "$W/p8s.$k")" == "200 $BSIZE" ]] || { log "shim client $k: $(cat "$W/p8s.$k")"; ok=0; }
                fi
            done
            sleep 0.3
            GETS+=($(($(upstream_gets "blobs/$BDIG") - n0)))
            SENT+=($(($(upstream_bytes "blobs/$BDIG") - b0)))
        done
        # the peer, once: a pull-through registry with an empty cache
        if ((ok)) && breg_stop px && breg_start px "http://127.0.0.1:${_BREG_PORT[up]}" && get_ok "$(px_url manifests/v1)"; then
            n0="$(upstream_gets "blobs/$BDIG")"
            pids=()
            for ((k = 0; k < READERS; k++)); do
                (curl --noproxy '*' -s -o /dev/null "$(px_url "blobs/$BDIG")") &
                pids+=($!)
            done
            for p in "${pids[@]}"; do wait "$p" || true; done
            sleep 0.3
            peer=$(($(upstream_gets "blobs/$BDIG") - n0))
        fi
        if ((ok && ${#GETS[@]} == RUNS)); then
            local g
            g="$(ratio "$(maxof "${SENT[@]}")" "$BSIZE")"
            row P8s "$m_p8s" "$g" "≤ 1" "$(judge "$g" le 1)" \
                "bytes per run [${SENT[*]}] in GETs per run [${GETS[*]}] (the worst is shown), every client got the blob; docker-registry pull-through: $peer upstream GETs for the same $READERS clients"
        else
            row_error P8s "$m_p8s" "≤ 1" "clients failed or got wrong bytes (GETs per run [${GETS[*]}])"
        fi
    fi
    shim_stop
    breg_stop_all
}
