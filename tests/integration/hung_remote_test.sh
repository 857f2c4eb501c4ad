#!/bin/bash
# tests/integration/hung_remote_test.sh -- failing is not empty, and bounded waits
# (docs/troubleshooting.md, "Listings of a failing remote" and "Deadlines"):
#   * ls of a directory never listed fails with the cause's errno while the remote refuses
#     connections (ECONNREFUSED) or hangs (ETIMEDOUT), in the mount and in the shim's directory
#     page (an error status naming the cause, not an empty page);
#   * a directory listed before is served from its last listing while the remote fails
#     (exit 0, same names) and the proxy's health says stale;
#   * a registry whose first upstream is refused lists the second's names, and its top
#     directory's user.upstreamfs.health names the failing upstream;
#   * bounded waits: with index.yaml cached and a 1 s TTL, a helm remote that accepts and never
#     answers costs cat of index.yaml (mount and shim) under 2 s, serving the cached copy; once the
#     remote answers again the copy is updated; with --metadata-timeout 1s an uncached file and
#     a never-listed directory on the hung remote fail with ETIMEDOUT in about 1 s;
#   * --connect-timeout / --metadata-timeout refuse 0, abc and values over their maximum, naming
#     the field.
#
#     bash tests/integration/hung_remote_test.sh build/upstreamfs
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/fault/fault_common.sh" "$@"

SRV="$T/srv"
MNT="$T/mnt"
fixture_bytes a 4096 "$SRV/tree/d1/a.bin"
fixture_bytes b 4096 "$SRV/tree/d2/b.bin"
fixture_bytes c 4096 "$SRV/tree/d3/c.bin"
fixture_bytes s 4096 "$SRV/second/only-second.bin"
mkdir -p "$SRV/helm" "$SRV/slow/sub"
cat >"$SRV/helm/index.yaml" <<'YAML'
apiVersion: v1
entries:
  alpha:
  - name: alpha
    version: 0.1.0
    urls:
    - charts/alpha-0.1.0.tgz
YAML
fixture_bytes x 4096 "$SRV/slow/x.bin"
fixture_bytes y 4096 "$SRV/slow/sub/y.bin"
upstream_start "$SRV" --quiet

DEAD_PORT="$(free_port)"
upfs proxy create tree --type generic --url "${UPSTREAM_URL}tree/" --metadata-ttl 1 >/dev/null
upfs proxy create refused --type generic --url "http://127.0.0.1:$DEAD_PORT/" >/dev/null
upfs proxy create second --type generic --url "${UPSTREAM_URL}second/" >/dev/null
upfs proxy create mut --type generic --url "${UPSTREAM_URL}tree/" --metadata-ttl 1 >/dev/null
upfs proxy create charts --type helm --url "${UPSTREAM_URL}helm/" --metadata-ttl 1 \
    --metadata-timeout 3s >/dev/null
upfs proxy create slow --type generic --url "${UPSTREAM_URL}slow/" --metadata-timeout 1s \
    --connect-timeout 500ms >/dev/null
upfs registry create both --type generic --upstream refused --upstream second >/dev/null
PORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$PORT"
wait_for_port "$PORT" 10 || die "the mount's shim is not listening on $PORT"
S="http://127.0.0.1:$PORT"

t_refused_not_empty() {
    expect_fail_with "Connection refused" with_timeout 30 ls -- "$MNT/refused"
    http_get "$S/refused/"
    assert_eq "$HTTP_STATUS" 502 "shim status of the refused proxy's directory page"
    assert_contains "$BODY" "proxy refused, cause connect" "shim body of the refused directory page"
}
check "ls of a never-listed directory on a refused port fails with ECONNREFUSED (mount and shim)" t_refused_not_empty

t_listed_stale() {
    assert_eq "$(ls -- "$MNT/tree/d1")" a.bin "d1 listed while the remote answers"
    upstream_fault '[{"path": "^/tree/", "fault": "status", "status": 500}]'
    sleep 1.5 # past the 1 s TTL
    run_capture with_timeout 20 ls -- "$MNT/tree/d1"
    ((RC == 0)) || die "ls of a listed-before directory failed while the remote answers 500: $ERR"
    assert_eq "$OUT" a.bin "the last listing of d1, served stale"
    _stale() { [[ "$(xattr health "$MNT/tree")" == stale ]]; }
    wait_until 10 _stale || die "health of tree after a stale listing: '$(xattr health "$MNT/tree")'"
    expect_fail_with "Remote I/O error" with_timeout 30 ls -- "$MNT/tree/d2"
    upstream_clear_faults
}
check "a listed-before directory is served stale (health stale); a never-listed one fails" t_listed_stale

t_registry() {
    run_capture with_timeout 30 ls -- "$MNT/both"
    ((RC == 0)) || die "ls of the registry failed: $ERR"
    assert_eq "$OUT" only-second.bin "the registry lists the second upstream's names"
    assert_eq "$(xattr health "$MNT/both")" "failing: upstream refused: connect" \
        "user.upstreamfs.health of the registry"
}
check "a registry with a refused first upstream lists the second's names; its health names the first" t_registry

ms_now() { date +%s%N | cut -c1-13; }

