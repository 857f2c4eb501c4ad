#!/bin/bash
# tests/integration/docker_mount_test.sh -- a docker proxy of an anonymous docker-registry.
#
#     bash tests/integration/docker_mount_test.sh build/upstreamfs      (as root; /dev/fuse)
#
# docker-registry (Debian's distribution 2.8) on 127.0.0.1 holds images built offline
# (docker/mkimage.py) and pushed with skopeo: test/hello:v1 (OCI, with a 300 kB layer),
# test/hello:v2s2 (Docker schema 2), test/multi:1.0 (an OCI index: linux/amd64, linux/arm64/v8),
# test/big:1 (an 8 MB layer) and test/hello:moving. The proxy reaches it through
# docker/regproxy.py, which counts requests. Asserts:
#   - the catalog (one repository per page: Link pagination), tags and the OCI layout of a tag (oci-layout, index.json with one annotated
#     descriptor, blobs/sha256); ls -l shows every blob's true size without fetching a layer;
#   - every blob file's sha256 equals its name (OCI, Docker and index images);
#   - skopeo copy oci:MNT/hub/<repo>/<tag> succeeds (one image, Docker types, --all of an index);
#   - 16 concurrent readers of one uncached layer cause exactly one blob GET;
#   - with -o lazy_min=1M (own state dir), a read of the last 64 KiB of the uncached 8 MB layer
#     is one blob GET, with Range, of the chunks it covers (no GET of its first chunk first);
#   - a registry over the proxy serves the same layout;
#   - hostile names fail without a request; unknown tags and namespaces are ENOENT;
#   - -o platform=linux/arm64 (own state dir) shows that platform only; the same state dir
#     mounted without it shows every platform again;
#   - a tag moved upstream shows after --metadata-ttl 2 (revalidated with HEAD, no GET by tag);
#   - a 429 with Retry-After: the last digest is served stale, no request until it has passed;
#   - cp -r of a tag dir, registry stopped: skopeo copy of the copy succeeds, and index.json is
#     still served, with user.upstreamfs.stale=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
docker_need_tools

OCI="$T/oci"
MNT="$T/mnt"
D_V1="$(mkimage "$OCI" v1 --text one --big 300000)"
D_V2="$(mkimage "$OCI" v2 --text two)"
D_MULTI="$(mkimage "$OCI" multi --platform linux/amd64 --platform linux/arm64/v8)"
D_BIG="$(mkimage "$OCI" big --text big --big 8000000)"

REG_CATALOG_MAX=1 registry_start a open # one repository per _catalog page: Link pagination
REG="127.0.0.1:$REG_PORT_a"
push "oci:$OCI:v1" "$REG/test/hello:v1"
push "oci:$OCI:v1" "$REG/test/hello:moving"
push "oci:$OCI:v2" "$REG/test/hello:v2s2" --format v2s2
push "oci:$OCI:multi" "$REG/test/multi:1.0" --all
push "oci:$OCI:big" "$REG/test/big:1"
regproxy_start pa "http://$REG"

upfs proxy create hub --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pa/" \
    --metadata-ttl 2 >/dev/null
upfs_mount "$MNT"
H="$MNT/hub"

