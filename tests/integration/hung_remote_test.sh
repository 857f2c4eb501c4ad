#!/bin/bash
# tests/integration/hung_remote_test.sh -- failing is not empty, and bounded waits
# (docs/troubleshooting.md, "Listings of a failing remote" and "Deadlines"):
#   * ls of a directory never listed fails with the cause's errno while the remote refuses
#     connections (ECONNREFUSED) or hangs (ETIMEDOUT), in the mount and in the shim's directory
#     page (an error status naming the cause, not an empty page);
#   * a directory listed before is served from its last listing while the remote fails
#     (exit 0, same names) and the proxy's health says stale;
#   * a registry whose first upstream is refused lists the second's names, and its top
#     directory's user.upstreamfs.health names the failing upstream.
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
upstream_start "$SRV" --quiet

DEAD_PORT="$(free_port)"
upfs proxy create tree --type generic --url "${UPSTREAM_URL}tree/" --metadata-ttl 1 >/dev/null
upfs proxy create refused --type generic --url "http://127.0.0.1:$DEAD_PORT/" >/dev/null
upfs proxy create second --type generic --url "${UPSTREAM_URL}second/" >/dev/null
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

finish
