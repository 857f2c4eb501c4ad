# shellcheck shell=bash
# tools/bench/metadata.sh -- the metadata rows of tools/bench/run.sh (M1-M6): index documents
# through the shim, warm, against the same bytes from nginx or the lab registry directly.
# Sourced by run.sh after its setup; uses its helpers (row, median, ratio, judge, ...) and
# variables (W, UPFS, RUNS, QUICK, WWW, NGINX_URL, ROOT).
#
# Fixtures (tools/bench/mkdocs.py, deterministic):
#   npm   big-pkg, a packument of 6,000 versions (~4.6 MB), huge-pkg (M6: ~50 MiB), and
#         pkg-000 ... pkg-099 with real tarballs (M5), served by tests/integration/npm/registry.py
#         (the lab registry: it answers the abbreviated form to npm's Accept)
#   pypi  big-proj, a simple page of 6,000 files (~1.5 MB), huge-proj (M6h, M6j: 60,000 files,
#         ~16 MB), and proj-000 ... proj-049 with one
#         wheel each (M5), a static tree under nginx
#   helm  index.yaml of 6,000 chart versions (~2.9 MB) under nginx
# The shim is `upstreamfs serve` on its own state dir with proxies npm, py and charts of those.
# Its answers are saved once (warm) and nginx serves those very bytes: the peer of M1-M3.
# HTTP times are curl's own time_total (no process start), the two sides interleaved.
# shellcheck disable=SC2154  # W, UPFS, RUNS and the rest are run.sh's

if ((QUICK)); then M_VERSIONS=600 M_FILES=600 M_CHARTS=600 M_HUGE=6000 M_HUGEPY=6000 M_NPKG=10 M_NPY=5
else M_VERSIONS=6000 M_FILES=6000 M_CHARTS=6000 M_HUGE=66000 M_HUGEPY=60000 M_NPKG=100 M_NPY=50; fi
M_CORGI="Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
M_PIP_JSON="Accept: application/vnd.pypi.simple.v1+json"
M_REG_PID="" M_SHIM_PID="" M_SHIM_PORT="" M_REG_URL=""

m_stop() {
    local p
    for p in $M_SHIM_PID $M_REG_PID; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    M_SHIM_PID="" M_REG_PID=""
}

# m_serve STATE: `upstreamfs serve` on STATE and a free port (M_SHIM_PID, M_SHIM_PORT)
m_serve() {
    local _
    for _ in 1 2 3; do
        M_SHIM_PORT="$(free_port)"
        "${DIE_WITH_PARENT[@]}" "$UPFS" --state "$1" --log-level warn serve \
            --listen "127.0.0.1:$M_SHIM_PORT" >>"$W/meta-serve.log" 2>&1 &
        M_SHIM_PID=$!
        wait_for_port "$M_SHIM_PORT" 15 && return 0
        kill "$M_SHIM_PID" 2>/dev/null || true
        wait "$M_SHIM_PID" 2>/dev/null || true
    done
    log "upstreamfs serve did not start: $(tail -n 5 "$W/meta-serve.log" | tr '\n' ' ')"
    return 1
}

