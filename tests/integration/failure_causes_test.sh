#!/bin/bash
# tests/integration/failure_causes_test.sh -- every failure names its cause (docs/troubleshooting.md,
# "Failure policy"): in the log at the default level, in the mount's errno and xattrs, in the
# shim's error body and in /metrics; and health returns to ok once the upstream is fixed.
#
#     bash tests/integration/failure_causes_test.sh build/upstreamfs
#
# One mount with the shim in the same process (-o listen=), proxies on upstream.py:
#   * a file known (stat answered) whose GET then answers 401, 403, 429 or 500: cat fails with
#     EACCES (401/403) or EREMOTEIO (429/500); the log has one warning "proxy P: C failure,
#     status S: URL" (cause auth or http), exactly one for two failed reads (the per-minute
#     limit); user.upstreamfs.error on the file is "C S <RFC 3339 time>";
#     user.upstreamfs.health on the proxy's top directory says "failing: C" (or backing-off);
#     STATEDIR/health/P.json has the state, the cause, the status and the last success;
#     the shim answers 502 with "proxy P, cause C, upstream status S" (never 401/403);
#     /metrics counts upstreamfs_upstream_errors_total{proxy,cause} and proxy_healthy 0;
#   * a cached copy served past its TTL while the remote answers 500: health "stale";
#   * a 404 is absence, not a failure: ENOENT, no warning, health ok; the remote's
#     ratelimit-remaining header shows as upstreamfs_upstream_ratelimit_remaining;
#   * a refused port (ECONNREFUSED, cause connect), a name under .invalid (EHOSTUNREACH, cause
#     dns, within 5 s) and a remote that accepts and never answers (ETIMEDOUT, cause timeout; the
#     shim answers 504): the error xattr is on the proxy's top directory (the name never
#     resolved), status "-";
#   * wrong bytes in a Maven jar: EIO, cause digest;
#   * a docker registry answering 401: /v2 answers 502 with the registry error JSON naming the
#     proxy, cause auth and status 401;
#   * the faults cleared: the files read, a "recovered" line is logged, health is ok in the
#     xattr, in /metrics and in STATEDIR/health/P.json, and the file's error xattr is gone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

SRV="$T/srv"
MNT="$T/mnt"
STATUS_PROXIES=(a401 a403 r429 e500)
for p in "${STATUS_PROXIES[@]}" n404; do fixture_bytes "$p" 65536 "$SRV/$p/f.bin"; done
fixture_bytes rl 4096 "$SRV/n404/rl.bin"
fixture_bytes st 4096 "$SRV/st/f.bin"
fixture_bytes hung 4096 "$SRV/hung/f.bin"
mkdir -p "$SRV/maven"
fixtures_maven "$SRV/maven"
upstream_start "$SRV" --quiet

for p in "${STATUS_PROXIES[@]}" n404 hung; do
    upfs proxy create "$p" --type generic --url "${UPSTREAM_URL}$p/" >/dev/null
done
upfs proxy create st --type generic --url "${UPSTREAM_URL}st/" --metadata-ttl 1 >/dev/null
upfs proxy create mvn --type maven --url "${UPSTREAM_URL}maven/" >/dev/null
mkdir -p "$SRV/reg"
# a registry URL's path is a repository prefix: dk's requests go to /v2/reg/<repo>/...
upfs proxy create dk --type docker --source custom --url "${UPSTREAM_URL}reg/" >/dev/null
DEAD_PORT="$(free_port)"
upfs proxy create refused --type generic --url "http://127.0.0.1:$DEAD_PORT/" >/dev/null
upfs proxy create nodns --type generic --url "http://upstream.invalid/" >/dev/null
PORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$PORT"
wait_for_port "$PORT" 10 || die "the mount's shim is not listening on $PORT"
S="http://127.0.0.1:$PORT"
LOG="$STATE/upstreamfs.log"
JAR=com/example/demo/1.0/demo-1.0.jar
RFC3339='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'

