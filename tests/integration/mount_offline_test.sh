#!/bin/bash
# tests/integration/mount_offline_test.sh -- freshness, stale-if-error, back-off and recovery.
#
#     bash tests/integration/mount_offline_test.sh build/upstreamfs
#
# Asserts (generic proxy "gen" on nginx with --metadata-ttl 1, proxy "flt" on upstream.py):
#   * a 404 is remembered: a second cat of a missing file (also after the metadata TTL) sends
#     no new request;
#   * with nginx stopped: cached files read with the same sha256; ls, stat and df of known paths
#     answer within 1 s; an uncached (but listed) file fails with ECONNREFUSED (cause connect,
#     docs/troubleshooting.md) within 30 s; after the
#     metadata TTL a mutable file still reads and shows user.upstreamfs.stale=1;
#   * nginx back (same port): within 35 s a read of the uncached file succeeds, and the stale
#     file revalidates to user.upstreamfs.stale=0;
#   * a 5xx is never remembered as absence: a 503 on the GET gives EREMOTEIO, then (after the
#     back-off) the file reads; a 503 at lookup time gives EREMOTEIO, not ENOENT, and the name then
#     resolves and reads;
#   * a remote that accepts connections but never answers (upstream.py "delay" 60 s): an
#     uncached file fails with ETIMEDOUT within 30 s; with the metadata past its TTL, ls, stat and df
#     of known paths still answer within 1 s (ls and df never wait on the network: docs/RELIABILITY.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

W="$T/www"
MNT="$T/mnt"
fixtures_generic "$W"
nginx_start "$W"
upstream_start "$W" --quiet

upfs proxy create gen --type generic --url "$NGINX_URL" --metadata-ttl 1 >/dev/null
upfs proxy create flt --type generic --url "$UPSTREAM_URL" >/dev/null
upfs_mount "$MNT"
G="$MNT/gen"
F="$MNT/flt"

# elapsed_ms CMD...: run CMD (never fails); sets RC, OUT, ERR and MS (wall time in ms)
elapsed_ms() {
    local t0
    t0="$(_upfs_now_ms)"
    run_capture "$@"
    MS=$(($(_upfs_now_ms) - t0))
}

# ---- warm the cache ------------------------------------------------------------------------
t_warm() {
    local f
    with_timeout 10 ls "$G" >/dev/null || die "ls $G failed"
    # listed once, so it is served from its last listing when the remote is down (a directory
    # never listed fails with the cause: docs/troubleshooting.md, "Listings of a failing remote")
    with_timeout 10 ls "$G/a/b/c" >/dev/null || die "ls $G/a/b/c failed"
    for f in hello.txt 4k.bin 10m.bin a/b/c/deep.txt; do
        with_timeout 30 cat -- "$G/$f" >"$T/read.tmp" || die "cat $f failed"
        assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" "$f")"
    done
    nginx_expect_count 1 GET '^/hello\.txt$'
    nginx_expect_count 1 GET '^/10m\.bin$'
}
check --setup "reading some files while the remote is up" t_warm

# ---- a 404 is remembered -------------------------------------------------------------------
t_negative() {
    local n1 n2
    expect_fail_with "No such file or directory" with_timeout 20 cat "$G/missing.txt"
    n1="$(nginx_count '*' '^/missing\.txt/?$')"
    ((n1 >= 1)) || die "the first lookup of missing.txt sent no request"
    expect_fail_with "No such file or directory" with_timeout 20 cat "$G/missing.txt"
    # past the metadata TTL (1 s) and any short kernel entry timeout, within the negative TTL
    sleep 1.5
    expect_fail_with "No such file or directory" with_timeout 20 cat "$G/missing.txt"
    expect_fail_with "No such file or directory" stat "$G/missing.txt"
    n2="$(nginx_count '*' '^/missing\.txt/?$')"
    assert_eq "$n2" "$n1" "requests for missing.txt after it was found missing once"
}
check "a 404 is remembered: no new request within the negative TTL" t_negative

