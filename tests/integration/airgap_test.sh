#!/bin/bash
# tests/integration/airgap_test.sh -- the air-gap round trip.
#
#     bash tests/integration/airgap_test.sh build/upstreamfs      (as root; /dev/fuse)
#
# Connected side (state A): a docker proxy of docker-registry on 127.0.0.1 holding an image and a
# two-platform index; `upstreamfs prefetch` fetches both tag layouts, `cp -r` copies them out of
# the mount. The registry is then stopped for good. Air-gapped side (state B, no upstream at all):
# `registry import` makes the copies local content of a docker registry, and skopeo pulls them
# through B's shim; every digest is verified. Also: a plain file tree imported with --as PATH is
# served by the mount and the shim; a layout with a corrupted blob is refused and nothing of it
# is imported.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
source "$(dirname "${BASH_SOURCE[0]}")/shim/v2.sh"
docker_need_tools

OCI="$T/oci"
D_V1="$(mkimage "$OCI" v1 --text airgap --big 200000)"
D_MULTI="$(mkimage "$OCI" multi --platform linux/amd64 --platform linux/arm64/v8)"
registry_start a open
REG="127.0.0.1:$REG_PORT_a"
push "oci:$OCI:v1" "$REG/team/app:v1"
push "oci:$OCI:multi" "$REG/team/multi:2.0" --all

# --- connected side ---------------------------------------------------------------------------
STATE_A="$T/state-a"
MNT_A="$T/mnt-a"
USB="$T/usb"
upfs_register_mount "$MNT_A" # from the main shell: checks run in subshells
t_prefetch_copy() {
    STATE="$STATE_A" upfs proxy create hub --type docker --source custom --url "http://$REG/" >/dev/null
    STATE="$STATE_A" upfs_mount "$MNT_A"
    STATE="$STATE_A" upfs prefetch hub/team/app/v1 hub/team/multi/2.0 >"$T/prefetch.out" ||
        die "prefetch failed: $(cat "$T/prefetch.out")"
    grep -q "; 0 failed" "$T/prefetch.out" || die "prefetch reported failures: $(cat "$T/prefetch.out")"
    mkdir -p "$USB"
    cp -r "$MNT_A/hub/team/app/v1" "$USB/app"
    cp -r "$MNT_A/hub/team/multi/2.0" "$USB/multi"
    fusermount3 -u "$MNT_A"
    registry_stop a
    local f
    for f in "$USB"/app/blobs/sha256/* "$USB"/multi/blobs/sha256/*; do
        assert_sha256 "$f" "$(basename "$f")"
    done
}
check --setup "connected side: prefetch, cp -r out of the mount, every blob matches its digest" t_prefetch_copy

# --- air-gapped side ---------------------------------------------------------------------------
STATE="$T/state-b"
MNT_B="$T/mnt-b"
SPORT="$(free_port)"
upfs_register_mount "$MNT_B"
t_import() {
    upfs registry create offline --type docker >/dev/null
    upfs registry import offline "$USB/app" --as team/app >"$T/import.out" ||
        die "import of the image failed: $(cat "$T/import.out")"
    grep -q "into offline/team/app/v1" "$T/import.out" ||
        die "the tag did not default to the layout's ref name: $(cat "$T/import.out")"
    upfs registry import offline "$USB/multi" --as team/multi:2.0 >/dev/null
    mkdir -p "$T/tree/docs"
    fixture_bytes airgap-tree 12345 "$T/tree/docs/readme.bin"
    upfs registry create files --type generic >/dev/null
    upfs registry import files "$T/tree" --as site/v1 >/dev/null
    upfs_mount "$MNT_B" -o "listen=127.0.0.1:$SPORT"
    assert_sha256 "$MNT_B/files/site/v1/docs/readme.bin" "$(sha256_of "$T/tree/docs/readme.bin")"
    local got
    got="$("${CURL[@]}" "http://127.0.0.1:$SPORT/files/site/v1/docs/readme.bin" | sha256sum | cut -d' ' -f1)"
    assert_eq "$got" "$(sha256_of "$T/tree/docs/readme.bin")" "the imported file through the shim"
}
check --setup "air-gapped side: registry import of the layouts and of a file tree" t_import

t_pull() {
    copy_from "127.0.0.1:$SPORT/offline/team/app:v1" "dir:$T/pulled"
    assert_eq "$(copy_digest "$T/pulled")" "$D_V1" "the pulled image's manifest digest"
    dir_verified "$T/pulled"
    copy_from "127.0.0.1:$SPORT/offline/team/multi:2.0" "oci:$T/pulled-multi:m" --all
    assert_eq "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
        "$T/pulled-multi/index.json")" "$D_MULTI" "the pulled index digest"
    dir_verified "$T/pulled-multi/blobs/sha256"
}
check "air-gapped side: skopeo pulls the imported images through the shim, digests verified" t_pull

t_corrupt() {
    cp -r "$USB/app" "$T/bad"
    local victim
    victim="$(ls "$T/bad/blobs/sha256" | head -n 1)"
    chmod u+w "$T/bad/blobs/sha256/$victim"
    printf 'x' >>"$T/bad/blobs/sha256/$victim"
    local before after rc=0
    before="$(upfs cache stats --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["local_objects"])')"
    upfs registry import offline "$T/bad" --as team/bad:1 >"$T/bad.out" 2>"$T/bad.err" || rc=$?
    assert_eq "$rc" 1 "exit status of importing a corrupted layout"
    grep -q "does not match its digest; nothing imported" "$T/bad.err" ||
        die "unexpected error: $(cat "$T/bad.err")"
    after="$(upfs cache stats --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["local_objects"])')"
    assert_eq "$after" "$before" "local objects after the refused import"
    [[ ! -e "$MNT_B/offline/team/bad" ]] || die "the refused layout shows in the mount"
}
check "a layout with a corrupted blob is refused, nothing imported" t_corrupt

finish