# blob_json DIGEST: the JSON blob DIGEST of the source layout
blob_json() { cat "$OCI/blobs/sha256/${1#sha256:}"; }
# jq_py EXPR: evaluate a Python expression over the JSON on stdin (bound to d)
jq_py() { "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# every_blob_verified DIR: every file in DIR/blobs/sha256 hashes to its name, and says so in xattrs
every_blob_verified() {
    local dir="$1" f n=0
    for f in "$dir"/blobs/sha256/*; do
        assert_sha256 "$f" "$(basename "$f")"
        assert_eq "$(xattr digest "$f")" "sha256:$(basename "$f")" "digest xattr of $f"
        n=$((n + 1))
    done
    ((n > 0)) || die "no blobs under $dir"
    echo "$n"
}

t_listing() {
    regproxy_reset pa
    assert_contains "$(ls "$H")" test "root listing (catalog)"
    assert_eq "$(ls "$H/test" | tr '\n' ' ')" "big hello multi " "namespace listing"
    (($(regproxy_count pa GET /v2/_catalog) >= 3)) || die "the catalog was not read page by page"
    assert_eq "$(ls "$H/test/hello" | tr '\n' ' ')" "moving v1 v2s2 " "tags of test/hello"
    assert_eq "$(ls "$H/test/hello/v1" | tr '\n' ' ')" "blobs index.json oci-layout " "tag layout"
    assert_eq "$(cat "$H/test/hello/v1/oci-layout")" '{"imageLayoutVersion":"1.0.0"}' "oci-layout"
    local idx want_size
    idx="$(cat "$H/test/hello/v1/index.json")"
    want_size="$(stat -c %s "$OCI/blobs/sha256/${D_V1#sha256:}")"
    assert_eq "$(jq_py 'len(d["manifests"])' <<<"$idx")" 1 "descriptors in index.json"
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <<<"$idx")" "$D_V1" "index.json digest"
    assert_eq "$(jq_py 'd["manifests"][0]["size"]' <<<"$idx")" "$want_size" "index.json size"
    assert_eq "$(jq_py 'd["manifests"][0]["mediaType"]' <<<"$idx")" \
        application/vnd.oci.image.manifest.v1+json "index.json mediaType"
    assert_eq "$(jq_py 'd["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]' \
        <<<"$idx")" v1 "ref.name annotation"
    assert_eq "$(stat -c %s "$H/test/hello/v1/index.json")" "${#idx}" "size of index.json"
    assert_eq "$(stat -c %a "$H/test/hello/v1/index.json")" 444 "mode of index.json"
}
check "catalog, tags and the OCI layout of a tag" t_listing

t_sizes_without_fetch() {
    regproxy_reset pa
    local f name want n=0
    while read -r _ size name; do
        want="$(stat -c %s "$OCI/blobs/sha256/$name")"
        assert_eq "$size" "$want" "ls -l size of blob $name"
        n=$((n + 1))
    done < <(stat -c '%F %s %n' "$H"/test/big/1/blobs/sha256/* | sed 's|regular file|f|; s|/.*/||')
    assert_eq "$n" 4 "blobs of test/big:1 (manifest, config, 2 layers)"
    assert_eq "$(regproxy_sum pa GET '/blobs/')" 0 "blob GETs while listing sizes"
}
check "ls -l shows true sizes without fetching layers" t_sizes_without_fetch

t_blobs_verified() {
    assert_eq "$(every_blob_verified "$H/test/hello/v1")" 4 "blobs of v1"
    assert_eq "$(every_blob_verified "$H/test/hello/v2s2")" 3 "blobs of v2s2"
    # the index, 2 manifests, 2 configs, 2 layers
    assert_eq "$(every_blob_verified "$H/test/multi/1.0")" 7 "blobs of multi"
    local mt
    mt="$(jq_py 'd["manifests"][0]["mediaType"]' <"$H/test/hello/v2s2/index.json")"
    assert_eq "$mt" application/vnd.docker.distribution.manifest.v2+json "v2s2 media type"
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$H/test/multi/1.0/index.json")" \
        "$D_MULTI" "multi index.json names the index"
}
check "every blob's sha256 equals its name" t_blobs_verified

t_skopeo_copy() {
    expect_ok with_timeout 120 skopeo copy --quiet "oci:$H/test/hello/v1" "dir:$T/x1"
    assert_eq "$(manifest_digest "$T/x1")" "$D_V1" "manifest copied from v1"
    expect_ok with_timeout 120 skopeo copy --quiet "oci:$H/test/hello/v2s2" "dir:$T/x2"
    expect_ok with_timeout 120 skopeo copy --quiet --all "oci:$H/test/multi/1.0" "oci:$T/x3:m"
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$T/x3/index.json")" "$D_MULTI" \
        "index copied with --all"
}
check "skopeo copy oci:MNT/hub/<repo>/<tag> succeeds" t_skopeo_copy

t_concurrent() {
    local layer i pids=() want
    layer="$(blob_json "$D_BIG" | jq_py 'd["layers"][1]["digest"]')"
    layer="${layer#sha256:}"
    regproxy_reset pa
    for i in $(seq 1 16); do
        cat "$H/test/big/1/blobs/sha256/$layer" >"$T/reader.$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || die "a reader failed"; done
    for i in $(seq 1 16); do assert_sha256 "$T/reader.$i" "$layer"; done
    assert_eq "$(regproxy_count pa GET "/v2/test/big/blobs/sha256:$layer")" 1 \
        "blob GETs for 16 concurrent readers"
}
check "16 concurrent readers of one uncached layer: one blob GET" t_concurrent

# A tail read of an uncached layer large enough to be a partial object (here lazy_min=1M; 16 MiB
# by default): one ranged blob GET of the chunks the read covers (include/upstreamfs/chunks.h),
# no GET of the layer's first chunk before it (the open's probe waits for the read's offset, src/fetch/lazy.c).
t_tail_one_get() {
    local layer size got want reqs chunk=$((128 * 1024)) m="$T/mnt-lazy"
    layer="$(blob_json "$D_BIG" | jq_py 'd["layers"][1]["digest"]')"
    layer="${layer#sha256:}"
    size="$(stat -c %s "$OCI/blobs/sha256/$layer")"
    ((size > 2 * chunk)) || die "the big layer is only $size bytes"
    STATE="$T/state-lazy" # this check's subshell only
    upfs proxy create hub --type docker --source custom --url "http://127.0.0.1:$PROXY_PORT_pa/" >/dev/null
    upfs_mount "$m" -o lazy_min=1M
    ls -l "$m/hub/test/big/1/blobs/sha256" >/dev/null
    regproxy_reset pa
    want="$(tail -c 65536 "$OCI/blobs/sha256/$layer" | sha256sum | cut -d' ' -f1)"
    got="$(with_timeout 20 dd if="$m/hub/test/big/1/blobs/sha256/$layer" bs=65536 count=1 \
        iflag=skip_bytes skip=$((size - 65536)) status=none | sha256sum | cut -d' ' -f1)"
    assert_eq "$got" "$want" "sha256 of the layer's last 64 KiB"
    reqs="$(regproxy_requests pa | jq_py '" ".join("%s:%s" % (r["range"] or "-", r["status"]) for r in d if r["method"] == "GET" and r["path"].endswith("/blobs/sha256:'"$layer"'"))')"
    log "tail read of a $size-byte layer: blob GETs [$reqs]"
    assert_eq "$reqs" "bytes=$(((size - 65536) / chunk * chunk))-$((size - 1)):206" \
        "blob GETs of a tail read: one, ranged, of the chunks the read covers"
    got="$(xattr cached "$m/hub/test/big/1/blobs/sha256/$layer")"
    [[ "$got" == partial* ]] || die "cached xattr after the tail read: $got"
    upfs_unmount "$m"
}
upfs_register_mount "$T/mnt-lazy"
check "a tail read of an uncached layer (a partial object): one ranged blob GET" t_tail_one_get

t_registry() {
    upfs registry create reg --type docker --upstream hub >/dev/null
    wait_until 5 test -d "$MNT/reg" || die "registry reg did not appear"
    cmp "$MNT/reg/test/hello/v1/index.json" "$H/test/hello/v1/index.json" ||
        die "the registry's index.json differs from the proxy's"
    local cfg
    cfg="$(blob_json "$D_V1" | jq_py 'd["config"]["digest"]')"
    assert_sha256 "$MNT/reg/test/hello/v1/blobs/sha256/${cfg#sha256:}" "${cfg#sha256:}"
}
check "a docker registry over the proxy serves the same layout" t_registry

t_names() {
    ls "$H" >/dev/null
    regproxy_reset pa
    local n
    for n in UPPER 'a..b' -x 'a b' "test/hello/v1/blobs/sha256/nothex" "test/hello/.x" \
        "test/hello/v1/blobs/sha256/$(printf 'A%.0s' $(seq 64))" "$(printf 'a%.0s' $(seq 300))"; do
        if stat "$H/$n" >/dev/null 2>&1; then die "stat of hostile name '$n' succeeded"; fi
    done
    # ls re-lists a known directory in the background, so a catalog request may land here.
    assert_eq "$(regproxy_sum pa GET '^(?!/v2/_catalog)') $(regproxy_sum pa HEAD .)" "0 0" \
        "requests for hostile names: $(regproxy_requests pa)"
    expect_fail_with "No such file" stat "$H/test/hello/nosuch/index.json"
    expect_fail_with "No such file" stat "$H/nosuchns"
    expect_fail_with "No such file" stat "$H/test/hello/v1/blobs/sha256/$(printf 'a%.0s' $(seq 64))"
    expect_fail_with "Read-only file system" touch "$H/test/hello/v1/new"
}
check "hostile names fail without a request; unknown names are ENOENT" t_names

# A second mount with its own state dir: the index of a state dir records the layouts one
# platform filter showed.
M2="$T/mnt2"
mkdir -p "$M2"
"$UPFS" --state "$T/state2" proxy create hub --type docker --source custom \
    --url "http://127.0.0.1:$PROXY_PORT_pa/" >/dev/null
on_exit 'fusermount3 -uz "$M2" 2>/dev/null || true'
with_timeout 30 "$UPFS" --state "$T/state2" mount -o platform=linux/arm64 "$M2" ||
    die "mount -o platform=linux/arm64 failed"

t_platform() {
    local m2="$M2" idx arm
    arm="$(blob_json "$D_MULTI" | jq_py '[m["digest"] for m in d["manifests"] if m["platform"]["architecture"] == "arm64"][0]')"
    idx="$(cat "$m2/hub/test/multi/1.0/index.json")"
    assert_eq "$(jq_py 'len(d["manifests"])' <<<"$idx")" 1 "platform-filtered descriptors"
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <<<"$idx")" "$arm" "the arm64 manifest"
    assert_eq "$(jq_py 'd["manifests"][0]["platform"]["architecture"]' <<<"$idx")" arm64 "platform"
    assert_eq "$(jq_py 'd["manifests"][0]["platform"]["variant"]' <<<"$idx")" v8 "variant"
    local blobs
    blobs="$(ls "$m2/hub/test/multi/1.0/blobs/sha256" | tr '\n' ' ')"
    [[ "$blobs" != *"${D_MULTI#sha256:}"* ]] || die "the index is listed with a platform filter"
    assert_eq "$(every_blob_verified "$m2/hub/test/multi/1.0")" 3 "arm64 manifest, config, layer"
    expect_ok with_timeout 120 skopeo copy --quiet "oci:$m2/hub/test/multi/1.0" "dir:$T/xarm"
    assert_eq "$(manifest_digest "$T/xarm")" "$arm" "skopeo copied the arm64 image"
    # a single-platform image is shown as it is
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$m2/hub/test/hello/v1/index.json")" \
        "$D_V1" "single-platform image under a filter"
}
check "-o platform=linux/arm64 shows one platform" t_platform
# and wait for its daemon to exit: until then it holds STATEDIR/mount.lock with its platforms
fusermount3 -u "$M2" || die "unmounting $M2 failed"
wait_until 10 _upfs_no_daemon "$M2" || die "the daemon of $M2 did not exit"

