#!/bin/bash
# tests/integration/shim_v2_test.sh -- the registry API of the shim (/v2/, pull side).
#
#     bash tests/integration/shim_v2_test.sh build/upstreamfs      (as root; /dev/fuse)
#
# Upstreams: docker-registry A (open; reached through docker/regproxy.py, which counts
# requests) holds test/hello:v1 (OCI, a 300 kB layer), test/hello:v2s2 (Docker schema 2),
# test/multi:1.0 (an OCI index: linux/amd64, linux/arm64/v8), test/big:1 (an 8 MB layer),
# test/same:1 and library/alpine:3.19; B (open) holds another image as test/same:1; C
# (htpasswd) holds private/img:1. Proxies: hub (A), b (B), priv (C with credentials), anonc
# (C without), dh (A, as Docker Hub: its source is set in the state DB, since a dockerhub
# proxy cannot be pointed at a local registry otherwise); registries first=[b, hub] and
# second=[hub, b]. Asserts:
#   - skopeo copy docker://SHIM/<key>/<repo>:<tag> of an OCI image, a Docker schema 2 image and
#     an index (--all, and the default platform) gives the upstream's digests and verified
#     blobs; manifests carry Content-Type, Docker-Content-Digest, ETag, Content-Length; Accept
#     lines are merged; a type outside Accept is 404 MANIFEST_UNKNOWN;
#   - blobs: Range/206, HEAD headers; tags/list with n/last and Link; referrers is an empty index;
#   - a registry with two upstreams holding test/same:1 serves the first one's digest;
#   - --default: skopeo without a prefix; on a Docker Hub proxy library/ is implied (mount
#     -o listen=,default=);
#   - podman pull as root without systemd;
#   - 8 shim clients and 8 FUSE readers of one uncached layer: one blob GET upstream;
#   - a digest only the authenticated proxy referenced is 404 BLOB_UNKNOWN through other
#     proxies (by /v2 route), and the anonymous proxies' trees in the mount do not show it;
#   - hostile /v2 paths and bad digests: 400/404/414, no byte from outside the cache; writes 405;
#   - TLS + --htpasswd: skopeo with --src-creds and --src-cert-dir pulls; without, 401;
#   - upstream stopped: images pulled before pull again (same serve, and a restarted one);
#   - /metrics counts the v2 route, the access log has a line per request.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
source "$(dirname "${BASH_SOURCE[0]}")/shim/v2.sh"
docker_need_tools
command -v sqlite3 >/dev/null || die "sqlite3 is missing (package sqlite3)"

OCI="$T/oci"
MNT="$T/mnt"
D_V1="$(mkimage "$OCI" v1 --text one --big 300000)"
D_V2="$(mkimage "$OCI" v2 --text two)"
D_MULTI="$(mkimage "$OCI" multi --platform linux/amd64 --platform linux/arm64/v8)"
D_BIG="$(mkimage "$OCI" big --text big --big 8000000)"
D_OTHER="$(mkimage "$OCI" other --text other-image)"
D_SECRET="$(mkimage "$OCI" secret --text secret-only --big 20000)"
D_AMD64="$(child_of "$OCI" "$D_MULTI" amd64)"

registry_start a open
registry_start b open
mkdir -p "$T/c"
htpasswd -Bbn alice s3cret >"$T/c/htpasswd"
registry_start c htpasswd
REG_A="127.0.0.1:$REG_PORT_a"
REG_B="127.0.0.1:$REG_PORT_b"
REG_C="127.0.0.1:$REG_PORT_c"
push "oci:$OCI:v1" "$REG_A/test/hello:v1"
push "oci:$OCI:v2" "$REG_A/test/hello:v2s2" --format v2s2
push "oci:$OCI:multi" "$REG_A/test/multi:1.0" --all
push "oci:$OCI:big" "$REG_A/test/big:1"
push "oci:$OCI:v1" "$REG_A/test/same:1"
push "oci:$OCI:v2" "$REG_A/library/alpine:3.19"
push "oci:$OCI:other" "$REG_B/test/same:1"
push "oci:$OCI:secret" "$REG_C/private/img:1" --dest-creds alice:s3cret
regproxy_start pa "http://$REG_A"
throttle_start "127.0.0.1:$PROXY_PORT_pa"

upfs proxy create hub --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pa/" >/dev/null
upfs proxy create slow --type docker --source custom --url "http://127.0.0.1:$THROTTLE_PORT/" >/dev/null
upfs proxy create b --type docker --source custom --url "http://$REG_B/" >/dev/null
upfs proxy create priv --type docker --source custom --url "http://$REG_C/" --auth access-key \
    --access-key alice --secret-key-stdin <<<s3cret >/dev/null
