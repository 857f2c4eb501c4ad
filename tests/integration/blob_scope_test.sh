#!/bin/bash
# tests/integration/blob_scope_test.sh -- blobs and files do not cross proxies by digest
# (issue 12 finding 4; docs/SECURITY.md "Blob and file scoping").
#
#     bash tests/integration/blob_scope_test.sh build/upstreamfs      (as root; /dev/fuse)
#
# Upstreams: docker-registry A (htpasswd) holds private/img:1 (a layer of secret text);
# docker-registry B (open, reached through docker/regproxy.py, which counts requests) holds
# other/img:1, a manifest that lists A's layer digest but whose blob was removed from B's
# storage, and pub/x:1, an image of its own. Proxies: priv (A with credentials), b (B);
# registry reg=[b, priv]. Asserts:
#   - after a pull of A's image through priv (the bytes are in the store), b's manifest that
#     lists A's layer does not make b serve it: /v2/b/other/img/blobs/<layer> (GET and HEAD)
#     is 404 BLOB_UNKNOWN with none of A's bytes, B saw the request for it, and
#     MNT/b/other/img/1/blobs/sha256/<layer> cannot be read;
#   - a blob B has, asked by digest with no manifest fetched before (HEAD, then GET), is 200
#     with B's bytes (sha256) and the HEAD moved no body (one blob GET upstream in all);
#   - the registry reg serves A's layer for private/img through priv, not for other/img;
#   - a blob body longer than the manifest says (B's proxy pads it, without a Content-Length) is
#     cut where the manifest's size ends: the read fails, far fewer bytes than the padded body
#     left B, nothing is stored, and the honest body reads right afterwards;
#   - helm: proxy hb's index.yaml names chart ha's digest with a URL on hb's own server that
#     holds other bytes (or none): hb does not serve ha's chart.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
source "$(dirname "${BASH_SOURCE[0]}")/shim/v2.sh"
docker_need_tools

OCI="$T/oci"
MNT="$T/mnt"
D_SECRET="$(mkimage "$OCI" secret --text secret-only-bytes --big 20000)"
D_PUB="$(mkimage "$OCI" pub --text public-bytes --big 30000)"
LAYER="$(layer_of "$OCI" "$D_SECRET" 1)"
PUB_LAYER="$(layer_of "$OCI" "$D_PUB" 1)"
D_PAD="$(mkimage "$OCI" padded --text padded-bytes --big 40000)"
PAD_LAYER="$(layer_of "$OCI" "$D_PAD" 1)"

mkdir -p "$T/a"
htpasswd -Bbn alice s3cret >"$T/a/htpasswd"
registry_start a htpasswd
registry_start b open
REG_A="127.0.0.1:$REG_PORT_a"
REG_B="127.0.0.1:$REG_PORT_b"
push "oci:$OCI:secret" "$REG_A/private/img:1" --dest-creds alice:s3cret
push "oci:$OCI:secret" "$REG_B/other/img:1"
push "oci:$OCI:pub" "$REG_B/pub/x:1"
push "oci:$OCI:padded" "$REG_B/pad/x:1"
# B keeps the manifest of other/img:1 but not the layer: its link and its data go.
BSTORE="$T/b/storage/docker/registry/v2"
rm -rf "$BSTORE/repositories/other/img/_layers/sha256/${LAYER#sha256:}" \
    "$BSTORE/blobs/sha256/${LAYER:7:2}/${LAYER#sha256:}"