# The same state dir without the filter: the layouts are built again, whole.
t_platform_change() {
    with_timeout 30 "$UPFS" --state "$T/state2" mount "$M2" || die "mount of $T/state2 without a filter failed"
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$M2/hub/test/multi/1.0/index.json")" \
        "$D_MULTI" "index.json without the filter: the image index"
    assert_eq "$(every_blob_verified "$M2/hub/test/multi/1.0")" 7 "blobs of multi without the filter"
    grep -q "proxy hub: its source changed" "$T/state2/upstreamfs.log" ||
        die "no log line for the changed filter"
    fusermount3 -u "$M2" || die "unmounting $M2 failed"
}
check "the same state dir mounted without the filter shows every platform again" t_platform_change

t_tag_move() {
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$H/test/hello/moving/index.json")" \
        "$D_V1" "moving before the push"
    push "oci:$OCI:v2" "$REG/test/hello:moving"
    sleep 2.5
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$H/test/hello/moving/index.json")" \
        "$D_V2" "moving after the TTL"
    assert_eq "$(xattr stale "$H/test/hello/moving/index.json")" 0 "stale xattr while up"
    assert_sha256 "$H/test/hello/moving/blobs/sha256/${D_V2#sha256:}" "${D_V2#sha256:}"
    (($(regproxy_count pa HEAD /v2/test/hello/manifests/moving) >= 2)) ||
        die "the tag was not revalidated with HEAD"
    assert_eq "$(regproxy_count pa GET /v2/test/hello/manifests/moving)" 0 "GETs of the tag"
}
check "a tag moved upstream shows after the TTL" t_tag_move