upfs proxy create anonc --type docker --source custom --url "http://$REG_C/" >/dev/null
upfs proxy create dh --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pa/" >/dev/null
sqlite3 "$STATE/index.db" "UPDATE proxies SET source = 'dockerhub' WHERE key = 'dh'" ||
    die "could not make dh a Docker Hub proxy"
upfs registry create first --type docker --upstream b --upstream hub >/dev/null
upfs registry create second --type docker --upstream hub --upstream b >/dev/null
upfs registry create loc --type docker >/dev/null
upfs proxy create gen --type generic --url "http://127.0.0.1:1/" >/dev/null

serve_start main --default hub
P="127.0.0.1:$SERVE_PORT_main"
S="http://$P"
MPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$MPORT,default=dh"
wait_until 10 port_is_open "$MPORT" || die "the mount's shim does not listen on $MPORT"
M="127.0.0.1:$MPORT"
log "serve on $S, mount's shim on $M"

ACCEPT_OCI="application/vnd.oci.image.manifest.v1+json"
ACCEPT_DOCKER="application/vnd.docker.distribution.manifest.v2+json"
ACCEPT_INDEX="application/vnd.oci.image.index.v1+json"

# ---- manifests and skopeo ----------------------------------------------------------------------
t_base() {
    http_get "$S/v2/"
    assert_eq "$HTTP_STATUS" 200 "GET /v2/"
    assert_eq "$BODY" "{}" "/v2/ body"
    assert_eq "$(header_of Docker-Distribution-Api-Version)" registry/2.0 "API version header"
}
check "GET /v2/ is 200 {} with the API version" t_base

t_skopeo_single() {
    copy_from "$P/hub/test/hello:v1" "dir:$T/c1"
    assert_eq "$(copy_digest "$T/c1")" "$D_V1" "digest of test/hello:v1"
    dir_verified "$T/c1"
    copy_from "$P/hub/test/hello:v2s2" "dir:$T/c2"
    assert_eq "$(copy_digest "$T/c2")" "$(regproxy_digest test/hello v2s2)" "digest of v2s2"
    dir_verified "$T/c2"
    assert_contains "$(cat "$T/c2/manifest.json")" "$ACCEPT_DOCKER" "v2s2 manifest type"
}

# regproxy_digest REPO TAG: what registry A says the tag's digest is
regproxy_digest() {
    "${CURL[@]}" -sI -H "Accept: $ACCEPT_OCI" -H "Accept: $ACCEPT_DOCKER" -H "Accept: $ACCEPT_INDEX" \
        "http://$REG_A/v2/$1/manifests/$2" | tr -d '\r' |
        awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}
check "skopeo copy of an OCI and a Docker schema 2 image through a proxy" t_skopeo_single