m_setup() {
    local gen="$BENCH_DIR/mkdocs.py" reg="$ROOT/tests/integration/npm/registry.py"
    M="$WWW/meta"
    mkdir -p "$M/peer" "$W/meta-npm" "$W/meta-proj"
    log "metadata fixtures: $M_VERSIONS versions, $M_FILES files, $M_CHARTS charts, $M_NPKG + $M_NPY packages"
    "$PYTHON" "$gen" npm "$W/meta-npm" big-pkg "$M_VERSIONS" >/dev/null &&
        "$PYTHON" "$gen" npm "$W/meta-npm" huge-pkg "$M_HUGE" >"$W/meta-huge.size" &&
        "$PYTHON" "$gen" npm-many "$W/meta-npm" "$M_NPKG" "$W/meta-proj" &&
        "$PYTHON" "$gen" pypi "$M/py" big-proj "$M_FILES" >/dev/null &&
        "$PYTHON" "$gen" pypi "$M/py" huge-proj "$M_HUGEPY" >"$W/meta-hugepy.size" &&
        "$PYTHON" "$gen" pypi-many "$M/py" "$M_NPY" "$W/meta-reqs.txt" &&
        "$PYTHON" "$gen" helm "$M/charts" "$M_CHARTS" >/dev/null || { log "mkdocs.py failed"; return 1; }
    rm -f "$W/meta-reg.port"
    "${DIE_WITH_PARENT[@]}" "$PYTHON" "$reg" serve "$W/meta-npm" --port-file "$W/meta-reg.port" \
        >/dev/null 2>"$W/meta-reg.log" &
    M_REG_PID=$!
    on_exit m_stop
    wait_until 15 test -s "$W/meta-reg.port" || { log "the lab registry did not start"; return 1; }
    M_REG_URL="http://127.0.0.1:$(cat "$W/meta-reg.port")/"
    M_STATE="$W/meta-state"
    mkdir -p "$M_STATE"
    "$UPFS" --state "$M_STATE" proxy create npm --type npm --url "$M_REG_URL" >/dev/null &&
        "$UPFS" --state "$M_STATE" proxy create py --type pypi --url "${NGINX_URL}meta/py/" >/dev/null &&
        "$UPFS" --state "$M_STATE" proxy create charts --type helm --url "${NGINX_URL}meta/charts/" >/dev/null ||
        { log "proxy create failed"; return 1; }
    m_serve "$M_STATE"
}