t_rate_limited() {
    regproxy_reset pa
    regproxy_control pa 'ratelimit?seconds=5'
    sleep 2.5
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$H/test/hello/moving/index.json")" \
        "$D_V2" "moving while rate-limited"
    assert_eq "$(xattr stale "$H/test/hello/moving/index.json")" 1 "stale xattr on a 429"
    assert_eq "$(regproxy_count pa HEAD /v2/test/hello/manifests/moving)" 1 "HEADs answered 429"
    sleep 2.5
    cat "$H/test/hello/moving/index.json" >/dev/null
    assert_eq "$(regproxy_count pa HEAD /v2/test/hello/manifests/moving)" 1 \
        "HEADs within Retry-After"
    regproxy_control pa up
}
check "429 with Retry-After: the last digest is served stale and the registry left alone" \
    t_rate_limited

t_offline_copy() {
    cp -r "$H/test/hello/v1" "$T/copy" || die "cp -r of the tag dir failed"
    cat "$H/test/hello/moving/index.json" >/dev/null
    regproxy_stop pa
    registry_stop a
    expect_ok with_timeout 120 skopeo copy --quiet "oci:$T/copy" "dir:$T/y"
    assert_eq "$(manifest_digest "$T/y")" "$D_V1" "manifest copied from the cp -r copy"
    sleep 2.5
    assert_eq "$(jq_py 'd["manifests"][0]["digest"]' <"$H/test/hello/moving/index.json")" \
        "$D_V2" "moving with the registry down"
    assert_eq "$(xattr stale "$H/test/hello/moving/index.json")" 1 "stale xattr"
    assert_sha256 "$H/test/hello/v1/blobs/sha256/${D_V1#sha256:}" "${D_V1#sha256:}"
}
check "cp -r of a tag dir; registry stopped: copy usable, index.json stale" t_offline_copy

finish