# health_field FILE EXPR: the words of EXPR over the JSON object h of FILE
health_field() { "$PYTHON" -c 'import json,re,sys; h=json.load(open(sys.argv[1])); print(*eval(sys.argv[2]))' "$1" "$2"; }
# the health object of `proxy show --json` or /api/v1/proxies/KEY while failing: state, cause,
# status, counted failures, times as RFC 3339 UTC (since, last_success), retry_at a time or null
HEALTH_FAILING="(lambda x: (x['state'] in ('failing', 'backing-off'), x['cause'], x['status'], x['consecutive_failures'] >= 2, bool(re.fullmatch('$RFC3339', x['since'])), bool(re.fullmatch('$RFC3339', x['last_success'])), x['retry_at'] is None or bool(re.fullmatch('$RFC3339', x['retry_at'])) ))(h['health'])"
# warn lines of the default level for proxy P and cause C
warn_lines() { grep -E " warn +proxy $1: $2 failure, status " "$LOG" || true; }
metric() { "${CURL[@]}" --max-time 10 "$S/metrics" | grep -F "$1" | awk '{print $2}'; }
errno_text() {
    case "$1" in
    401 | 403) echo "Permission denied" ;;
    *) echo "Remote I/O error" ;;
    esac
}
cause_of() { case "$1" in 401 | 403) echo auth ;; *) echo http ;; esac; }

for p in "${STATUS_PROXIES[@]}" n404; do
    with_timeout 20 stat "$MNT/$p/f.bin" >/dev/null || die "stat $p/f.bin before any fault failed"