t_manifest_headers() {
    local size
    size="$(stat -c %s "$OCI/blobs/sha256/${D_V1#sha256:}")"
    http_get "$S/v2/hub/test/hello/manifests/v1" -H "Accept: $ACCEPT_DOCKER" -H "Accept: $ACCEPT_OCI"
    assert_eq "$HTTP_STATUS" 200 "GET manifest with two Accept lines"
    assert_sha256 "$T/body" "${D_V1#sha256:}"
    assert_eq "$(header_of Content-Type)" "$ACCEPT_OCI" "Content-Type"
    assert_eq "$(header_of Docker-Content-Digest)" "$D_V1" "Docker-Content-Digest"
    assert_eq "$(header_of ETag)" "\"$D_V1\"" "ETag"
    assert_eq "$(header_of Content-Length)" "$size" "Content-Length"
    # a tag is fresh for what is left of the proxy's TTL; the answer depends on Accept
    [[ "$(header_of Cache-Control)" =~ ^public,\ max-age=[0-9]+$ ]] ||
        die "Cache-Control of a tag: $(header_of Cache-Control)"
    (($(header_of Cache-Control | sed 's/.*max-age=//') <= 600)) ||
        die "a tag's max-age is past the metadata TTL: $(header_of Cache-Control)"
    assert_eq "$(header_of Vary)" Accept "Vary of a manifest"
    http_req HEAD "$S/v2/hub/test/hello/manifests/v1" "" -H "Accept: $ACCEPT_OCI"
    assert_eq "$HTTP_STATUS" 200 "HEAD manifest"
    assert_eq "$(header_of Content-Length)" "$size" "HEAD Content-Length"
    assert_eq "$(header_of Docker-Content-Digest)" "$D_V1" "HEAD Docker-Content-Digest"
    http_get "$S/v2/hub/test/hello/manifests/$D_V1"
    assert_eq "$HTTP_STATUS" 200 "GET manifest by digest without Accept"
    assert_sha256 "$T/body" "${D_V1#sha256:}"
    assert_eq "$(header_of Cache-Control)" "public, max-age=31536000, immutable" \
        "Cache-Control of a manifest by digest"
    http_get "$S/v2/hub/test/hello/manifests/v1" -H "If-None-Match: \"$D_V1\""
    assert_eq "$HTTP_STATUS" 304 "If-None-Match"
    # a client that takes only Docker types is told the OCI manifest is unknown (as distribution)
    http_get "$S/v2/hub/test/hello/manifests/v1" -H "Accept: $ACCEPT_DOCKER"
    expect_v2_error 404 MANIFEST_UNKNOWN "an OCI manifest outside Accept"
    http_get "$S/v2/hub/test/multi/manifests/1.0" -H "Accept: $ACCEPT_OCI"
    expect_v2_error 404 MANIFEST_UNKNOWN "an index outside Accept"
    http_get "$S/v2/hub/test/multi/manifests/1.0" -H "Accept: $ACCEPT_OCI, $ACCEPT_INDEX"
    assert_eq "$HTTP_STATUS" 200 "an index inside Accept"
    assert_eq "$(header_of Content-Type)" "$ACCEPT_INDEX" "index Content-Type"
    assert_sha256 "$T/body" "${D_MULTI#sha256:}"
    http_get "$S/v2/hub/test/hello/manifests/nosuchtag"
    expect_v2_error 404 MANIFEST_UNKNOWN "an unknown tag"
    http_get "$S/v2/hub/test/hello/manifests/sha256:$(printf 'a%.0s' $(seq 64))"
    expect_v2_error 404 MANIFEST_UNKNOWN "an unknown digest"
    http_get "$S/v2/gen/x/manifests/latest"
    expect_v2_error 404 UNSUPPORTED "a generic proxy"
    http_get "$S/v2/hub/test/hello/manifests/v1" -u x:y
    assert_eq "$HTTP_STATUS" 200 "credentials are ignored without --htpasswd"
}
check "manifest headers, Accept negotiation, 304, errors" t_manifest_headers

t_skopeo_index() {
    copy_from "$P/hub/test/multi:1.0" "oci:$T/m-all:m" --all
    assert_eq "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$T/m-all/index.json")" \
        "$D_MULTI" "index copied with --all"
    dir_verified "$T/m-all/blobs/sha256"
    local n
    n="$(find "$T/m-all/blobs/sha256" -type f | wc -l)"
    assert_eq "$n" 7 "blobs of the index (index, 2 manifests, 2 configs, 2 layers)"
    copy_from "$P/hub/test/multi:1.0" "dir:$T/m-one" --override-arch amd64 --override-os linux
    assert_eq "$(copy_digest "$T/m-one")" "$D_AMD64" "the linux/amd64 manifest of the index"
    dir_verified "$T/m-one"
}
check "skopeo copy of a multi-platform index (--all and one platform)" t_skopeo_index