[[ "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "http://$REG_B/v2/other/img/blobs/$LAYER")" == 404 ]] ||
    die "B still serves the removed layer"
regproxy_start pb "http://$REG_B"

upfs proxy create priv --type docker --source custom --url "http://$REG_A/" --auth access-key \
    --access-key alice --secret-key-stdin <<<s3cret >/dev/null
upfs proxy create b --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pb/" >/dev/null
upfs registry create reg --type docker --upstream b --upstream priv >/dev/null

# helm: ha serves a chart; hb's index names the same digest
WWW="$T/www"
mkdir -p "$WWW/ha/charts" "$WWW/hb/charts"
"$PYTHON" - "$WWW" <<'EOF2'
import hashlib, os, sys
www = sys.argv[1]
secret = b"ha's private chart bytes\n" * 64
open(os.path.join(www, "ha/charts/secret-1.0.0.tgz"), "wb").write(secret)
open(os.path.join(www, "hb/charts/evil-1.0.0.tgz"), "wb").write(b"hb's own bytes\n" * 64)
digest = hashlib.sha256(secret).hexdigest()
def index(entries):
    out = "apiVersion: v1\nentries:\n"
    for name in entries:
        out += ("  %s:\n  - apiVersion: v2\n    name: %s\n    version: 1.0.0\n"
                "    digest: %s\n    urls:\n    - charts/%s-1.0.0.tgz\n" % (name, name, digest, name))
    return out + "generated: \"2024-01-01T00:00:00Z\"\n"
open(os.path.join(www, "ha/index.yaml"), "w").write(index(["secret"]))
# evil: hb's server has other bytes at that URL; gone: it has none
open(os.path.join(www, "hb/index.yaml"), "w").write(index(["evil", "gone"]))
open(os.path.join(www, "digest"), "w").write(digest)
EOF2
HELM_DIGEST="$(cat "$WWW/digest")"
files_server_start "$WWW"
upfs proxy create ha --type helm --url "http://127.0.0.1:$FPORT/ha/" >/dev/null
upfs proxy create hb --type helm --url "http://127.0.0.1:$FPORT/hb/" >/dev/null

serve_start main
S="http://127.0.0.1:$SERVE_PORT_main"
upfs_mount "$MNT"

t_docker_listed_elsewhere() {
    copy_from "127.0.0.1:$SERVE_PORT_main/priv/private/img:1" "dir:$T/p1"
    assert_eq "$(copy_digest "$T/p1")" "$D_SECRET" "the private image through priv"
    http_get "$S/v2/b/other/img/manifests/1"
    assert_eq "$HTTP_STATUS" 200 "b's manifest that lists A's layer"
    assert_contains "$BODY" "$LAYER" "b's manifest lists A's layer"
    regproxy_reset pb
    http_get "$S/v2/b/other/img/blobs/$LAYER"
    expect_v2_error 404 BLOB_UNKNOWN "A's layer through b"
    ! grep -q secret-only "$T/body" || die "b served A's bytes"
    [[ "$(regproxy_sum pb HEAD "/v2/other/img/blobs/$LAYER")$(regproxy_sum pb GET "/v2/other/img/blobs/$LAYER")" != 00 ]] ||
        die "b answered without asking its upstream"
    http_req HEAD "$S/v2/b/other/img/blobs/$LAYER"
    assert_eq "$HTTP_STATUS" 404 "HEAD of A's layer through b"
    local f="$MNT/b/other/img/1/blobs/sha256/${LAYER#sha256:}"
    if cat "$f" >"$T/leak" 2>/dev/null; then die "$f is readable"; fi
    ! grep -q secret-only "$T/leak" || die "the mount served A's bytes under b"
}
check "a digest that b's manifest lists but b's upstream does not have is not served by b" \
    t_docker_listed_elsewhere

t_docker_unreferenced() {
    regproxy_reset pb
    http_req HEAD "$S/v2/b/pub/x/blobs/$PUB_LAYER"
    assert_eq "$HTTP_STATUS" 200 "HEAD of a blob B has, no manifest before"
    assert_eq "$(header_of Content-Length)" "$(stat -c %s "$OCI/blobs/sha256/${PUB_LAYER#sha256:}")" \
        "its size"
    assert_eq "$(regproxy_sum pb GET /blobs/)" 0 "blob GETs upstream after the HEAD"
    http_get "$S/v2/b/pub/x/blobs/$PUB_LAYER"
    assert_eq "$HTTP_STATUS" 200 "GET of a blob B has, no manifest before"
    assert_sha256 "$T/body" "${PUB_LAYER#sha256:}"
    http_get "$S/v2/b/pub/x/blobs/$PUB_LAYER"
    assert_eq "$HTTP_STATUS" 200 "again"
    assert_eq "$(regproxy_sum pb GET /blobs/)" 1 "blob GETs upstream"
    http_get "$S/v2/b/pub/x/blobs/sha256:$(printf 'c%.0s' $(seq 64))"
    expect_v2_error 404 BLOB_UNKNOWN "a digest B does not have"
}
check "a blob b's upstream has is served by digest with no manifest first" t_docker_unreferenced

PAD=$((64 * 1024 * 1024))
t_longer_than_announced() {
    local size sent f="$MNT/b/pad/x/1/blobs/sha256/${PAD_LAYER#sha256:}"
    size="$(stat -c %s "$OCI/blobs/sha256/${PAD_LAYER#sha256:}")"
    with_timeout 20 stat "$f" >/dev/null || die "stat of the padded layer failed"
    regproxy_reset pb
    regproxy_control pb "pad?bytes=$PAD"
    run_capture with_timeout 60 cat "$f"
    regproxy_control pb up
    ((RC != 0)) || die "a body longer than its manifest's size was read whole"
    sent="$(regproxy_requests pb | "$PYTHON" -c '
import json, sys
print(max([e.get("sent", -1) for e in json.load(sys.stdin) if e["method"] == "GET" and e["path"].endswith(sys.argv[1])] or [-1]))' "/blobs/$PAD_LAYER")"
    log "layer of $size bytes padded by $PAD: $sent bytes left B before the proxy hung up; cat: ${ERR:0:120}"
    ((sent >= 0)) || die "B served no padded GET of the layer"
    ((sent < size + 16 * 1024 * 1024)) || die "the proxy read $sent bytes of a $size-byte layer"
    [[ ! -e "$STATE/blobs/sha256/${PAD_LAYER:7:2}/${PAD_LAYER#sha256:}" ]] || die "the padded body was stored"
    assert_eq "$(with_timeout 60 cat "$f" | sha256sum | cut -d' ' -f1)" "${PAD_LAYER#sha256:}" \
        "the layer once B answers honestly"
}
check "a blob longer than its manifest says is cut at the manifest's size" t_longer_than_announced

t_registry() {
    http_get "$S/v2/reg/private/img/blobs/$LAYER"
    assert_eq "$HTTP_STATUS" 200 "A's layer through reg (its upstream priv has it)"
    assert_sha256 "$T/body" "${LAYER#sha256:}"
    http_get "$S/v2/reg/other/img/blobs/$LAYER"
    expect_v2_error 404 BLOB_UNKNOWN "A's layer for other/img through reg"
}
check "a registry serves what its upstreams may serve" t_registry

t_helm() {
    http_get "$S/ha/charts/secret-1.0.0.tgz"
    assert_eq "$HTTP_STATUS" 200 "ha's chart through ha"
    assert_sha256 "$T/body" "$HELM_DIGEST"
    local name
    for name in evil gone; do
        http_get "$S/hb/charts/$name-1.0.0.tgz"
        [[ "$HTTP_STATUS" != 200 ]] || die "hb served $name-1.0.0.tgz (status 200)"
        ! grep -q "private chart" "$T/body" || die "hb served ha's bytes as $name"
        grep -q "GET /hb/charts/$name-1.0.0.tgz" "$T/files.log" ||
            die "hb answered $name without asking its own server"
        if cat "$MNT/hb/charts/$name-1.0.0.tgz" >"$T/leak" 2>/dev/null; then
            die "MNT/hb/charts/$name-1.0.0.tgz is readable"
        fi
        ! grep -q "private chart" "$T/leak" || die "the mount served ha's bytes under hb"
    done
}
check "helm: an index naming another proxy's chart digest does not serve its bytes" t_helm

finish
