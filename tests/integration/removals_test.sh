#!/bin/bash
# tests/integration/removals_test.sh -- versions an upstream removes, and PEP 592 yanked files
# (docs/policy.md, "Upstream removals").
#
#     bash tests/integration/removals_test.sh build/upstreamfs
#
# Upstreams on 127.0.0.1: the npm fixture registry (tests/integration/npm/registry.py, whose
# "unpublish" drops a version from a package's document) and a static PyPI tree
# (tests/integration/pypi/build.py, whose "remove" drops a file's link and "yank" marks one
# yanked) served by lib/upstream.py. Proxies, all with --metadata-ttl 1: npmh (npm, on_removed
# default: hide), npmk (npm, --on-removed keep), pyh (pypi, default: hide). One mount with the
# shim (-o listen=).
#
# Asserts:
#   npm unpublish: @upfs/util 1.0.0, cached through npmh and npmk, is unpublished upstream; once
#     the packument revalidates, cache stats and /metrics count 2 entries removed-upstream and
#     the page's cache report 1 per proxy; npmh hides it: ls of @upfs/util/- lacks it (1.1.0
#     stays), reading it fails with EACCES, the shim answers it with cause policy, the shim's
#     packument lacks the version; npmk keeps it: listed, readable with the fixture's sha256,
#     user.upstreamfs.removed says "removed-upstream <time>"; a cached version still listed
#     (1.1.0) has no mark;
#   a version that comes back (the document restored) is unmarked; removed again, marked again;
#   cache purge npmh/@upfs/util@1.0.0 deletes npmh's entry (the object stays: npmk's names it),
#     then purge npmk/@upfs/util@1.0.0 deletes the blob from the store; stats count 0 for npm;
#     purging what is not marked fails ("nothing marked removed-upstream matches");
#   PyPI removal: upfs_demo-0.9.0.tar.gz, cached through pyh, is dropped from the page: marked,
#     hidden from ls, EACCES by path, absent from the shim's page; purge deletes its blob;
#   docker: test/hello:v1 and :v2, cached through hubk (docker, on_removed default: keep) and
#     hubh (--on-removed hide), lose their tags at the docker-registry (the tag's directory
#     removed from its storage): gone from tags/list, both are marked on the next listing of
#     test/hello; hubh leaves v1 out of ls and refuses it (EACCES), hubk lists it with
#     user.upstreamfs.removed and still serves its cached blobs; cache purge
#     hubh/test/hello@v1 deletes hubh's tag directory; test/hello:stays, removed too, is marked
#     when its index.json is asked for again (the manifest answers 404), without a listing;
#   PEP 592 yanked: upfs_demo-1.0.0's wheel yanked upstream stays served: pip download
#     upfs-demo==1.0.0 through the shim gets it (fixture sha256), the shim's HTML page carries
#     data-yanked="broken", its JSON page and the mount's .simple.json "yanked": "broken", and the
#     wheel is not marked removed-upstream.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
docker_need_tools
source "$(dirname "${BASH_SOURCE[0]}")/npm/lab.sh"
BUILD_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")/pypi" && pwd)/build.py"
PIP=(/usr/bin/python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || die "Debian's pip is missing (tools/deps.sh --test installs python3-pip)"

MNT="$T/mnt"
FIX="$T/fix"
"$PYTHON" "$REGISTRY_PY" build "$FIX"
"$PYTHON" "$BUILD_PY" "$T/repo"
upstream_start "$T/repo" --quiet

npm_lab_start "$FIX"

upfs proxy create npmh --type npm --url "$REG_URL" --metadata-ttl 1 >/dev/null
upfs proxy create npmk --type npm --url "$REG_URL" --metadata-ttl 1 --on-removed keep >/dev/null
upfs proxy create pyh --type pypi --url "$UPSTREAM_URL" --metadata-ttl 1 >/dev/null
OCI="$T/oci"
mkimage "$OCI" v1 --text one >/dev/null
mkimage "$OCI" v2 --text two >/dev/null
registry_start a open
push "oci:$OCI:v1" "127.0.0.1:$REG_PORT_a/test/hello:v1"
push "oci:$OCI:v2" "127.0.0.1:$REG_PORT_a/test/hello:v2"
push "oci:$OCI:v2" "127.0.0.1:$REG_PORT_a/test/hello:stays"
TAGS="$T/a/storage/docker/registry/v2/repositories/test/hello/_manifests/tags"
[[ -d "$TAGS/v1" ]] || die "no tag directory $TAGS/v1 in the registry's storage"
upfs proxy create hubk --type docker --source custom --url "http://127.0.0.1:$REG_PORT_a/" \
    --metadata-ttl 1 >/dev/null
upfs proxy create hubh --type docker --source custom --url "http://127.0.0.1:$REG_PORT_a/" \
    --metadata-ttl 1 --on-removed hide >/dev/null
SPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$SPORT"
wait_for_port "$SPORT" 10 || die "the shim is not listening on $SPORT"
S="http://127.0.0.1:$SPORT"

UTIL_DOC="$FIX/docs/@upfs%2futil.json"
OLD=util-1.0.0.tgz
NEW=util-1.1.0.tgz
SDIST=upfs_demo-0.9.0.tar.gz
WHL=upfs_demo-1.0.0-py3-none-any.whl
tsha() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tarballs"][sys.argv[2]]["sha256"])' "$FIX/expect.json" "$1"; }
psha() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["sha256"])' "$T/expect.json" "$1"; }
blob() { printf '%s/blobs/sha256/%s/%s' "$STATE" "${1:0:2}" "$1"; }
# removed_is N: cache stats counts N entries marked removed-upstream
removed_is() { [[ "$(stats_field removed_upstream)" == "$1" ]]; }
# revalidate PATH...: past the TTL, reads each document so it is asked for again
revalidate() {
    sleep 1.2
    local p
    for p in "$@"; do cat -- "$p" >/dev/null || true; done
}
# cache_report_removed NAME: removed_upstream of NAME in the page's cache report
cache_report_removed() {
    api_get "$S/api/v1/cache"
    [[ "$HTTP_STATUS" == 200 ]] || die "GET /api/v1/cache: $HTTP_STATUS $BODY"
    printf '%s' "$BODY" | "$PYTHON" -c '
import json, sys
print([n["removed_upstream"] for n in json.load(sys.stdin)["names"] if n["name"] == sys.argv[1]][0])' "$1"
}