# ---- blobs, tags, referrers --------------------------------------------------------------------
t_blobs() {
    local layer size
    layer="$(layer_of "$OCI" "$D_V1" 1)"
    size="$(stat -c %s "$OCI/blobs/sha256/${layer#sha256:}")"
    http_get "$S/v2/hub/test/hello/blobs/$layer"
    assert_eq "$HTTP_STATUS" 200 "GET blob"
    assert_sha256 "$T/body" "${layer#sha256:}"
    assert_eq "$(header_of Docker-Content-Digest)" "$layer" "blob Docker-Content-Digest"
    assert_eq "$(header_of ETag)" "\"$layer\"" "blob ETag"
    assert_eq "$(header_of Docker-Distribution-Api-Version)" registry/2.0 "blob API version"
    assert_eq "$(header_of Cache-Control)" "public, max-age=31536000, immutable" \
        "Cache-Control of a blob"
    http_get "$S/v2/hub/test/hello/blobs/$layer" -r 10-19
    assert_eq "$HTTP_STATUS" 206 "Range"
    assert_eq "$(header_of Content-Range)" "bytes 10-19/$size" "Content-Range"
    assert_eq "$(header_of Content-Length)" 10 "Content-Length of the range"
    cmp -s "$T/body" <(tail -c +11 "$OCI/blobs/sha256/${layer#sha256:}" | head -c 10) ||
        die "bytes 10-19 differ"
    http_req HEAD "$S/v2/hub/test/hello/blobs/$layer"
    assert_eq "$HTTP_STATUS" 200 "HEAD blob"
    assert_eq "$(header_of Content-Length)" "$size" "HEAD blob Content-Length"
    assert_eq "$(header_of Docker-Content-Digest)" "$layer" "HEAD blob digest"
    # HEAD of a referenced blob never fetched: its size from the manifest, no download
    local big
    big="$(layer_of "$OCI" "$D_BIG" 1)"
    http_get "$S/v2/hub/test/big/manifests/1"
    assert_eq "$HTTP_STATUS" 200 "GET test/big:1"
    regproxy_reset pa
    http_req HEAD "$S/v2/hub/test/big/blobs/$big"
    assert_eq "$HTTP_STATUS" 200 "HEAD of an uncached blob"
    assert_eq "$(header_of Content-Length)" "$(stat -c %s "$OCI/blobs/sha256/${big#sha256:}")" \
        "size of the uncached blob"
    assert_eq "$(regproxy_sum pa GET /blobs/)" 0 "blob GETs after a HEAD"
    # the same blob through the repository's other spelling is unknown; a digest of no manifest too
    http_get "$S/v2/hub/test/multi/blobs/$layer"
    expect_v2_error 404 BLOB_UNKNOWN "a blob of another repository"
    http_get "$S/v2/hub/test/hello/blobs/sha256:$(printf 'b%.0s' $(seq 64))"
    expect_v2_error 404 BLOB_UNKNOWN "an unknown blob"
}
check "blobs: GET, Range 206, HEAD, unknown blobs 404 BLOB_UNKNOWN" t_blobs

t_tags() {
    http_get "$S/v2/hub/test/hello/tags/list"
    assert_eq "$HTTP_STATUS" 200 "tags/list"
    json_eq "$BODY" '{"name":"hub/test/hello","tags":["v1","v2s2"]}' || die "tags/list: $BODY"
    http_get "$S/v2/hub/test/hello/tags/list?n=1"
    json_eq "$BODY" '{"name":"hub/test/hello","tags":["v1"]}' || die "tags/list?n=1: $BODY"
    assert_eq "$(header_of Link)" '</v2/hub/test/hello/tags/list?n=1&last=v1>; rel="next"' "Link"
    http_get "$S/v2/hub/test/hello/tags/list?n=1&last=v1"
    json_eq "$BODY" '{"name":"hub/test/hello","tags":["v2s2"]}' || die "second page: $BODY"
    assert_eq "$(header_of Link)" "" "no Link on the last page"
    http_get "$S/v2/hub/test/hello/tags/list?n=x"
    expect_v2_error 400 PAGINATION_NUMBER_INVALID "n=x"
    http_get "$S/v2/hub/test/nosuchrepo/tags/list"
    expect_v2_error 404 NAME_UNKNOWN "tags of an unknown repository"
    http_get "$S/v2/nosuchkey/x/tags/list"
    expect_v2_error 404 NAME_UNKNOWN "tags of nosuchkey/x (a repository of hub, the default)"
}
check "tags/list with n, last and Link; unknown repositories" t_tags

t_referrers() {
    http_get "$S/v2/hub/test/hello/referrers/$D_V1"
    assert_eq "$HTTP_STATUS" 200 "referrers"
    assert_eq "$(header_of Content-Type)" "$ACCEPT_INDEX" "referrers Content-Type"
    json_eq "$BODY" "{\"schemaVersion\":2,\"mediaType\":\"$ACCEPT_INDEX\",\"manifests\":[]}" ||
        die "referrers body: $BODY"
    http_get "$S/v2/hub/test/hello/referrers/sha256:nothex"
    expect_v2_error 400 DIGEST_INVALID "referrers of a bad digest"
}
check "referrers: an empty OCI index" t_referrers

# ---- registries, --default, podman -------------------------------------------------------------
t_registry_order() {
    copy_from "$P/first/test/same:1" "dir:$T/r1"
    assert_eq "$(copy_digest "$T/r1")" "$D_OTHER" "first=[b, hub] serves b's test/same:1"
    dir_verified "$T/r1"
    copy_from "$P/second/test/same:1" "dir:$T/r2"
    assert_eq "$(copy_digest "$T/r2")" "$D_V1" "second=[hub, b] serves hub's test/same:1"
    dir_verified "$T/r2"
    copy_from "$P/first/test/multi:1.0" "oci:$T/r3:m" --all
    dir_verified "$T/r3/blobs/sha256"
    # In the mount the layout is b's alone: hub's image of the same name adds no blob to it.
    assert_eq "$(ls "$MNT/first/test/same/1/blobs/sha256" | sort | tr '\n' ' ')" \
        "$(ls "$MNT/b/test/same/1/blobs/sha256" | sort | tr '\n' ' ')" \
        "first/test/same/1 lists b's blobs only"
}
check "a docker registry with two upstreams: the first one's digest wins" t_registry_order

# A registry's local content: an OCI layout written into the mount is pulled like any other.
t_local() {
    local dir="$MNT/loc/test/local/1"
    mkdir -p "$dir/blobs/sha256" || die "mkdir in the registry's local content failed"
    cp "$OCI/oci-layout" "$dir/oci-layout"
    local b m arm
    arm="$(child_of "$OCI" "$D_MULTI" arm64)"
    for b in "$D_MULTI" "$D_AMD64" "$arm"; do
        cp "$OCI/blobs/sha256/${b#sha256:}" "$dir/blobs/sha256/"
    done
    for m in "$D_AMD64" "$arm"; do
        for b in "$(config_of "$OCI" "$m")" "$(layer_of "$OCI" "$m" 0)"; do
            cp "$OCI/blobs/sha256/${b#sha256:}" "$dir/blobs/sha256/"
        done
    done
    "$PYTHON" - "$OCI/index.json" "$D_MULTI" >"$dir/index.json" <<'EOF2'
import json, sys
idx = json.load(open(sys.argv[1]))
print(json.dumps({"schemaVersion": 2, "manifests": [m for m in idx["manifests"] if m["digest"] == sys.argv[2]]}))
EOF2
    copy_from "$P/loc/test/local:1" "oci:$T/l1:m" --all
    assert_eq "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$T/l1/index.json")" \
        "$D_MULTI" "the local index"
    dir_verified "$T/l1/blobs/sha256"
    # the default platform: its manifest is asked for by a digest no index.json of its own names
    copy_from "$P/loc/test/local:1" "dir:$T/l2" --override-arch amd64 --override-os linux
    assert_eq "$(copy_digest "$T/l2")" "$D_AMD64" "the local index's amd64 manifest"
    dir_verified "$T/l2"
    b="$(layer_of "$OCI" "$arm" 0)"
    http_get "$S/v2/loc/test/local/blobs/$b"
    assert_eq "$HTTP_STATUS" 200 "a blob written into the registry's layout is its own content"
    assert_sha256 "$T/body" "${b#sha256:}"
    http_get "$S/v2/loc/test/other/blobs/$(layer_of "$OCI" "$D_V1" 0)"
    expect_v2_error 404 BLOB_UNKNOWN "a blob of no layout of loc/test/other"
}
check "a docker registry's local content (a layout written into the mount)" t_local

t_default() {
    copy_from "$P/test/hello:v1" "dir:$T/d1"
    assert_eq "$(copy_digest "$T/d1")" "$D_V1" "no prefix, --default hub"
    dir_verified "$T/d1"
    # the mount's shim: default=dh, a Docker Hub proxy, where alpine is library/alpine
    copy_from "$M/alpine:3.19" "dir:$T/d2"
    assert_eq "$(copy_digest "$T/d2")" "$D_V2" "alpine through default=dh"
    dir_verified "$T/d2"
    copy_from "$M/library/alpine:3.19" "dir:$T/d3"
    assert_eq "$(copy_digest "$T/d3")" "$D_V2" "library/alpine through default=dh"
    http_get "http://$M/v2/dh/alpine/manifests/3.19"
    assert_eq "$HTTP_STATUS" 200 "/v2/dh/alpine with the key"
    assert_eq "$(header_of Docker-Content-Digest)" "$D_V2" "digest of dh/alpine"
    local layer
    layer="$(layer_of "$OCI" "$D_V2" 0)"
    http_get "http://$M/v2/dh/library/alpine/blobs/$layer"
    assert_eq "$HTTP_STATUS" 200 "blob of dh/library/alpine"
    assert_sha256 "$T/body" "${layer#sha256:}"
}
check "--default: no prefix; Docker Hub's library/ rule" t_default

t_podman() {
    if ! podman_ready; then
        log "SKIP podman pull: $PODMAN_WHY"
        return 0
    fi
    podman_run pull --tls-verify=false "$P/hub/test/hello:v1" >"$T/podman.log" 2>&1 ||
        die "podman pull failed: $(tail -n 8 "$T/podman.log")"
    local got
    got="$(podman_run images --digests --format '{{.Digest}}' "$P/hub/test/hello:v1" 2>&1)"
    assert_eq "$got" "$D_V1" "digest of the image podman pulled"
    podman_run pull --tls-verify=false "$P/hub/test/multi:1.0" >"$T/podman.log" 2>&1 ||
        die "podman pull of an index failed: $(tail -n 8 "$T/podman.log")"
}
check "podman pull as root without systemd" t_podman

# ---- one download for every reader ----------------------------------------------------------------
# Through "slow" (throttle.py: the 8 MB layer takes about 2.5 s), so every reader joins the
# download while it runs.
t_concurrent() {
    local layer i pids=() joined
    layer="$(layer_of "$OCI" "$D_BIG" 1)"
    http_get "http://$M/v2/slow/test/big/manifests/1"
    assert_eq "$HTTP_STATUS" 200 "manifest of test/big:1 through the mount's shim"
    regproxy_reset pa
    for i in $(seq 1 8); do
        "${CURL[@]}" --max-time 120 -o "$T/http.$i" "http://$M/v2/slow/test/big/blobs/$layer" &
        pids+=($!)
        cat "$MNT/slow/test/big/1/blobs/sha256/${layer#sha256:}" >"$T/fuse.$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || die "a reader failed"; done
    for i in $(seq 1 8); do
        assert_sha256 "$T/http.$i" "${layer#sha256:}"
        assert_sha256 "$T/fuse.$i" "${layer#sha256:}"
    done
    assert_eq "$(regproxy_count pa GET "/v2/test/big/blobs/$layer")" 1 \
        "blob GETs upstream for 8 shim clients and 8 FUSE readers"
    # streamed from the running download, not served once it was complete
    joined="$(grep -c "\"GET /v2/slow/test/big/blobs/$layer\" route=v2 status=200 .* cache=miss" \
        "$STATE/upstreamfs.log" || true)"
    assert_eq "$joined" 8 "shim replies streamed from the running download"
}
check "8 shim clients + 8 FUSE readers of one uncached layer: one upstream GET" t_concurrent