# ---- the remote goes away ------------------------------------------------------------------
nginx_stop
log "nginx stopped"

t_cached_offline() {
    local f
    for f in hello.txt 4k.bin 10m.bin a/b/c/deep.txt; do
        with_timeout 10 cat -- "$G/$f" >"$T/read.tmp" || die "cat $f with the remote down failed"
        assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" "$f")"
    done
}
check "cached files read with the same sha256 while the remote is down" t_cached_offline

t_fast_metadata() {
    local -a cmds=("ls $G" "ls -l $G" "ls $G/a/b/c" "stat $G/hello.txt" "stat $G/10m.bin"
        "stat $G/one.bin" "stat $G/a/b/c/deep.txt" "df $MNT" "stat -f $G")
    local c
    # known paths whose metadata is past its TTL, too (--metadata-ttl 1)
    sleep 1.2
    local bad=()
    for c in "${cmds[@]}"; do
        # shellcheck disable=SC2086
        elapsed_ms with_timeout 5 $c
        ((RC == 0)) || bad+=("'$c' failed (status $RC): $ERR")
        ((MS < 1000)) || bad+=("'$c' took $MS ms")
    done
    ((${#bad[@]} == 0)) || die "with the remote down (must answer within 1 s): $(printf '%s; ' "${bad[@]}")"
    assert_eq "$(stat -c %s "$G/10m.bin")" 10485760 "size of 10m.bin with the remote down"
    assert_eq "$(stat -c %s "$G/one.bin")" 1 "size of the uncached one.bin with the remote down"
}
check "ls, stat and df of known paths answer within 1 s with the remote down" t_fast_metadata

t_uncached_offline() {
    elapsed_ms with_timeout 35 cat "$G/one.bin"
    ((RC != 124)) || die "cat of an uncached file with the remote down hung for 35 s"
    ((RC != 0)) || die "cat of an uncached file with the remote down succeeded: '${OUT}'"
    ((MS <= 30000)) || die "cat of an uncached file took $MS ms to fail (limit 30 s)"
    assert_contains "$ERR" "Connection refused" "stderr of cat one.bin with the remote down"
    log "uncached one.bin failed after $MS ms: $ERR"
}
check "an uncached file fails with ECONNREFUSED within 30 s while the remote is down" t_uncached_offline

t_stale() {
    sleep 1.2 # > --metadata-ttl 1
    with_timeout 10 cat "$G/hello.txt" >"$T/read.tmp" || die "cat hello.txt past its TTL, remote down, failed"
    assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" hello.txt)"
    assert_eq "$(xattr stale "$G/hello.txt")" 1 "user.upstreamfs.stale of hello.txt served past its TTL"
    assert_eq "$(xattr cached "$G/hello.txt")" complete "user.upstreamfs.cached of the stale hello.txt"
}
check --setup "past the metadata TTL a mutable file still reads, marked user.upstreamfs.stale=1" t_stale

# ---- the remote comes back -----------------------------------------------------------------
nginx_restart
RESTARTED_MS="$(_upfs_now_ms)"

_recovered() {
    cat "$G/one.bin" >"$T/one.tmp" 2>/dev/null || return 1
    cat "$G/hello.txt" >/dev/null 2>&1 || return 1
    [[ "$(xattr stale "$G/hello.txt")" == 0 ]]
}
t_recovery() {
    wait_until 35 _recovered || die "35 s after the remote came back: one.bin still fails or hello.txt is still stale (stale=$(xattr stale "$G/hello.txt" || true))"
    log "recovered $(($(_upfs_now_ms) - RESTARTED_MS)) ms after the remote came back"
    assert_sha256 "$T/one.tmp" "$(fixture_sha256 "$W" one.bin)"
    with_timeout 10 cat "$G/hello.txt" >"$T/read.tmp" || die "cat hello.txt after recovery failed"
    assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" hello.txt)"
    nginx_expect_count 1 GET '^/one\.bin$'
    # hello.txt is revalidated (conditional request or a new GET), never more than needed
    (($(nginx_count '*' '^/hello\.txt$') >= 2)) || die "hello.txt was never revalidated after the remote came back"
}
check "within 35 s of the remote coming back, reads succeed and stale goes back to 0" t_recovery

# ---- a 5xx is never remembered as absence (fault server) -----------------------------------
t_5xx_get() {
    upstream_fault '{"path": "^/4k\\.bin$", "method": "GET", "fault": "status", "status": 503, "times": 1}'
    expect_fail_with "Remote I/O error" with_timeout 30 cat "$F/4k.bin"
    assert_eq "$(upstream_count GET /4k.bin)" 1 "GETs of 4k.bin after the 503"
    # the name still exists
    expect_ok with_timeout 10 stat "$F/4k.bin"
    sleep 1.2 # any back-off (starts at 1 s) is over
    with_timeout 30 cat "$F/4k.bin" >"$T/read.tmp" || die "second cat of 4k.bin (after a 503) failed"
    assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" 4k.bin)"
    assert_eq "$(upstream_count GET /4k.bin)" 2 "GETs of 4k.bin (503, then 200)"
}
check "503 on GET: first read EREMOTEIO, second read (after the back-off) returns the file" t_5xx_get

t_5xx_lookup() {
    upstream_fault '{"path": "^/hello\\.txt$", "fault": "status", "status": 503, "times": 1}'
    expect_fail_with "Remote I/O error" with_timeout 30 cat "$F/hello.txt"
    if [[ "$ERR" == *"No such file"* ]]; then die "a 503 at lookup was reported as ENOENT"; fi
    sleep 1.2
    with_timeout 30 cat "$F/hello.txt" >"$T/read.tmp" || die "cat hello.txt after a 503 at lookup failed: the 503 was remembered"
    assert_sha256 "$T/read.tmp" "$(fixture_sha256 "$W" hello.txt)"
    assert_eq "$(upstream_count GET /hello.txt)" 1 "GETs of hello.txt that returned content"
}
check "503 at lookup: EREMOTEIO (not ENOENT), and the name resolves afterwards" t_5xx_lookup

# ---- a remote that accepts connections but never answers (deadlines, not hangs) ------------
t_hung_download() {
    with_timeout 10 ls "$F" >/dev/null || die "ls $F failed"
    upstream_fault '{"path": "^/one\\.bin$", "method": "GET", "fault": "delay", "seconds": 60}'
    elapsed_ms with_timeout 45 cat "$F/one.bin"
    ((RC != 124)) || die "cat of a file whose GET never answers hung for 45 s"
    ((RC != 0)) || die "cat of a file whose GET never answers succeeded: '${OUT:0:100}'"
    ((MS <= 30000)) || die "cat of a file whose GET never answers took $MS ms to fail (limit 30 s)"
    assert_contains "$ERR" "Connection timed out" "stderr of cat one.bin (GET never answers)"
    log "hung GET of one.bin failed after $MS ms: $ERR"
}
check "a download that never answers fails with ETIMEDOUT within 30 s" t_hung_download

t_hung_metadata() {
    local c
    upfs proxy update flt --metadata-ttl 1 >/dev/null
    sleep 2.5 # the change takes effect within 2 s; the metadata is then past its TTL
    upstream_fault '{"fault": "delay", "seconds": 60}'
    local -a cmds=("ls $F" "ls -l $F" "stat $F/4k.bin" "stat $F/hello.txt" "stat $F/a" "df $MNT")
    local bad=()
    for c in "${cmds[@]}"; do
        # shellcheck disable=SC2086
        elapsed_ms with_timeout 15 $c
        log "'$c': status $RC in $MS ms"
        ((RC == 0)) || bad+=("'$c' failed (status $RC): $ERR")
        ((MS < 1000)) || bad+=("'$c' took $MS ms")
    done
    upstream_clear_faults
    ((${#bad[@]} == 0)) || die "against a hanging remote (ls/stat/df must not wait on the network): $(printf '%s; ' "${bad[@]}")"
}
check "ls, stat and df of known paths answer within 1 s when the remote hangs" t_hung_metadata

finish