# ---- npm: an unpublished version -----------------------------------------------------------
t_npm_setup() {
    local p
    for p in npmh npmk; do
        assert_sha256 "$MNT/$p/@upfs/util/-/$OLD" "$(tsha "@upfs/util/-/$OLD")"
        assert_sha256 "$MNT/$p/@upfs/util/-/$NEW" "$(tsha "@upfs/util/-/$NEW")"
        [[ -z "$(xattr removed "$MNT/$p/@upfs/util/-/$OLD")" ]] || die "$p: marked before any removal"
    done
    removed_is 0 || die "cache stats counts removals before any"
    cp -- "$UTIL_DOC" "$T/util.json.orig"
    "$PYTHON" "$REGISTRY_PY" unpublish "$FIX" @upfs/util 1.0.0
    revalidate "$MNT/npmh/@upfs/util/package.json" "$MNT/npmk/@upfs/util/package.json"
    wait_until 10 removed_is 2 || die "cache stats: $(stats_field removed_upstream) removed, expected 2"
}

t_npm_hidden() {
    local ls_out
    ls_out="$(ls "$MNT/npmh/@upfs/util/-")"
    [[ "$ls_out" != *"$OLD"* ]] || die "npmh lists the unpublished $OLD: $ls_out"
    assert_contains "$ls_out" "$NEW" "npmh's listing keeps the version still published"
    expect_fail_with "Permission denied" cat "$MNT/npmh/@upfs/util/-/$OLD"
    http_get "$S/npmh/@upfs/util/-/$OLD"
    assert_ne "$HTTP_STATUS" 200 "the shim's status for a hidden removed version"
    assert_contains "$BODY" "cause policy" "the shim's error body"
    http_get "$S/npmh/@upfs%2futil"
    assert_eq "$HTTP_STATUS" 200 "the shim's packument"
    [[ "$BODY" != *'"1.0.0"'* ]] || die "the packument still names 1.0.0: ${BODY:0:300}"
    assert_contains "$BODY" '"1.1.0"' "the packument"
    assert_eq "$(cache_report_removed npmh)" 1 "the page's removed_upstream of npmh"
}

t_npm_kept() {
    local ls_out mark
    ls_out="$(ls "$MNT/npmk/@upfs/util/-")"
    assert_contains "$ls_out" "$OLD" "npmk (keep) lists the unpublished version"
    assert_sha256 "$MNT/npmk/@upfs/util/-/$OLD" "$(tsha "@upfs/util/-/$OLD")"
    mark="$(xattr removed "$MNT/npmk/@upfs/util/-/$OLD")"
    [[ "$mark" =~ ^removed-upstream\ 20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T ]] ||
        die "user.upstreamfs.removed of npmk's $OLD: '$mark'"
    [[ -z "$(xattr removed "$MNT/npmk/@upfs/util/-/$NEW")" ]] || die "the published $NEW is marked"
    http_get "$S/npmk/@upfs/util/-/$OLD"
    assert_eq "$HTTP_STATUS" 200 "the shim serves npmk's kept version"
    assert_eq "$(cache_report_removed npmk)" 1 "the page's removed_upstream of npmk"
    http_get "$S/metrics"
    assert_contains "$BODY" "upstreamfs_removed_upstream 2" "/metrics"
    assert_contains "$(upfs cache stats)" "removed upstream: 2 cached entries" "cache stats"
}