# ---- the blob access rule ------------------------------------------------------------------------
t_access_rule() {
    local layer cfg
    layer="$(layer_of "$OCI" "$D_SECRET" 1)"
    cfg="$(config_of "$OCI" "$D_SECRET")"
    copy_from "$P/priv/private/img:1" "dir:$T/p1"
    assert_eq "$(copy_digest "$T/p1")" "$D_SECRET" "private image through priv"
    http_get "$S/v2/priv/private/img/blobs/$layer"
    assert_eq "$HTTP_STATUS" 200 "the blob through the proxy that referenced it"
    # the bytes are in the store now; no other proxy may serve them
    local key repo
    for key in b anonc hub first; do
        for repo in private/img test/same test/hello; do
            for d in "$layer" "$cfg" "$D_SECRET"; do
                http_get "$S/v2/$key/$repo/blobs/$d"
                expect_v2_error 404 BLOB_UNKNOWN "/v2/$key/$repo/blobs/$d"
                [[ ! -s "$T/body" ]] || ! grep -q secret-only "$T/body" || die "leaked bytes"
            done
        done
    done
    http_get "$S/v2/anonc/private/img/manifests/1"
    [[ "$HTTP_STATUS" != 200 ]] || die "the anonymous proxy of C served the private manifest"
    http_get "$S/v2/anonc/private/img/manifests/$D_SECRET"
    [[ "$HTTP_STATUS" != 200 ]] || die "the anonymous proxy of C served the manifest by digest"
    # through the mount: the anonymous trees do not show it
    local listed
    listed="$(ls "$MNT/b/test/same/1/blobs/sha256")" || die "cannot list b's test/same:1 blobs"
    [[ -n "$listed" ]] || die "b's test/same:1 lists no blobs"
    [[ "$listed" != *"${layer#sha256:}"* ]] || die "b's layout lists the private layer"
    for f in "$MNT/b/test/same/1/blobs/sha256/${layer#sha256:}" \
        "$MNT/b/private/img/1/index.json" "$MNT/anonc/private/img/1/index.json" \
        "$MNT/anonc/private/img/1/blobs/sha256/${layer#sha256:}"; do
        if cat "$f" >/dev/null 2>&1; then die "$f is readable"; fi
    done
}
check "a digest only the authenticated proxy referenced is refused elsewhere" t_access_rule