done
with_timeout 20 stat "$MNT/mvn/$JAR" >/dev/null || die "stat of the maven jar failed"
upstream_fault '[{"path": "^/a401/", "method": "GET", "fault": "status", "status": 401},
                 {"path": "^/a403/", "method": "GET", "fault": "status", "status": 403},
                 {"path": "^/r429/", "method": "GET", "fault": "status", "status": 429},
                 {"path": "^/e500/", "method": "GET", "fault": "status", "status": 500},
                 {"path": "^/n404/", "method": "GET", "fault": "status", "status": 404},
                 {"path": "^/hung/", "fault": "delay", "seconds": 120},
                 {"path": "^/v2/", "fault": "status", "status": 401},
                 {"path": "^/n404/rl\\.bin$", "fault": "delay", "seconds": 0,
                  "headers": {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"}},
                 {"path": "^/maven/.*\\.jar$", "method": "GET", "fault": "wrong_bytes", "offset": 100}]'

t_status() {
    local p st c e
    for p in "${STATUS_PROXIES[@]}"; do
        st="${p:1}"
        c="$(cause_of "$st")"
        expect_fail_with "$(errno_text "$st")" with_timeout 30 cat -- "$MNT/$p/f.bin"
        expect_fail_with "$(errno_text "$st")" with_timeout 30 cat -- "$MNT/$p/f.bin"
        assert_eq "$(warn_lines "$p" "$c" | wc -l)" 1 "warning lines for $p/$c after two failed reads"
        assert_contains "$(warn_lines "$p" "$c")" "status $st: ${UPSTREAM_URL}$p/f.bin" "the warning for $p"
        e="$(xattr error "$MNT/$p/f.bin")"
        [[ "$e" =~ ^$c\ $st\ $RFC3339$ ]] || die "user.upstreamfs.error of $p/f.bin: '$e' (want '$c $st <time>')"
        e="$(xattr health "$MNT/$p")"
        [[ "$e" == "failing: $c" || "$e" =~ ^backing-off\ until\ $RFC3339$ ]] ||
            die "user.upstreamfs.health of $p: '$e' (want 'failing: $c' or backing-off)"
        getfattr --absolute-names -d -- "$MNT/$p/f.bin" 2>/dev/null | grep -q '^user.upstreamfs.error=' ||
            die "listxattr of $p/f.bin does not list user.upstreamfs.error"
        # the running daemon's snapshot for the CLI
        e="$(health_field "$STATE/health/$p.json" "h['state'] in ('failing', 'backing-off'), h['cause'], h['status'], h['consecutive_failures'] >= 2, h['last_success'] is not None")"
        assert_eq "$e" "True $c $st True True" "state, cause, status, failures, last_success (the stat before) in STATEDIR/health/$p.json"
        # the CLI shows the daemon's health; the API the engine's
        upfs proxy show "$p" --json >"$T/show.json" || die "proxy show $p --json failed"
        e="$(health_field "$T/show.json" "$HEALTH_FAILING")"
        assert_eq "$e" "True $c $st True True True True" "health in proxy show $p --json"
        api_get "$S/api/v1/proxies/$p"
        assert_eq "$HTTP_STATUS" 200 "GET /api/v1/proxies/$p"
        printf '%s' "$BODY" >"$T/api.json"
        assert_eq "$(health_field "$T/api.json" "$HEALTH_FAILING")" "True $c $st True True True True" "health in /api/v1/proxies/$p"
        assert_contains "$(upfs proxy show "$p")" "health: " "proxy show $p"
        [[ "$(upfs proxy show "$p" | grep '^health: ')" =~ ^health:\ (failing|backing-off):\ $c\ $st$ ]] ||
            die "proxy show $p: '$(upfs proxy show "$p" | grep '^health: ')' (want 'failing: $c $st')"
    done
    [[ "$(upfs proxy list | awk '$1 == "e500" {print $5, $6, $7}')" =~ ^(failing|backing-off):\ http\ 500$ ]] ||
        die "the health column of proxy list for e500: '$(upfs proxy list | grep '^e500 ')'"
    upfs proxy list --json >"$T/list.json"
    assert_eq "$(health_field "$T/list.json" "[(x['key'], x['health']['state'], x['health']['cause']) for x in h if x['key'] in ('a401', 'n404')]")" \
        "('a401', 'failing', 'auth') ('n404', 'ok', None)" "health in proxy list --json"
    api_get "$S/api/v1/proxies"
    printf '%s' "$BODY" >"$T/api.json"
    assert_eq "$(health_field "$T/api.json" "[x['health']['cause'] for x in h if x['key'] == 'a403']")" auth "health in /api/v1/proxies"
}
check "401, 403, 429, 500 on GET: EACCES/EREMOTEIO, one warning per cause a minute, error and health xattrs" t_status

t_prefetch() {
    run_capture upfs prefetch --json e500/f.bin a401/f.bin refused/f.bin n404/f.bin "mvn/$JAR" st/f.bin
    assert_eq "$RC" 1 "the exit status of a prefetch with failed paths"
    printf '%s' "$OUT" >"$T/prefetch.json"
    assert_eq "$(health_field "$T/prefetch.json" "sorted((x['path'], x['ok'], x['cause'], x['status'], x['error']) for x in h)" | tr -d "'")" \
        "(a401/f.bin, False, auth, 401, Permission denied) (e500/f.bin, False, http, 500, Remote I/O error) (mvn/$JAR, False, digest, 200, Input/output error) (n404/f.bin, False, None, None, No such file or directory) (refused/f.bin, False, connect, None, Connection refused) (st/f.bin, True, None, None, None)" \
        "path, ok, cause, status, error of each path in prefetch --json"
    assert_eq "$(health_field "$T/prefetch.json" "[(x['bytes'], x['digest']) for x in h if x['ok']]" | tr -d "'")" \
        "(4096, sha256:$(sha256_of "$SRV/st/f.bin"))" "bytes and digest of the path that was fetched"
    run_capture upfs prefetch a403/f.bin
    assert_eq "$RC" 1 "the exit status of prefetch a403/f.bin"
    assert_contains "$ERR" "prefetch: a403/f.bin: Permission denied (cause auth 403)" "the failure line of prefetch"
}
check "prefetch names each failed path's cause and status (text and --json)" t_prefetch

t_stale() {
    with_timeout 20 cat -- "$MNT/st/f.bin" >"$T/st.out" || die "the first read of st/f.bin failed"
    assert_sha256 "$T/st.out" "$(sha256_of "$SRV/st/f.bin")"
    upstream_fault '{"path": "^/st/", "fault": "status", "status": 500}'
    sleep 2 # past the metadata TTL: the next open revalidates, and the remote fails
    with_timeout 20 cat -- "$MNT/st/f.bin" >"$T/st.out" || die "st/f.bin was not served stale"
    assert_sha256 "$T/st.out" "$(sha256_of "$SRV/st/f.bin")"
    assert_eq "$(xattr health "$MNT/st")" stale "user.upstreamfs.health of a proxy served stale"
    assert_eq "$(health_field "$STATE/health/st.json" "h['state'], h['cause'], h['status']")" "stale http 500" "STATEDIR/health/st.json"
}
check "a cached copy served while the remote fails: health stale (cause http 500)" t_stale

t_absent() {
    expect_fail_with "No such file" with_timeout 30 cat -- "$MNT/n404/f.bin"
    [[ -z "$(grep -F "proxy n404:" "$LOG" | grep -F " warn " || true)" ]] || die "a 404 was logged as a failure: $(grep -F "proxy n404:" "$LOG")"
    assert_eq "$(xattr health "$MNT/n404")" ok "health of a proxy whose file is absent"
    # the remote's own quota, as Docker Hub states it
    with_timeout 20 stat "$MNT/n404/rl.bin" >/dev/null || die "stat n404/rl.bin failed"
    assert_eq "$(metric 'upstreamfs_upstream_ratelimit_remaining{proxy="n404"}')" 76 "ratelimit_remaining of n404"
}
check "a 404 is absence: ENOENT, no warning, health ok; the remote's quota in /metrics" t_absent

t_transport() {
    local e
    expect_fail_with "Connection refused" with_timeout 30 cat -- "$MNT/refused/f.bin"
    assert_contains "$(warn_lines refused connect)" "status -: http://127.0.0.1:$DEAD_PORT/f.bin" "the connect warning"
    e="$(xattr error "$MNT/refused")"
    [[ "$e" =~ ^connect\ -\ $RFC3339$ ]] || die "user.upstreamfs.error of refused/: '$e'"
    elapsed_ms with_timeout 30 cat -- "$MNT/nodns/f.bin"
    ((RC != 0)) || die "a read through an unresolvable name succeeded"
    assert_contains "$ERR" "No route to host" "stderr of cat nodns/f.bin"
    ((MS < 5000)) || die "the unresolvable name took $MS ms to fail"
    assert_contains "$(warn_lines nodns dns)" "status -: http://upstream.invalid/f.bin" "the dns warning"
    [[ "$(xattr error "$MNT/nodns")" =~ ^dns\ -\ $RFC3339$ ]] || die "user.upstreamfs.error of nodns/: '$(xattr error "$MNT/nodns")'"
    expect_fail_with "Connection timed out" with_timeout 60 cat -- "$MNT/hung/f.bin"
    assert_contains "$(warn_lines hung timeout)" "status -: ${UPSTREAM_URL}hung/f.bin" "the timeout warning"
    [[ "$(xattr error "$MNT/hung")" =~ ^timeout\ -\ $RFC3339$ ]] || die "user.upstreamfs.error of hung/: '$(xattr error "$MNT/hung")'"
}
check "refused port, .invalid name, hung remote: ECONNREFUSED/EHOSTUNREACH/ETIMEDOUT, causes connect/dns/timeout" t_transport

t_digest() {
    expect_fail_with "Input/output error" with_timeout 30 cat -- "$MNT/mvn/$JAR"
    assert_contains "$(warn_lines mvn digest)" "status 200: ${UPSTREAM_URL}maven/$JAR" "the digest warning"
    [[ "$(xattr error "$MNT/mvn/$JAR")" =~ ^digest\ 200\ $RFC3339$ ]] || die "user.upstreamfs.error of the jar: '$(xattr error "$MNT/mvn/$JAR")'"
}
check "wrong bytes: EIO, cause digest" t_digest

t_shim() {
    local p st c code
    for p in "${STATUS_PROXIES[@]}"; do
        st="${p:1}"
        c="$(cause_of "$st")"
        http_get "$S/$p/f.bin"
        assert_eq "$HTTP_STATUS" 502 "shim status for $p (remote $st)"
        assert_contains "$BODY" "proxy $p, cause $c, upstream status $st" "shim body for $p"
    done
    http_get "$S/refused/f.bin"
    assert_eq "$HTTP_STATUS" 502 "shim status for refused"
    assert_contains "$BODY" "proxy refused, cause connect, upstream status -" "shim body for refused"
    http_get "$S/hung/f.bin"
    [[ "$HTTP_STATUS" == 504 || "$HTTP_STATUS" == 502 ]] || die "shim status for hung: $HTTP_STATUS"
    assert_contains "$BODY" "proxy hung, cause timeout" "shim body for hung"
    for p in a401 a403; do
        code="$(metric "upstreamfs_upstream_errors_total{proxy=\"$p\",cause=\"auth\"}")"
        ((code >= 2)) || die "errors_total of $p/auth: '$code'"
    done
    code="$(metric "upstreamfs_upstream_errors_total{proxy=\"e500\",cause=\"http\"}")"
    ((code >= 2)) || die "errors_total of e500/http: '$code'"
    code="$(metric "upstreamfs_upstream_errors_total{proxy=\"nodns\",cause=\"dns\"}")"
    ((code >= 1)) || die "errors_total of nodns/dns: '$code'"
    assert_eq "$(metric 'upstreamfs_proxy_healthy{proxy="a401"}')" 0 "proxy_healthy of a401"
    assert_eq "$(metric 'upstreamfs_proxy_healthy{proxy="n404"}')" 1 "proxy_healthy of n404"
    code="$(metric 'upstreamfs_upstream_requests_total{proxy="a401",method="HEAD"}')"
    ((code >= 1)) || die "requests_total of a401/HEAD: '$code'"
    # a registry that refuses: the registry error JSON names it, and the client never sees a 401
    http_get "$S/v2/dk/test/hello/manifests/v1"
    assert_eq "$HTTP_STATUS" 502 "/v2 status for a registry answering 401"
    assert_contains "$BODY" '"code":"UNAVAILABLE"' "/v2 error code"
    assert_contains "$BODY" "proxy dk, cause auth, upstream status 401" "/v2 error message"
}
check "shim: 502/504 naming proxy, cause and status (401/403 never reach the client); /metrics by proxy and cause" t_shim

_reads_ok() {
    local p
    for p in "${STATUS_PROXIES[@]}"; do cat -- "$MNT/$p/f.bin" >/dev/null 2>&1 || return 1; done
}
t_recovered() {
    local p
    upstream_clear_faults
    wait_until 40 _reads_ok || die "the files do not read after the faults were cleared"
    for p in "${STATUS_PROXIES[@]}"; do
        assert_contains "$(grep -F "proxy $p: recovered" "$LOG" || true)" "recovered" "the recovery line of $p"
        assert_eq "$(xattr health "$MNT/$p")" ok "user.upstreamfs.health of $p after recovery"
        run_capture getfattr --absolute-names --only-values -n user.upstreamfs.error -- "$MNT/$p/f.bin"
        ((RC != 0)) || die "user.upstreamfs.error of $p/f.bin is still '$OUT' after a good read"
        assert_eq "$(metric "upstreamfs_proxy_healthy{proxy=\"$p\"}")" 1 "proxy_healthy of $p after recovery"
        assert_eq "$(health_field "$STATE/health/$p.json" "h['state'], h['consecutive_failures']")" "ok 0" "state in STATEDIR/health/$p.json"
        upfs proxy show "$p" --json >"$T/show.json"
        assert_eq "$(health_field "$T/show.json" "h['health']['state'], h['health']['consecutive_failures'], h['health']['cause']")" \
            "ok 0 $(cause_of "${p:1}")" "health in proxy show $p --json after recovery (the last cause stays)"
        api_get "$S/api/v1/proxies/$p"
        printf '%s' "$BODY" >"$T/api.json"
        assert_eq "$(health_field "$T/api.json" "h['health']['state'], h['health']['consecutive_failures']")" "ok 0" "health in /api/v1/proxies/$p after recovery"
    done
}
check "the faults cleared: reads work, recovered logged, health ok in xattr, /metrics and the state dir" t_recovered

t_stopped() {
    # refused/ still fails (connect): its file says so while the mount runs
    assert_contains "$(upfs proxy list | awk '$1 == "refused" {print $5, $6}')" ": connect" "the health column of refused"
    upfs_unmount "$MNT"
    # the file stays behind, but no daemon runs: the CLI does not show it as current
    [[ "$(health_field "$STATE/health/refused.json" "[h['cause']]")" == connect ]] ||
        die "STATEDIR/health/refused.json is not the one left behind (this test needs it): $(cat "$STATE/health/refused.json" 2>&1)"
    upfs proxy show refused --json >"$T/show.json"
    assert_eq "$(health_field "$T/show.json" "[h['health']]")" None "health in proxy show --json with no daemon running"
    assert_eq "$(upfs proxy show refused | grep '^health')" "health: unknown" "proxy show with no daemon running"
    assert_eq "$(upfs proxy list | awk '$1 == "refused" {print $5}')" unknown "the health column with no daemon running"
    upfs proxy delete refused >/dev/null
    [[ ! -e "$STATE/health/refused.json" ]] || die "proxy delete left STATEDIR/health/refused.json"
}
check "no daemon running: health unknown (null), not the file left behind; proxy delete removes the file" t_stopped

finish