t_npm_comes_back() {
    cp -- "$T/util.json.orig" "$UTIL_DOC"
    revalidate "$MNT/npmh/@upfs/util/package.json" "$MNT/npmk/@upfs/util/package.json"
    wait_until 10 removed_is 0 || die "republished: $(stats_field removed_upstream) still marked"
    assert_sha256 "$MNT/npmh/@upfs/util/-/$OLD" "$(tsha "@upfs/util/-/$OLD")"
    "$PYTHON" "$REGISTRY_PY" unpublish "$FIX" @upfs/util 1.0.0
    revalidate "$MNT/npmh/@upfs/util/package.json" "$MNT/npmk/@upfs/util/package.json"
    wait_until 10 removed_is 2 || die "unpublished again: $(stats_field removed_upstream) marked"
}

t_npm_purge() {
    local sha
    sha="$(tsha "@upfs/util/-/$OLD")"
    expect_ok upfs cache purge npmh/@upfs/util@1.0.0
    assert_eq "$OUT" "purged npmh/@upfs/util/-/$OLD" "purge's output"
    removed_is 1 || die "after one purge: $(stats_field removed_upstream) marked"
    [[ -f "$(blob "$sha")" ]] || die "purge of npmh removed the blob npmk still names"
    expect_fail_with "nothing marked removed-upstream matches" upfs cache purge npmh/@upfs/util@1.0.0
    expect_fail_with "nothing marked removed-upstream matches" upfs cache purge npmk/@upfs/util@1.1.0
    expect_ok upfs cache purge --json npmk/@upfs/util@1.0.0
    assert_eq "$(printf '%s' "$OUT" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["purged"])')" \
        "['npmk/@upfs/util/-/$OLD']" "purge --json"
    [[ ! -e "$(blob "$sha")" ]] || die "purge left the blob $(blob "$sha")"
    removed_is 0 || die "after both purges: $(stats_field removed_upstream) marked"
    [[ "$(ls "$MNT/npmk/@upfs/util/-")" != *"$OLD"* ]] || die "npmk still lists the purged version"
}

# ---- PyPI: a file deleted from the index, and a yanked one -----------------------------------
t_pypi_removed() {
    local sha ls_out
    sha="$(psha "$SDIST")"
    assert_sha256 "$MNT/pyh/upfs-demo/$SDIST" "$sha"
    assert_sha256 "$MNT/pyh/upfs-demo/$WHL" "$(psha "$WHL")"
    "$PYTHON" "$BUILD_PY" remove "$T/repo" upfs-demo "$SDIST"
    revalidate "$MNT/pyh/upfs-demo/.simple.json"
    wait_until 10 removed_is 1 || die "cache stats: $(stats_field removed_upstream) removed, expected 1"
    ls_out="$(ls "$MNT/pyh/upfs-demo")"
    [[ "$ls_out" != *"$SDIST"* ]] || die "pyh lists the removed $SDIST: $ls_out"
    assert_contains "$ls_out" "$WHL" "pyh's listing"
    expect_fail_with "Permission denied" cat "$MNT/pyh/upfs-demo/$SDIST"
    http_get "$S/pyh/simple/upfs-demo/" -H 'Accept: text/html'
    assert_eq "$HTTP_STATUS" 200 "the shim's page"
    [[ "$BODY" != *"$SDIST"* ]] || die "the shim's page still links $SDIST"
    expect_ok upfs cache purge pyh/upfs-demo@0.9.0
    assert_eq "$OUT" "purged pyh/upfs-demo/$SDIST" "purge's output"
    [[ ! -e "$(blob "$sha")" ]] || die "purge left the blob of $SDIST"
    removed_is 0 || die "after the purge: $(stats_field removed_upstream) marked"
}