# ---- hostile paths, writes -------------------------------------------------------------------------
t_hostile() {
    local u long
    long="$(printf 'a%.0s' $(seq 300))"
    for u in \
        "/v2/hub/test/hello/../../../../etc/passwd/manifests/v1" \
        "/v2/hub/%2e%2e/%2e%2e/etc/manifests/passwd" \
        "/v2/hub/test%2fhello/manifests/v1" \
        "/v2/hub/test/hello/manifests/v1%00" \
        "/v2/hub/test/hello/blobs/sha256%3a..%2f..%2fetc%2fpasswd" \
        "/v2/hub/test/hello/blobs/..%2F..%2F..%2Fetc%2Fpasswd" \
        "/v2/hub/test/hello/blobs/sha256:../../etc/passwd" \
        "/v2/hub/test/hello/blobs/sha256:ABCDEF" \
        "/v2/hub/test/hello/blobs/sha256:$(printf 'A%.0s' $(seq 64))" \
        "/v2/hub/test/hello/blobs/sha512:$(printf 'a%.0s' $(seq 128))" \
        "/v2/hub/test/hello/manifests/sha256:xyz" \
        "/v2/hub/Test/Hello/manifests/v1" \
        "/v2/hub/$long/manifests/v1" \
        "/v2/hub/$long/$long/$long/x/manifests/v1" \
        "/v2/hub/test/hello/manifests/$long" \
        "/v2/hub/test/.hidden/manifests/v1" \
        "/v2/hub/test/hello/blobs/" \
        "/v2/../etc/passwd" \
        "/v2/hub/test/hello/tags/list/../../../../../etc/passwd"; do
        HTTP_STATUS="$("${CURL[@]}" --path-as-is -o "$T/body" -w '%{http_code}' "$S$u")" || true
        case "$HTTP_STATUS" in
        400 | 404 | 414) ;;
        *) die "$u: status $HTTP_STATUS: $(head -c 200 "$T/body")" ;;
        esac
        if grep -q 'root:' "$T/body"; then die "$u: bytes of /etc/passwd"; fi
    done
    http_get "$S/v2/hub/test/hello/blobs/sha256:ABCDEF"
    expect_v2_error 400 DIGEST_INVALID "an upper-case digest"
    http_get "$S/v2/hub/test/hello/manifests/sha256:xyz"
    expect_v2_error 400 DIGEST_INVALID "a malformed digest reference"
    http_get "$S/v2/hub/Test/Hello/manifests/v1"
    expect_v2_error 400 NAME_INVALID "an upper-case repository"
}
check "hostile /v2 paths: 400/404/414, nothing from outside the cache" t_hostile

