#!/bin/bash
# tests/integration/policy_image_test.sh -- package rules on a docker proxy (docs/policy.md):
# --allow 'test/*' --deny 'test/hello:v2*', against docker-registry behind the counting
# docker/regproxy.py on 127.0.0.1.
#
#     bash tests/integration/policy_image_test.sh build/upstreamfs
#
# Asserts:
#   an allowed repository and tag read as before: test/hello/v1's index.json names the pushed
#     manifest;
#   a denied tag (test/hello/v2s2) fails with EACCES (Permission denied), user.upstreamfs.error
#     names policy, the log names the rule, and the registry was never asked for its manifest;
#   a repository no --allow matches (other/thing) is not listed in the proxy's directory (the
#     catalog), fails with EACCES and costs the registry nothing;
#   the shim's /v2 API answers 403 (cause policy) for the denied tag's manifest;
#   the tag lists leave the denied tag out: ls of test/hello and the shim's tags/list name v1 only;
#   a docker registry over the proxy with --deny 'test/hello:v1' lists no tag of test/hello (ls,
#   tags/list) and refuses v1 with EACCES, while the proxy still lists v1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
docker_need_tools

OCI="$T/oci"
MNT="$T/mnt"
D_V1="$(mkimage "$OCI" v1 --text one)"
mkimage "$OCI" v2 --text two >/dev/null
registry_start a open
REG="127.0.0.1:$REG_PORT_a"
push "oci:$OCI:v1" "$REG/test/hello:v1"
push "oci:$OCI:v2" "$REG/test/hello:v2s2"
push "oci:$OCI:v1" "$REG/other/thing:1"
regproxy_start pa "http://$REG"

upfs proxy create hub --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pa/" \
    --allow 'test/*' --deny 'test/hello:v2*' >/dev/null
SPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$SPORT"
wait_for_port "$SPORT" 10 || die "the shim is not listening"
H="$MNT/hub"

t_allowed() {
    local idx
    idx="$(cat "$H/test/hello/v1/index.json")"
    assert_contains "$idx" "$D_V1" "index.json of test/hello:v1"
}
check "an allowed repository and tag read as before" t_allowed

t_denied_tag() {
    expect_fail_with "Permission denied" ls "$H/test/hello/v2s2"
    assert_contains "$(xattr error "$H/test/hello")" "policy" "user.upstreamfs.error"
    assert_contains "$(cat "$STATE/upstreamfs.log")" \
        "docker proxy hub: test/hello/v2s2 refused by --deny test/hello:v2*" "the log"
    assert_eq "$(regproxy_sum pa '(GET|HEAD)' '/v2s2$')" 0 "requests for the denied tag"
    http_get "http://127.0.0.1:$SPORT/v2/hub/test/hello/manifests/v2s2" \
        -H 'Accept: application/vnd.oci.image.index.v1+json'
    assert_eq "$HTTP_STATUS" 403 "the shim's /v2 answer for the denied tag"
    assert_contains "$BODY" "policy" "the shim's /v2 error body"
    assert_eq "$(regproxy_sum pa '(GET|HEAD)' '/v2s2$')" 0 "requests for the denied tag"
}
check "a denied tag is refused with cause policy, never asked for" t_denied_tag

t_tag_lists() {
    assert_eq "$(ls "$H/test/hello")" v1 "ls of test/hello (its tags)"
    http_get "http://127.0.0.1:$SPORT/v2/hub/test/hello/tags/list"
    assert_eq "$HTTP_STATUS" 200 "GET /v2/hub/test/hello/tags/list"
    assert_eq "$(json_field 'j["tags"]')" "['v1']" "the shim's tags/list"
    assert_eq "$(regproxy_sum pa '(GET|HEAD)' '/v2s2$')" 0 "requests for the denied tag"
}
check "the tag lists (the mount's tag directories, the shim's tags/list) leave a denied tag out" t_tag_lists

hubsafe_up() { [[ -d "$MNT/hubsafe/test" ]]; }
t_registry_rules() {
    upfs registry create hubsafe --type docker --upstream hub --deny 'test/hello:v1' >/dev/null
    wait_until 10 hubsafe_up || die "the registry hubsafe is not in the mount"
    assert_eq "$(ls "$MNT/hubsafe/test/hello")" "" "ls of hubsafe/test/hello (v1 denied by the registry)"
    http_get "http://127.0.0.1:$SPORT/v2/hubsafe/test/hello/tags/list"
    assert_eq "$(json_field 'j.get("tags") or []')" "[]" "the registry's tags/list"
    expect_fail_with "Permission denied" cat "$MNT/hubsafe/test/hello/v1/index.json"
    assert_eq "$(ls "$H/test/hello")" v1 "the proxy's own tag list"
}
check "a registry's --deny holds for what its upstream serves (tag lists and reads)" t_registry_rules

t_not_allowed() {
    local top
    top="$(ls "$H")"
    assert_contains "$top" "test" "ls of the proxy (the catalog)"
    [[ "$top" != *other* ]] || die "ls of the proxy lists a namespace no --allow matches: $top"
    expect_fail_with "Permission denied" ls "$H/other/thing"
    assert_eq "$(regproxy_sum pa '(GET|HEAD)' '/other/')" 0 "requests for other/thing"
}
check "a repository no --allow matches is refused, never asked for" t_not_allowed

finish