t_pypi_yanked() {
    local base
    base="$(stats_field removed_upstream)"
    "$PYTHON" "$BUILD_PY" yank "$T/repo" upfs-demo "$WHL" broken
    revalidate "$MNT/pyh/upfs-demo/.simple.json"
    wait_until 10 grep -q '"yanked": *"broken"' "$MNT/pyh/upfs-demo/.simple.json" ||
        die "the mount's .simple.json does not say yanked: $(cat "$MNT/pyh/upfs-demo/.simple.json")"
    http_get "$S/pyh/simple/upfs-demo/" -H 'Accept: text/html'
    assert_contains "$BODY" 'data-yanked="broken"' "the shim's HTML page"
    http_get "$S/pyh/simple/upfs-demo/" -H 'Accept: application/vnd.pypi.simple.v1+json'
    assert_contains "$(printf '%s' "$BODY" | "$PYTHON" -c '
import json, sys
print([f.get("yanked") for f in json.load(sys.stdin)["files"] if f["filename"] == sys.argv[1]])' "$WHL")" \
        "['broken']" "the shim's JSON page"
    mkdir -p "$T/home"
    run_capture with_timeout 180 env -i PATH=/usr/bin:/bin HOME="$T/home" \
        "${PIP[@]}" download --isolated --disable-pip-version-check --no-cache-dir --no-input \
        --index-url "$S/pyh/simple/" --no-deps -d "$T/dl" upfs-demo==1.0.0
    ((RC == 0)) || die "pip download upfs-demo==1.0.0 (yanked) failed ($RC): $ERR $OUT"
    assert_sha256 "$T/dl/$WHL" "$(psha "$WHL")"
    [[ -z "$(xattr removed "$MNT/pyh/upfs-demo/$WHL")" ]] || die "the yanked wheel is marked removed"
    removed_is "$base" || die "a yanked file counts as removed: $(stats_field removed_upstream)"
}

# ---- docker: a tag gone from tags/list, a tag whose manifest answers 404 ---------------------
t_docker() {
    local p ls_out blob base
    base="$(stats_field removed_upstream)"
    for p in hubk hubh; do
        assert_contains "$(ls "$MNT/$p/test/hello")" v1 "$p's tags"
        cp -r "$MNT/$p/test/hello/v1" "$T/$p-v1"
        cp -r "$MNT/$p/test/hello/v2" "$T/$p-v2"
    done
    blob="$(ls "$T/hubk-v1/blobs/sha256" | head -n 1)"
    rm -rf -- "${TAGS:?}/v1" "${TAGS:?}/v2"
    sleep 1.2
    for p in hubk hubh; do ls "$MNT/$p/test/hello" >/dev/null; done # answered at once, re-listed
    wait_until 10 removed_is $((base + 4)) ||
        die "tags/list without v1 and v2: $(stats_field removed_upstream) marked, expected $((base + 4))"
    ls_out="$(ls "$MNT/hubh/test/hello")"
    [[ "$ls_out" != *v1* ]] || die "hubh (hide) lists the removed tag: $ls_out"
    assert_contains "$ls_out" stays "hubh's listing keeps the tag still there"
    expect_fail_with "Permission denied" ls "$MNT/hubh/test/hello/v1"
    assert_contains "$(ls "$MNT/hubk/test/hello")" v1 "hubk (keep) lists the removed tag"
    [[ "$(xattr removed "$MNT/hubk/test/hello/v1")" == removed-upstream\ * ]] ||
        die "user.upstreamfs.removed of hubk's v1: '$(xattr removed "$MNT/hubk/test/hello/v1")'"
    assert_sha256 "$MNT/hubk/test/hello/v1/blobs/sha256/$blob" "$blob"
    expect_ok upfs cache purge hubh/test/hello@v1
    assert_eq "$OUT" "purged hubh/test/hello/v1" "purge of a tag"
    removed_is $((base + 3)) || die "after the purge of hubh's v1: $(stats_field removed_upstream) marked"
}

t_docker_404() {
    local base
    base="$(stats_field removed_upstream)"
    cp -r "$MNT/hubk/test/hello/stays" "$T/hubk-stays"
    rm -rf -- "${TAGS:?}/stays"
    # not listed again, but its index.json is asked for past the TTL: the manifest is 404
    sleep 1.2
    cat "$MNT/hubk/test/hello/stays/index.json" >/dev/null 2>&1 || true
    wait_until 10 removed_is $((base + 1)) ||
        die "the tag whose manifest is 404: $(stats_field removed_upstream) marked, expected $((base + 1))"
    [[ "$(xattr removed "$MNT/hubk/test/hello/stays")" == removed-upstream\ * ]] ||
        die "user.upstreamfs.removed of hubk's stays: '$(xattr removed "$MNT/hubk/test/hello/stays")'"
}

check --setup "npm: cache a version through both proxies, unpublish it, revalidate" t_npm_setup
check "npm hide: out of ls, EACCES by path, cause policy in the shim, not in the packument" t_npm_hidden
check "npm keep: listed, served, user.upstreamfs.removed, /metrics and cache stats" t_npm_kept
check "npm: a version that comes back is unmarked; removed again, marked again" t_npm_comes_back
check "cache purge deletes the marked version, its blob once nothing names it" t_npm_purge
check "pypi: a file deleted from the page is marked, hidden, purged" t_pypi_removed
check "docker: tags gone from tags/list are marked; hide, keep, purge" t_docker
check "docker: a tag whose manifest answers 404 is marked" t_docker_404
check "pypi: a yanked file stays served (pip ==), data-yanked in the pages, not marked" t_pypi_yanked
finish