t_writes() {
    local m
    for m in PUT POST PATCH DELETE; do
        http_req "$m" "$S/v2/hub/test/hello/manifests/v1" '{}'
        expect_v2_error 405 UNSUPPORTED "$m of a manifest"
        http_req "$m" "$S/v2/hub/test/hello/blobs/uploads/" '{}'
        expect_v2_error 405 UNSUPPORTED "$m of an upload"
    done
}
check "writes under /v2 are 405 UNSUPPORTED" t_writes

# ---- TLS and --htpasswd ------------------------------------------------------------------------------
make_cert "$T/tls"
htpasswd -Bbn bob pullpass >"$T/shim.htpasswd"
serve_start tls --tls-cert "$T/tls/cert.pem" --tls-key "$T/tls/key.pem" \
    --htpasswd "$T/shim.htpasswd"

t_tls_htpasswd() {
    local tp="127.0.0.1:$SERVE_PORT_tls"
    rm -rf "$T/t1"
    with_timeout 120 skopeo copy --quiet --src-creds bob:pullpass --src-cert-dir "$T/tls/ca" \
        "docker://$tp/hub/test/hello:v1" "dir:$T/t1" >"$T/skopeo.log" 2>&1 ||
        die "skopeo over TLS with credentials failed: $(tail -n 5 "$T/skopeo.log")"
    assert_eq "$(copy_digest "$T/t1")" "$D_V1" "digest over TLS"
    dir_verified "$T/t1"
    rm -rf "$T/t2"
    if with_timeout 120 skopeo copy --quiet --src-cert-dir "$T/tls/ca" --src-no-creds \
        "docker://$tp/hub/test/hello:v1" "dir:$T/t2" >"$T/skopeo.log" 2>&1; then
        die "skopeo without credentials succeeded"
    fi
    grep -Eqi '401|unauthorized' "$T/skopeo.log" ||
        die "skopeo's error without credentials names no 401: $(tail -n 3 "$T/skopeo.log")"
    http_get "https://$tp/v2/" --cacert "$T/tls/cert.pem"
    assert_eq "$HTTP_STATUS" 401 "GET /v2/ without credentials"
    assert_contains "$(header_of WWW-Authenticate)" Basic "challenge"
    expect_v2_error 401 UNAUTHORIZED "GET /v2/ without credentials"
    http_get "https://$tp/v2/hub/test/hello/manifests/v1" --cacert "$T/tls/cert.pem" -u bob:wrong
    assert_eq "$HTTP_STATUS" 401 "wrong password"
    http_get "https://$tp/v2/hub/test/hello/manifests/v1" --cacert "$T/tls/cert.pem" -u bob:pullpass
    assert_eq "$HTTP_STATUS" 200 "right password"
}
check "TLS + --htpasswd: credentials pull, none get 401" t_tls_htpasswd

