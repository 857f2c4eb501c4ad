# shellcheck shell=bash
# tools/bench/lazy.sh -- the lazy-read rows of tools/bench/run.sh (R1, R2, R3, P13; issue 15).
# Sourced by run.sh after its setup; uses its helpers (row, tmeas, median, evict, drop_caches,
# rclone_up, ...) and variables (W, WWW, F, STATE, RMNT, BIG, RUNS, HAVE_RCLONE).
#
# Each run reads an uncached file both ways: upstreamfs (the object evicted, its partial
# chunks removed, the page cache dropped) and a fresh `rclone mount --vfs-cache-mode full` with
# an empty cache, on the same nginx. Upstream bytes are the sum of nginx's body_bytes_sent for
# the file during the upstreamfs read (before any background fill: fill=auto does not fill for
# readers that are not sequential).
# shellcheck disable=SC2154  # W, F, STATE and the rest are run.sh's

# Bytes nginx sent for GETs of path $1 (e.g. /big.bin) since the log was reset.
nginx_sent() { awk -F'\t' -v p="$1" '$3 == "GET" && $4 == p { s += $7 } END { print s + 0 }' "$NGINX_LOG"; }

# Forgets every copy of file $1 (a name under files/): stored object, partial chunks.
lazy_forget() {
    local name="$1"
    wait_until 30 _flight_idle "$F/$name" || true
    sleep 3.5 # a flight with no reader lingers 3 s (src/fetch/lazy.c); its files go after it
    is_complete "$F/$name" && { evict "$name" || return 1; }
    # the chunk maps (the index's rows) first, then the data files, as the eviction does
    /usr/bin/python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30); c.execute("DELETE FROM partial"); c.commit()' \
        "$STATE/index.db"
    rm -f -- "$STATE"/partial/*
    [[ "$(cached_state "$F/$name")" == none ]] || { log "files/$name still cached: $(cached_state "$F/$name")"; return 1; }
}
# No flight of the file runs (its xattr stops changing).
_flight_idle() {
    local a b
    a="$(cached_state "$1")"
    sleep 0.3
    b="$(cached_state "$1")"
    [[ "$a" == "$b" ]]
}

# R1: the last 64 KiB; R2: 16 reads of 4 KiB at scattered offsets; R3: unzip -l.
r_tail() { dd if="$1/big.bin" of=/dev/null bs=65536 skip=$((BIG / 65536 - 1)) count=1 status=none; }
r_scatter() {
    local i
    for i in $(seq 1 16); do
        dd if="$1/big.bin" of=/dev/null bs=4096 skip=$(((BIG / 4096) * i / 17 + i * 7)) count=1 status=none || return 1
    done
}
r_unzip() { unzip -l "$1/big.zip" >/dev/null; }

# lazy_row ID FN FILE MEASURE BYTES_TARGET
lazy_row() {
    local id="$1" fn="$2" file="$3" measure="$4" btarget="$5" run ok=1 mu mr r b
    local -a TU=() TR=() BU=()
    for ((run = 1; run <= RUNS; run++)); do
        lazy_forget "$file" || { ok=0; break; }
        drop_caches
        nginx_log_reset
        tmeas TU "$fn" "$F" || { ok=0; break; }
        BU+=("$(nginx_sent "/$file")")
        rclone_up || { ok=0; break; }
        drop_caches
        tmeas TR "$fn" "$RMNT" || { ok=0; break; }
        rclone_down
    done
    if ((!ok)); then
        row_error "$id" "$measure" "≤ 1.5" "runs failed ($run of $RUNS); see the log above"
        return 0
    fi
    mu="$(median "${TU[@]}")" mr="$(median "${TR[@]}")" b="$(median "${BU[@]}")"
    r="$(ratio "$mu" "$mr")"
    local res
    res="$(judge "$r" le 1.5)"
    [[ -z "$btarget" ]] || (( b <= btarget )) || res=miss
    row "$id" "$measure, mount / rclone time" "$r" "≤ 1.5${btarget:+, ≤ $(human "$btarget") upstream}" "$res" \
        "mount $(fmt_ms "$mu") ($(human "$b") from nginx), rclone $(fmt_ms "$mr"); mount runs [$(list_s "${TU[@]}")], rclone runs [$(list_s "${TR[@]}")]"
}

lazy_bench() {
    if ((!HAVE_RCLONE)); then
        for id in R1 R2 R3; do want "$id" && row_not_run "$id" "lazy read vs rclone" "≤ 1.5" "rclone unavailable"; done
        return 0
    fi
    if want R3 && [[ ! -e "$WWW/big.zip" ]]; then
        # a zip of one stored (not compressed) member: its central directory is at the end
        fixture_bytes zipped.bin "$R3SIZE" "$W/zipped.bin"
        (cd "$W" && zip -q -0 "$WWW/big.zip" zipped.bin) || { row_error R3 "unzip -l" "≤ 1.5" "zip failed"; }
        rm -f "$W/zipped.bin"
        ls -l "$F" >/dev/null
    fi
    want R1 && lazy_row R1 r_tail big.bin "last 64 KiB of an uncached $(human "$BIG") file" $((8 << 20))
    want R2 && lazy_row R2 r_scatter big.bin "16 reads of 4 KiB at scattered offsets of an uncached $(human "$BIG") file" ""
    want R3 && lazy_row R3 r_unzip big.zip "unzip -l of an uncached $(human "$R3SIZE") zip" ""
    return 0
}

# P13: a cold sequential read of a file under /slow/, where nginx limits every connection to
# P13RATE (limit_rate), through the mount with its default streams vs one `curl -o file`: the
# parallel ranged fill (src/fetch/lazy.c) against a single stream. At least 3 runs (RUNS in a
# full run); each evicts the file and drops the page cache before either side.
limited_bench() {
    local file=slow/p13.bin run runs=$((RUNS < 3 ? 3 : RUNS)) ok=1 mu mc r conns
    local -a TU=() TC=() BU=() CN=()
    local m_p13="cold read of a $(human "$P13SIZE") file, nginx limit_rate $P13RATE per connection: curl -o file / mount (time)"
    ((QUICK)) && runs=$RUNS # the smoke test: one run
    ls -l "$F/slow" >/dev/null 2>&1 || { row_error P13 "$m_p13" "≥ 2" "files/slow is not listed"; return 0; }
    for ((run = 1; run <= runs; run++)); do
        lazy_forget "$file" || { ok=0; break; }
        drop_caches
        tmeas TC curl --noproxy '*' -sf -o "$W/p13.out" "${NGINX_URL}$file" || { ok=0; break; }
        rm -f "$W/p13.out"
        drop_caches
        nginx_log_reset
        tmeas TU read_file "$F/$file" || { ok=0; break; }
        wait_complete "$F/$file" || { ok=0; break; }
        BU+=("$(nginx_sent "/$file")")
        conns="$(awk -F'\t' -v p="/$file" '$3 == "GET" && $4 == p { print $12 }' "$NGINX_LOG" | sort -u | wc -l)"
        CN+=("$conns")
    done
    if ((!ok)); then
        row_error P13 "$m_p13" "≥ 2" "runs failed ($run of $runs); see the log above"
        return 0
    fi
    [[ "$(sha256_of "$(blob_of "$F/$file")")" == "$(sha256_of "$WWW/$file")" ]] ||
        { row_error P13 "$m_p13" "≥ 2" "the cached copy's sha256 is wrong"; return 0; }
    mu="$(median "${TU[@]}")" mc="$(median "${TC[@]}")"
    r="$(ratio "$mc" "$mu")"
    row P13 "$m_p13" "$r" "≥ 2" "$(judge "$r" ge 2)" \
        "mount $(fmt_s "$mu") ($(rate "$P13SIZE" "$mu")), curl $(fmt_s "$mc") ($(rate "$P13SIZE" "$mc")); upstream bytes per run [${BU[*]}] over connections [${CN[*]}]; runs mount [$(list_s "${TU[@]}")] curl [$(list_s "${TC[@]}")]"
}