# m_get URL FILE [HEADER]: GET into FILE (curl's status must be 200)
m_get() {
    local code h=()
    [[ -z "${3:-}" ]] || h=(-H "$3")
    code="$(curl -s -o "$2" -w '%{http_code}' "${h[@]}" "$1")" || return 1
    [[ "$code" == 200 ]] || { log "GET $1: $code"; return 1; }
}
# m_time ARRAY URL [HEADER...]: curl's time_total of one GET, in µs, appended to ARRAY
m_time() {
    local -n _acc="$1"
    local url="$2" t
    shift 2
    local h=() x
    for x in "$@"; do [[ -z "$x" ]] || h+=(-H "$x"); done
    t="$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "${h[@]}" "$url")" || return 1
    [[ "$t" == 200* || "$t" == 304* ]] || { log "GET $url: $t"; return 1; }
    _acc+=("$(awk -v s="${t#* }" 'BEGIN { printf "%d\n", s * 1e6 }')")
}

# m_pair ID MEASURE SHIM_URL PEER_FILE HEADER: the warm shim against nginx on the same bytes
m_pair() {
    local id="$1" measure="$2" url="$3" peer="$4" hdr="$5" r a=() b=()
    m_get "$url" "$M/peer/$peer" "$hdr" || { row_error "$id" "$measure" "≥ 0.8" "warm-up GET failed"; return; }
    m_get "$url" "$W/meta-again" "$hdr" && cmp -s "$M/peer/$peer" "$W/meta-again" ||
        { row_error "$id" "$measure" "≥ 0.8" "two warm GETs differ"; return; }
    for ((r = 0; r < RUNS * 4; r++)); do # a GET is cheap: 4 × runs samples
        m_time a "$url" "$hdr" && m_time b "${NGINX_URL}meta/peer/$peer" "$hdr" ||
            { row_error "$id" "$measure" "≥ 0.8" "a GET failed"; return; }
    done
    local ms mn rt
    ms="$(median "${a[@]}")" mn="$(median "${b[@]}")"
    rt="$(ratio "$mn" "$ms")"
    row "$id" "$measure" "$rt" "≥ 0.8" "$(judge "$rt" ge 0.8)" \
        "$(stat -c %s "$M/peer/$peer") bytes: shim $(fmt_ms "$ms"), nginx $(fmt_ms "$mn") (curl time_total, median of $((RUNS * 4)))"
}

# M4: a conditional GET whose ETag matches, answered 304
m_304() {
    local url="http://127.0.0.1:$M_SHIM_PORT/npm/big-pkg" etag a=() r
    etag="$(curl -s -D - -o /dev/null -H "$M_CORGI" "$url" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" { print $2 }')"
    [[ -n "$etag" ]] || { row_error M4 "304 to a matching If-None-Match" "≤ 5 ms" "no ETag"; return; }
    for ((r = 0; r < RUNS * 4; r++)); do
        local code
        code="$(curl -s -o /dev/null -w '%{http_code}' -H "$M_CORGI" -H "If-None-Match: $etag" "$url")"
        [[ "$code" == 304 ]] || { row_error M4 "304 to a matching If-None-Match" "≤ 5 ms" "status $code"; return; }
        m_time a "$url" "$M_CORGI" "If-None-Match: $etag" || return
    done
    local ms
    ms="$(median "${a[@]}")"
    row M4 "304 to a matching If-None-Match (npm big-pkg)" "$(fmt_ms "$ms")" "≤ 5 ms" \
        "$(judge "$ms" le 5000)" "curl time_total, median of $((RUNS * 4)); every answer 304"
}

# M5: npm install of a project with M_NPKG dependencies, and pip download of M_NPY projects
m_install() {
    local npmrc="$W/meta-npmrc" home="$W/meta-home"
    : >"$npmrc"
    mkdir -p "$home"
    m_npm() { # m_npm REGISTRY
        rm -rf "$W/meta-proj/node_modules" "$W/meta-proj/package-lock.json" "$W/meta-npm-cache"
        env -i PATH="$PATH" HOME="$home" npm --prefix "$W/meta-proj" --registry "$1" \
            --cache "$W/meta-npm-cache" --userconfig "$npmrc" --no-update-notifier --no-audit \
            --no-fund --loglevel error install
    }
    m_pip() { # m_pip INDEX
        rm -rf "$W/meta-dl"
        env -i PATH=/usr/bin:/bin HOME="$home" "$PYTHON" -m pip download --isolated \
            --disable-pip-version-check --no-cache-dir --no-input --no-deps --index-url "$1" \
            -d "$W/meta-dl" -r "$W/meta-reqs.txt"
    }
    local S="http://127.0.0.1:$M_SHIM_PORT"
    if ! command -v npm >/dev/null; then
        row_not_run M5n "npm install, $M_NPKG dependencies" "≤ 1.2" "npm is missing"
    else
        m_versus M5n "npm install, $M_NPKG dependencies, warm: shim / lab registry" \
            "(new npm cache each run)" m_npm "$S/npm/" "$M_REG_URL"
    fi
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        row_not_run M5p "pip download, $M_NPY projects" "≤ 1.2" "pip is missing"
    else
        m_versus M5p "pip download, $M_NPY projects, warm: shim / nginx" "" m_pip \
            "$S/py/simple/" "${NGINX_URL}meta/py/simple/"
    fi
}

# m_versus ID MEASURE NOTE CMD SHIM_URL DIRECT_URL: CMD through the shim (once to warm its
# cache, then RUNS times) against CMD on the direct URL, interleaved; target ≤ 1.2
m_versus() {
    local id="$1" measure="$2" note="$3" cmd="$4" shim="$5" direct="$6" r a=() b=()
    tmeas a "$cmd" "$shim" || { row_error "$id" "$measure" "≤ 1.2" "$cmd through the shim failed"; return; }
    a=()
    for ((r = 0; r < RUNS; r++)); do
        tmeas a "$cmd" "$shim" && tmeas b "$cmd" "$direct" ||
            { row_error "$id" "$measure" "≤ 1.2" "$cmd failed"; return; }
    done
    local ms md rt
    ms="$(median "${a[@]}")" md="$(median "${b[@]}")"
    rt="$(ratio "$ms" "$md")"
    row "$id" "$measure" "$rt" "≤ 1.2" "$(judge "$rt" le 1.2)" \
        "shim $(fmt_s "$ms"), direct $(fmt_s "$md")${note:+ $note}, median of $RUNS"
}

# m_hwm PID: the peak RSS (VmHWM) of PID in KiB
m_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# m_rss_row ID MEASURE BASE PEAK SIZE DETAIL: the growth of a fresh daemon's peak RSS over SIZE
m_rss_row() {
    local x
    x="$(awk -v g="$((($4 - $3) * 1024))" -v s="$5" 'BEGIN { printf "%.2f", g / s }')"
    row "$1" "$2" "${x}×" "≤ 3×" "$(judge "$x" le 3)" \
        "VmHWM $(($3 / 1024)) MiB at start, $(($4 / 1024)) MiB after, document $5 bytes${6:+; $6}"
}

# m_rss_serve ID MEASURE SIZE TYPE URL PATH ACCEPT...: a fresh `serve` (its own state, one proxy
# "m6" of TYPE on URL) answers PATH once per ACCEPT header, cold; its peak RSS over SIZE
m_rss_serve() {
    local id="$1" measure="$2" size="$3" type="$4" url="$5" path="$6" st="$W/meta-state-m6" base peak
    local sizes="" a i=0
    shift 6
    rm -rf -- "$st"
    mkdir -p "$st"
    "$UPFS" --state "$st" proxy create m6 --type "$type" --url "$url" >/dev/null || return
    local keep_pid="$M_SHIM_PID" keep_port="$M_SHIM_PORT"
    m_serve "$st" || { row_error "$id" "$measure" "≤ 3×" "serve failed"; return; }
    base="$(m_hwm "$M_SHIM_PID")"
    for a in "$@"; do
        i=$((i + 1))
        m_get "http://127.0.0.1:$M_SHIM_PORT/m6/$path" "$W/meta-m6.$i" "$a" ||
            { row_error "$id" "$measure" "≤ 3×" "GET failed"; break; }
        sizes+="${sizes:+, }$(stat -c %s "$W/meta-m6.$i")"
    done
    peak="$(m_hwm "$M_SHIM_PID")"
    kill "$M_SHIM_PID" 2>/dev/null || true
    wait "$M_SHIM_PID" 2>/dev/null || true
    M_SHIM_PID="$keep_pid" M_SHIM_PORT="$keep_port"
    rm -rf -- "$st"
    [[ "${R_RESULT[$id]:-}" == ERROR ]] || m_rss_row "$id" "$measure" "$base" "$peak" "$size" "answers $sizes bytes"
}

# M6t: a fresh mount lists huge-pkg's tarballs with `ls -l` (the directory -/: the table of its
# abbreviated document), the whole listing: its time, its entries, the daemon's peak RSS over
# the document, and how often a document was read from the store (the mount's /metrics,
# upstreamfs_document_reads_total: the table's parse, not a read per tarball looked up,
# src/drivers/doc_memo.c drv_doc_use). Each listed tarball is looked up, and its size asked
# with a HEAD (the lab registry has no such tarballs: 404, so ls -l's own stat asks again).
# M_LIST_GUARD seconds stop a listing that never ends.
M_LIST_GUARD=900
m_rss_mount() {
    local id=M6t st="$W/meta-state-m6" mnt="$W/meta-mnt" size pid base peak n t0 t1 port reads
    local measure="peak RSS listing the tarballs of a packument in the mount (ls -l <pkg>/-/, cold)"
    rm -rf -- "$st"
    mkdir -p "$st" "$mnt"
    curl -s -o "$W/meta-huge.corgi" -H "$M_CORGI" "${M_REG_URL}huge-pkg" || return
    size="$(stat -c %s "$W/meta-huge.corgi")"
    "$UPFS" --state "$st" proxy create m6 --type npm --url "$M_REG_URL" >/dev/null || return
    port="$(free_port)"
    "${DIE_WITH_PARENT[@]}" "$UPFS" --state "$st" mount "$mnt" -f -o "listen=127.0.0.1:$port" \
        >>"$W/meta-mount.log" 2>&1 &
    pid=$!
    wait_until 15 grep -qF " $mnt " /proc/self/mounts || { row_error "$id" "$measure" "≤ 3×" "mount failed"; return; }
    base="$(m_hwm "$pid")"
    t0="$(date +%s%N)"
    n="$(timeout "$M_LIST_GUARD" ls -l "$mnt/m6/huge-pkg/-/" 2>/dev/null | grep -c '\.tgz$')" || true
    t1="$(date +%s%N)"
    peak="$(m_hwm "$pid")"
    reads="$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "upstreamfs_document_reads_total" { print $2 }')"
    kill "$pid" 2>/dev/null || true
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf -- "$st"
    if (((t1 - t0) / 1000000000 >= M_LIST_GUARD)); then
        row_error "$id" "$measure" "≤ 3×" "ls -l not done in $M_LIST_GUARD s ($n entries)"
        return
    elif ((n == 0)); then # e.g. the lab registry slower than the metadata deadline
        row_error "$id" "$measure" "≤ 3×" "ls -l listed nothing (meta-mount.log)"
        return
    fi
    m_rss_row "$id" "$measure" "$base" "$peak" "$size" \
        "the abbreviated document; ls -l listed $n tarballs in $(fmt_s $(((t1 - t0) / 1000))), documents read from the store: ${reads:-?}"
}

# M6: fresh daemons render a huge packument (full, then abbreviated) and a huge PyPI page (its
# HTML source, and its JSON form as the shim answers it; each rendered as JSON and HTML)
m_memory() {
    local S="http://127.0.0.1:$M_SHIM_PORT" size
    want M6 && m_rss_serve M6 "peak RSS rendering a $(human "$(cat "$W/meta-huge.size")") packument (full and abbreviated, cold)" \
        "$(cat "$W/meta-huge.size")" npm "$M_REG_URL" huge-pkg "Accept: application/json" "$M_CORGI"
    size="$(cat "$W/meta-hugepy.size")"
    want M6h && m_rss_serve M6h "peak RSS rendering a $(human "$size") PyPI page of $M_HUGEPY files, HTML source (JSON and HTML answers, cold)" \
        "$size" pypi "${NGINX_URL}meta/py/" simple/huge-proj/ "$M_PIP_JSON" "Accept: text/html"
    if want M6j; then
        m_get "$S/py/simple/huge-proj/" "$W/meta-hugepy.json" "$M_PIP_JSON" || { row_error M6j "PyPI JSON page" "≤ 3×" "GET failed"; return; }
        size="$(stat -c %s "$W/meta-hugepy.json")"
        m_rss_serve M6j "peak RSS rendering a $(human "$size") PyPI page of $M_HUGEPY files, JSON source (JSON and HTML answers, cold)" \
            "$size" pypi "$S/py/" simple/huge-proj/ "$M_PIP_JSON" "Accept: text/html"
    fi
    want M6t && m_rss_mount
}

m_bench() {
    m_setup || { row_error M1f "metadata rows" "-" "setup failed"; return 1; }
    local S="http://127.0.0.1:$M_SHIM_PORT"
    want M1f && m_pair M1f "npm packument, $M_VERSIONS versions, full: nginx / shim" "$S/npm/big-pkg" npm-full.json "Accept: application/json"
    want M1a && m_pair M1a "npm packument, $M_VERSIONS versions, abbreviated: nginx / shim" "$S/npm/big-pkg" npm-abbr.json "$M_CORGI"
    want M2h && m_pair M2h "PyPI page, $M_FILES files, HTML: nginx / shim" "$S/py/simple/big-proj/" py.html "Accept: text/html"
    want M2j && m_pair M2j "PyPI page, $M_FILES files, JSON: nginx / shim" "$S/py/simple/big-proj/" py.json "$M_PIP_JSON"
    want M3 && m_pair M3 "Helm index.yaml, $M_CHARTS charts: nginx / shim" "$S/charts/index.yaml" helm.yaml ""
    want M4 && m_304
    want_any M5n M5p && m_install
    want_any M6 M6h M6j M6t && m_memory
    m_stop
}