# ---- metrics and the access log -----------------------------------------------------------------
t_metrics() {
    http_get "$S/metrics"
    local ok hits
    ok="$(awk '/^upstreamfs_http_requests_total\{route="v2",code="200"\}/ { print $2 }' <<<"$BODY")"
    ((${ok:-0} > 10)) || die "v2 200s in /metrics: '${ok:-}'"
    assert_contains "$BODY" 'upstreamfs_http_requests_total{route="v2",code="404"}' "v2 404s"
    hits="$(awk '/^upstreamfs_http_cache_requests_total\{result="hit"\}/ { print $2 }' <<<"$BODY")"
    ((${hits:-0} > 0)) || die "no cache hits counted: '${hits:-}'"
    grep -q 'route=v2 status=200' "$SERVE_LOG_main" || die "no v2 line in the access log"
    grep -q '"GET /v2/hub/test/hello/blobs/sha256:[0-9a-f]*" route=v2 status=206' \
        "$SERVE_LOG_main" || die "no 206 blob line in the access log"
}
check "/metrics counts the v2 route; the access log has its lines" t_metrics

# ---- an edge upstreamfs whose docker proxy is this serve's /v2/hub/ ------------------------------
EDGE="$T/edge"
upfs_register_mount "$EDGE"
t_edge() {
    local st="$STATE-edge" eport before
    "$UPFS" --state "$st" proxy create hub --type docker --source custom --url "$S/hub" >/dev/null
    eport="$(free_port)"
    mkdir -p "$EDGE"
    with_timeout 30 "$UPFS" --state "$st" mount "$EDGE" -o "listen=127.0.0.1:$eport" ||
        die "the edge did not mount"
    wait_until 10 port_is_open "$eport" || die "the edge's shim does not listen"
    before="$(grep -c '"GET /v2/hub/test/hello/manifests/' "$SERVE_LOG_main" || true)"
    # the mount: the image layout of test/hello:v1, every blob with its digest's bytes
    [[ -f "$EDGE/hub/test/hello/v1/index.json" ]] || die "no layout of test/hello:v1 at the edge"
    dir_verified "$EDGE/hub/test/hello/v1/blobs/sha256"
    # the edge's own shim: skopeo pulls through edge -> parent -> registry
    copy_from "127.0.0.1:$eport/hub/test/hello:v1" "dir:$T/e1"
    assert_eq "$(copy_digest "$T/e1")" "$D_V1" "test/hello:v1 through the edge"
    dir_verified "$T/e1"
    copy_from "127.0.0.1:$eport/hub/test/multi:1.0" "oci:$T/e2:m" --all
    dir_verified "$T/e2/blobs/sha256"
    (($(grep -c '"GET /v2/hub/test/hello/manifests/' "$SERVE_LOG_main" || true) > before)) ||
        die "the edge's requests did not reach the parent's /v2/hub/"
}
check "an edge whose docker proxy URL is a parent's /v2/hub/ route shows and pulls its images" t_edge

# ---- the upstream stopped ------------------------------------------------------------------------
regproxy_stop pa
registry_stop a
# a new serve process, which has never asked the upstream anything
serve_start again

t_offline() {
    copy_from "$P/hub/test/hello:v1" "dir:$T/o1"
    assert_eq "$(copy_digest "$T/o1")" "$D_V1" "test/hello:v1 with the upstream stopped"
    dir_verified "$T/o1"
    copy_from "$P/hub/test/multi:1.0" "oci:$T/o2:m" --all
    dir_verified "$T/o2/blobs/sha256"
    copy_from "$P/second/test/same:1" "dir:$T/o3"
    assert_eq "$(copy_digest "$T/o3")" "$D_V1" "a registry's image with its upstream stopped"
    copy_from "127.0.0.1:$SERVE_PORT_again/hub/test/hello:v1" "dir:$T/o4"
    assert_eq "$(copy_digest "$T/o4")" "$D_V1" "test/hello:v1 from a restarted serve, upstream down"
    copy_from "127.0.0.1:$SERVE_PORT_again/hub/test/hello:v2s2" "dir:$T/o5"
    dir_verified "$T/o5"
}
check "upstream stopped: images pulled before pull again" t_offline

finish