t_stale_within_2s() {
    local before t0 t1
    before="$(with_timeout 30 cat -- "$MNT/charts/index.yaml")" || die "cat index.yaml failed"
    assert_contains "$before" alpha "index.yaml through the mount"
    http_get "$S/charts/index.yaml"
    assert_eq "$HTTP_STATUS" 200 "shim status of index.yaml"
    upstream_fault '[{"path": "^/helm/", "fault": "delay", "seconds": 120}]'
    sleep 1.5 # past the 1 s TTL
    t0="$(ms_now)"
    run_capture with_timeout 30 cat -- "$MNT/charts/index.yaml"
    t1="$(ms_now)"
    ((RC == 0)) || die "cat index.yaml on the hung remote failed: $ERR"
    assert_eq "$OUT" "$before" "the cached index.yaml served while the remote hangs"
    (((t1 - t0) < 2000)) || die "cat index.yaml took $((t1 - t0)) ms on the hung remote (want < 2000)"
    log "cat index.yaml on the hung remote: $((t1 - t0)) ms"
    sleep 1.5
    t0="$(ms_now)"
    http_get "$S/charts/index.yaml"
    t1="$(ms_now)"
    assert_eq "$HTTP_STATUS" 200 "shim status of index.yaml while the remote hangs"
    (((t1 - t0) < 2000)) || die "the shim's index.yaml took $((t1 - t0)) ms on the hung remote"
    log "shim index.yaml on the hung remote: $((t1 - t0)) ms"
    cat >>"$SRV/helm/index.yaml" <<'YAML'
  beta:
  - name: beta
    version: 0.2.0
    urls:
    - charts/beta-0.2.0.tgz
YAML
    upstream_clear_faults
    _updated() { [[ "$(cat -- "$MNT/charts/index.yaml" 2>/dev/null)" == *beta* ]]; }
    wait_until 30 _updated || die "index.yaml was not updated after the remote recovered"
    _shim_updated() { http_get "$S/charts/index.yaml" && [[ "$BODY" == *beta* ]]; }
    wait_until 30 _shim_updated || die "the shim's index.yaml was not updated after the remote recovered"
}
check "a hung remote: a cached index.yaml past its TTL is served in under 2 s (mount, shim), updated on recovery" t_stale_within_2s

t_file_stale_within_2s() {
    local t0 t1 want
    want="$(sha256sum <"$SRV/tree/d3/c.bin" | cut -d" " -f1)"
    with_timeout 30 cat -- "$MNT/mut/d3/c.bin" >"$T/c1" || die "cat mut/d3/c.bin failed"
    assert_sha256 "$T/c1" "$want"
    upstream_fault '[{"path": "^/tree/", "fault": "delay", "seconds": 120}]'
    sleep 1.5 # past the 1 s TTL
    t0="$(ms_now)"
    with_timeout 30 cat -- "$MNT/mut/d3/c.bin" >"$T/c2" || die "cat of the cached file on the hung remote failed"
    t1="$(ms_now)"
    assert_sha256 "$T/c2" "$want"
    (((t1 - t0) < 2000)) || die "cat of a cached file past its TTL took $((t1 - t0)) ms on the hung remote"
    log "cached file past its TTL on the hung remote: $((t1 - t0)) ms"
    assert_eq "$(xattr stale "$MNT/mut/d3/c.bin")" 1 "user.upstreamfs.stale of the copy served"
    upstream_clear_faults
}
check "a hung remote: a cached file past its TTL is served stale in under 2 s" t_file_stale_within_2s

t_metadata_timeout() {
    local t0 t1
    upstream_fault '[{"path": "^/slow/", "fault": "delay", "seconds": 120}]'
    t0="$(ms_now)"
    expect_fail_with "Connection timed out" with_timeout 30 cat -- "$MNT/slow/x.bin"
    t1="$(ms_now)"
    (((t1 - t0) < 2500)) || die "an uncached file on the hung remote took $((t1 - t0)) ms to fail (--metadata-timeout 1s)"
    log "uncached file on the hung remote failed in $((t1 - t0)) ms"
    expect_fail_with "Connection timed out" with_timeout 30 ls -- "$MNT/slow/sub"
    upstream_clear_faults
}
check "--metadata-timeout 1s: an uncached file and a never-listed directory on a hung remote fail with ETIMEDOUT in ~1 s" t_metadata_timeout

t_bad_deadlines() {
    local v
    for v in 0 abc 2m 50; do
        run_capture upfs proxy create bad --type generic --url "${UPSTREAM_URL}x/" --connect-timeout "$v"
        ((RC != 0)) || die "--connect-timeout $v was accepted"
        assert_contains "$ERR" "connect_timeout" "the error of --connect-timeout $v"
    done
    run_capture upfs proxy create bad --type generic --url "${UPSTREAM_URL}x/" --metadata-timeout 10m
    ((RC != 0)) || die "--metadata-timeout 10m was accepted"
    assert_contains "$ERR" "metadata_timeout" "the error of --metadata-timeout 10m"
    run_capture upfs proxy show slow --json
    assert_contains "$OUT" '"metadata_timeout": 1000' "metadata_timeout in proxy show --json"
    assert_contains "$OUT" '"connect_timeout": 500' "connect_timeout in proxy show --json"
}
check "--connect-timeout/--metadata-timeout refuse 0, abc, 50 (ms) and over the maximum, naming the field" t_bad_deadlines

finish
