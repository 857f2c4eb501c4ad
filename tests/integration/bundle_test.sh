#!/bin/bash
# tests/integration/bundle_test.sh -- a dependency set in, a verified bundle out, and back in.
#
#     bash tests/integration/bundle_test.sh build/upstreamfs      (as root; /dev/fuse)
#
# Connected side (state A, a mount with its shim): an npm proxy "js" on the fixture registry
# tests/integration/npm/registry.py, a pypi proxy "py" and a helm proxy "charts" on one
# lib/upstream.py tree (tests/integration/pypi/build.py, fixtures_helm), a docker proxy "hub" on
# docker-registry. The lockfiles: a package-lock.json that npm install through the shim wrote
# (the cache is evicted after it), a requirements.txt with --hash pins, a Chart.lock and an image
# list, a Maven dependency:list (proxy "mvn", fixtures_maven). `prefetch --from` fetches each set (one upstream GET per artifact; a wrong --hash is a
# failure of that item with cause digest); `export --from` writes a bundle of each (nothing
# fetched again); `export --since` writes a delta with one new npm version. Then every upstream
# is stopped for good.
# Air-gapped side (state B, no upstream at all): `registry import` of each bundle into a registry
# of the same name; through B's shim `npm ci` installs the lock, pip installs and downloads the
# pins with --require-hashes, the chart downloads through the registry's index.yaml, skopeo
# copies the image, the jar downloads; every byte is checked by sha256. The delta adds its one version on top.
# A bundle with one corrupted file, or one missing, is refused whole: nothing of it is visible.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/docker/registry.sh"
source "$(dirname "${BASH_SOURCE[0]}")/shim/v2.sh"
docker_need_tools
command -v npm >/dev/null || die "npm is missing (tools/deps.sh --test installs it)"
PIP=(/usr/bin/python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || die "Debian's pip is missing (tools/deps.sh --test installs python3-pip)"
/usr/bin/python3 -c 'import setuptools, wheel' 2>/dev/null ||
    die "setuptools and wheel are missing (tools/deps.sh --test installs python3-setuptools python3-wheel)"
source "$(dirname "${BASH_SOURCE[0]}")/npm/lab.sh"
BUILD_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")/pypi" && pwd)/build.py"

# ---- upstreams ---------------------------------------------------------------------------------
"$PYTHON" "$REGISTRY_PY" build "$T/npmfix"
npm_lab_start "$T/npmfix"
reg_count() {
    "${CURL[@]}" "${REG_URL}_control/counts" |
        "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"
}
npm_field() { # npm_field TARBALL FIELD: from the fixture's expect.json
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tarballs"][sys.argv[2]][sys.argv[3]])' \
        "$T/npmfix/expect.json" "$1" "$2"
}

mkdir -p "$T/www"
upstream_start "$T/www" --quiet
"$PYTHON" "$BUILD_PY" "$T/www/py"
fsha() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["sha256"])' "$T/www/expect.json" "$1"; }
fixtures_helm "$T/www/helm" "$T/www/other" "${UPSTREAM_URL}other"
fixtures_maven "$T/www/maven"
JAR=com/example/demo/1.0/demo-1.0.jar
upstream_total() { upstream_counts | "$PYTHON" -c 'import json,sys; print(sum(json.load(sys.stdin).values()))'; }
WHL=upfs_demo-1.0.0-py3-none-any.whl
SDIST=upfs_sdist-1.0.0.tar.gz

OCI="$T/oci"
D_V1="$(mkimage "$OCI" v1 --text bundle --big 150000)"
registry_start a open
REG="127.0.0.1:$REG_PORT_a"
push "oci:$OCI:v1" "$REG/team/app:v1"

# ---- connected side ----------------------------------------------------------------------------
MNT_A="$T/mnt-a"
SA="$(free_port)"
S="http://127.0.0.1:$SA"
USB="$T/usb"
mkdir -p "$T/home" "$T/lock" "$USB"
: >"$T/npmrc"
upfs proxy create js --type npm --url "$REG_URL" >/dev/null
upfs proxy create py --type pypi --url "${UPSTREAM_URL}py/" >/dev/null
upfs proxy create charts --type helm --url "${UPSTREAM_URL}helm/" >/dev/null
upfs proxy create mvn --type maven --url "${UPSTREAM_URL}maven/" >/dev/null
upfs proxy create hub --type docker --source custom --url "http://$REG/" >/dev/null
upfs_mount "$MNT_A" -o "listen=127.0.0.1:$SA"
wait_for_port "$SA" 10 || die "the shim of state A is not listening"

# npm_in DIR REGISTRY_URL ARGS...: npm in project DIR (package.json made when missing) with a new
# cache; sets RC, OUT, ERR
npm_in() {
    local dir="$1" reg="$2"
    shift 2
    mkdir -p "$dir"
    [[ -e "$dir/package.json" ]] ||
        printf '{"name":"proj","version":"1.0.0","private":true}\n' >"$dir/package.json"
    rm -rf "$dir.cache"
    run_capture with_timeout 180 env -i PATH="$PATH" HOME="$T/home" \
        npm --prefix "$dir" --registry "$reg" --cache "$dir.cache" \
        --userconfig "$T/npmrc" --no-update-notifier --no-audit --no-fund --loglevel warn "$@"
}
# pip_run ARGS...: Debian's pip, isolated, in an empty environment; sets RC, OUT, ERR
pip_run() {
    run_capture with_timeout 180 env -i PATH=/usr/bin:/bin HOME="$T/home" \
        "${PIP[@]}" "$1" --isolated --disable-pip-version-check --no-cache-dir --no-input "${@:2}"
}
# json_of FILE EXPR: a Python expression over the JSON document in FILE (j)
json_of() { "$PYTHON" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

DEMO=upfs-demo/-/upfs-demo-1.0.0.tgz
UTIL=@upfs/util/-/util-1.1.0.tgz
UTIL_OLD=@upfs/util/-/util-1.0.0.tgz

t_lockfiles() {
    npm_in "$T/proj" "$S/js/" install upfs-demo
    ((RC == 0)) || die "npm install upfs-demo through the shim failed ($RC): $ERR"
    cp "$T/proj/package-lock.json" "$T/lock/package-lock.json"
    upfs cache evict js >/dev/null
    cat >"$T/lock/requirements.txt" <<EOF
# pinned with hashes
upfs-demo==1.0.0 \\
    --hash=sha256:$(fsha "$WHL")
Upfs_Sdist==1.0.0 --hash=sha256:$(fsha "$SDIST")
EOF
    cat >"$T/lock/Chart.lock" <<EOF
dependencies:
- name: alpha
  repository: ${UPSTREAM_URL}helm/
  version: 0.1.0
- name: beta
  repository: ${UPSTREAM_URL}helm/
  version: 1.2.3
digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
generated: "2024-01-01T00:00:00Z"
EOF
    printf '# the images\n%s/team/app:v1\n' "$REG" >"$T/lock/images.txt"
    printf '[INFO] The following files have been resolved:\n%s\n%s\n' \
        '[INFO]    com.example:demo:jar:1.0:compile' \
        '[INFO]    com.example:demo:jar:sources:1.0:test -- module demo' >"$T/lock/dependencies.txt"
}
check --setup "the lockfiles: npm install's package-lock.json, requirements.txt, Chart.lock, images, mvn" t_lockfiles

# prefetch_from FILE KEY: prefetch --from --json; output in $T/pf-KEY.json, must succeed
prefetch_from() {
    upfs prefetch --from "$T/lock/$1" --json "$2" >"$T/pf-$2.json" 2>"$T/pf-$2.err" ||
        die "prefetch --from $1 $2 failed: $(cat "$T/pf-$2.err")"
    assert_eq "$(json_of "$T/pf-$2.json" 'j["failed"]')" 0 "failed items of $1"
}

t_prefetch() {
    local before
    before="$(reg_count "GET /$DEMO")"
    prefetch_from package-lock.json js
    assert_eq "$(json_of "$T/pf-js.json" 'sorted(i["item"] for i in j["items"])')" \
        "['@upfs/util@1.1.0', 'upfs-demo@1.0.0']" "the npm items"
    assert_eq "$(json_of "$T/pf-js.json" '[f["sha256"] for f in j["files"] if f["path"] == "js/'"$DEMO"'"][0]')" \
        "$(npm_field "$DEMO" sha256)" "sha256 of the upfs-demo tarball"
    assert_eq "$(reg_count "GET /$DEMO")" $((before + 1)) "GETs of the upfs-demo tarball by prefetch"
    prefetch_from requirements.txt py
    assert_eq "$(json_of "$T/pf-py.json" 'sorted((f["path"], f["sha256"]) for f in j["files"])')" \
        "[('py/upfs-demo/$WHL', '$(fsha "$WHL")'), ('py/upfs-sdist/$SDIST', '$(fsha "$SDIST")')]" \
        "the pip files"
    assert_eq "$(upstream_count GET "/py/packages/$WHL")" 1 "GETs of the wheel"
    prefetch_from Chart.lock charts
    assert_eq "$(upstream_count GET /helm/charts/alpha-0.1.0.tgz)" 1 "GETs of the alpha chart"
    assert_eq "$(upstream_count GET /other/beta-1.2.3.tgz)" 1 "GETs of the beta chart"
    prefetch_from images.txt hub
    assert_eq "$(json_of "$T/pf-hub.json" 'j["items"][0]["item"]')" "team/app:v1" "the image item"
    assert_contains "$(json_of "$T/pf-hub.json" '[f["path"] for f in j["files"]]')" "hub/team/app/v1/oci-layout" \
        "the image's layout files"
    prefetch_from dependencies.txt mvn
    assert_eq "$(json_of "$T/pf-mvn.json" 'sorted(f["path"] for f in j["files"])')" \
        "['mvn/com/example/demo/1.0/demo-1.0-sources.jar', 'mvn/$JAR', 'mvn/com/example/demo/1.0/demo-1.0.pom']" \
        "the maven files (the artifacts and their pom)"
    assert_eq "$(upstream_count GET "/maven/$JAR")" 1 "GETs of the jar"
}
check --setup "prefetch --from each lockfile: every item fetched once, with its sha256" t_prefetch

t_prefetch_digest() {
    printf 'upfs-demo==1.0.0 --hash=sha256:%064d\n' 0 >"$T/lock/bad-requirements.txt"
    local rc=0
    upfs prefetch --from "$T/lock/bad-requirements.txt" --json py >"$T/bad.json" 2>"$T/bad.err" || rc=$?
    assert_eq "$rc" 1 "exit status of a prefetch whose hash does not match"
    assert_eq "$(json_of "$T/bad.json" 'j["items"][0]["cause"]')" digest "the item's cause"
    assert_contains "$(cat "$T/bad.err")" "upfs-demo==1.0.0: py/upfs-demo/$WHL: its sha256 does not match" \
        "the failure line"
    assert_contains "$(cat "$T/bad.err")" "failed: upfs-demo==1.0.0 (cause digest)" "the summary"
}
check "prefetch --from: a file that does not match the lockfile's hash fails with cause digest" t_prefetch_digest

t_export() {
    local demo_gets wheel_gets
    demo_gets="$(reg_count "GET /$DEMO")"
    wheel_gets="$(upstream_count GET "/py/packages/$WHL")"
    upfs export js --from "$T/lock/package-lock.json" "$USB/js" >/dev/null 2>"$T/export.err" ||
        die "export js failed: $(cat "$T/export.err")"
    upfs export py --from "$T/lock/requirements.txt" "$USB/py" >/dev/null
    upfs export charts --from "$T/lock/Chart.lock" "$USB/charts" >/dev/null
    upfs export hub --from "$T/lock/images.txt" "$USB/hub" >/dev/null
    upfs export mvn --from "$T/lock/dependencies.txt" "$USB/mvn" >/dev/null
    assert_eq "$(reg_count "GET /$DEMO")" "$demo_gets" "GETs of the tarball by export (cached)"
    assert_eq "$(upstream_count GET "/py/packages/$WHL")" "$wheel_gets" "GETs of the wheel by export"
    assert_eq "$(json_of "$USB/js/bundle.json" '(j["format"], j["source"], j["extends"])')" \
        "(1, {'key': 'js', 'type': 'npm'}, None)" "bundle.json's header"
    assert_eq "$(json_of "$USB/js/bundle.json" 'sorted(f["path"] for f in j["files"])')" \
        "['$UTIL', '@upfs/util/package.json', '$DEMO', 'upfs-demo/package.json']" "the npm bundle's files"
    assert_eq "$(json_of "$USB/js/bundle.json" '[f["for"] for f in j["files"] if f["path"] == "'"$DEMO"'"][0]')" \
        "['upfs-demo@1.0.0']" "what the tarball was fetched for"
    assert_sha256 "$USB/js/$DEMO" "$(npm_field "$DEMO" sha256)"
    assert_sha256 "$USB/py/upfs-demo/$WHL" "$(fsha "$WHL")"
    assert_sha256 "$USB/charts/charts/alpha-0.1.0.tgz" "$(fixture_sha256 "$T/www/helm" charts/alpha-0.1.0.tgz)"
    [[ -f "$USB/charts/index.yaml" && -f "$USB/hub/team/app/v1/oci-layout" ]] ||
        die "index.yaml or the image layout is missing: $(cd "$USB" && find . -type f)"
    local f
    for f in "$USB"/hub/team/app/v1/blobs/sha256/*; do assert_sha256 "$f" "$(basename "$f")"; done
    # every listed file is there with its sha256 and size, and nothing else
    "$PYTHON" - "$USB" <<'EOF' || die "a bundle does not match its bundle.json"
import hashlib, json, os, sys
for b in ("js", "py", "charts", "hub", "mvn"):
    root = os.path.join(sys.argv[1], b)
    listed = {f["path"]: f for f in json.load(open(os.path.join(root, "bundle.json")))["files"]}
    found = set()
    for d, _, files in os.walk(root):
        for n in files:
            rel = os.path.relpath(os.path.join(d, n), root)
            if rel != "bundle.json":
                found.add(rel)
    assert found == set(listed), (b, found ^ set(listed))
    for p, f in listed.items():
        data = open(os.path.join(root, p), "rb").read()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"], p
EOF
    ! ls -d "$USB"/*.partial-* 2>/dev/null || die "a partial bundle was left behind"
}
check --setup "export --from: a bundle per lockfile, every file listed with its sha256 and size" t_export

t_delta() {
    # the same lock plus an older @upfs/util nested below upfs-demo: one new version
    "$PYTHON" - "$T/lock/package-lock.json" "$T/lock/package-lock-2.json" "$REG_URL" \
        "$(npm_field "$UTIL_OLD" integrity)" <<'EOF'
import json, sys
lock = json.load(open(sys.argv[1]))
lock["packages"]["node_modules/upfs-demo/node_modules/@upfs/util"] = {
    "version": "1.0.0", "resolved": sys.argv[3] + "@upfs/util/-/util-1.0.0.tgz",
    "integrity": sys.argv[4]}
json.dump(lock, open(sys.argv[2], "w"))
EOF
    upfs export js --from "$T/lock/package-lock-2.json" --since "$USB/js" "$USB/js-delta" >/dev/null
    assert_eq "$(json_of "$USB/js-delta/bundle.json" '[f["path"] for f in j["files"]]')" "['$UTIL_OLD']" \
        "the delta's files"
    assert_eq "$(json_of "$USB/js-delta/bundle.json" 'j["extends"]["sha256"]')" "$(sha256_of "$USB/js/bundle.json")" \
        "the bundle the delta extends"
    assert_sha256 "$USB/js-delta/$UTIL_OLD" "$(npm_field "$UTIL_OLD" sha256)"
}
check "export --since: a delta holds only the new version and names the bundle it extends" t_delta

t_export_cached() {
    local gets
    gets="$(upstream_total)"
    upfs export py "$USB/py-cached" >/dev/null
    # everything cached below py, from the index alone: the pinned files and nothing fetched
    assert_eq "$(upstream_total)" "$gets" "upstream requests of an export without --from"
    "$PYTHON" - "$USB/py/bundle.json" "$USB/py-cached/bundle.json" <<'EOF2' || die "the cached export lacks files of the --from bundle"
import json, sys
want = {(f["path"], f["sha256"]) for f in json.load(open(sys.argv[1]))["files"]}
got = {(f["path"], f["sha256"]) for f in json.load(open(sys.argv[2]))["files"]}
assert want <= got, want - got
EOF2
}
check "export without --from: everything cached below the key, nothing fetched" t_export_cached

upfs_unmount "$MNT_A"
npm_lab_stop
upstream_stop
registry_stop a

# ---- air-gapped side ---------------------------------------------------------------------------
STATE="$T/state-b"
MNT_B="$T/mnt-b"
SB="$(free_port)"
B="http://127.0.0.1:$SB"
upfs_register_mount "$MNT_B"
t_import() {
    local k t
    for k in js:npm py:pypi charts:helm hub:docker mvn:maven; do
        upfs registry create "${k%%:*}" --type "${k#*:}" >/dev/null
        upfs registry import "${k%%:*}" "$USB/${k%%:*}" >"$T/import.out" 2>&1 ||
            die "registry import of the ${k%%:*} bundle failed: $(cat "$T/import.out")"
        t="$(json_of "$USB/${k%%:*}/bundle.json" 'len(j["files"])')"
        assert_contains "$(cat "$T/import.out")" "imported $t file(s)" "the import of ${k%%:*}"
    done
    upfs_mount "$MNT_B" -o "listen=127.0.0.1:$SB"
    wait_for_port "$SB" 10 || die "the shim of state B is not listening"
    assert_sha256 "$MNT_B/js/$DEMO" "$(npm_field "$DEMO" sha256)"
}
check --setup "air-gapped side: registry import of each bundle" t_import

t_npm_ci() {
    mkdir -p "$T/ci"
    cp "$T/proj/package.json" "$T/ci/"
    sed "s#$S/js/#$B/js/#g" "$T/lock/package-lock.json" >"$T/ci/package-lock.json"
    npm_in "$T/ci" "$B/js/" ci
    ((RC == 0)) || die "npm ci offline failed ($RC): $ERR"
    assert_sha256 "$T/ci/node_modules/upfs-demo/index.js" "$(sha256_of "$T/proj/node_modules/upfs-demo/index.js")"
    assert_sha256 "$T/ci/node_modules/@upfs/util/index.js" "$(sha256_of "$T/proj/node_modules/@upfs/util/index.js")"
}
check "offline: npm ci of the lock through the shim" t_npm_ci

t_pip() {
    pip_run download --index-url "$B/py/simple/" --no-deps --no-build-isolation --require-hashes \
        -d "$T/pipdl" -r "$T/lock/requirements.txt"
    ((RC == 0)) || die "pip download offline failed ($RC): $ERR $OUT"
    assert_sha256 "$T/pipdl/$WHL" "$(fsha "$WHL")"
    assert_sha256 "$T/pipdl/$SDIST" "$(fsha "$SDIST")"
    grep -A1 '^upfs-demo' "$T/lock/requirements.txt" >"$T/whl-req.txt"
    pip_run install --index-url "$B/py/simple/" --no-deps --require-hashes --target "$T/site" \
        -r "$T/whl-req.txt"
    ((RC == 0)) || die "pip install offline failed ($RC): $ERR $OUT"
    ls -d "$T/site"/upfs_demo* >/dev/null || die "pip install left no upfs_demo in $T/site"
}
check "offline: pip download and pip install of the pins (--require-hashes) through the shim" t_pip

t_chart() {
    http_get "$B/charts/index.yaml"
    assert_eq "$HTTP_STATUS" 200 "GET of the registry's index.yaml"
    local url
    url="$(awk '/^ *- .*alpha-0\.1\.0\.tgz/{print $2; exit}' "$T/body")"
    assert_eq "$url" charts/alpha-0.1.0.tgz "the chart's URL in index.yaml"
    "${CURL[@]}" -o "$T/alpha.tgz" "$B/charts/$url" || die "the chart download failed"
    assert_sha256 "$T/alpha.tgz" "$(fixture_sha256 "$T/www/helm" charts/alpha-0.1.0.tgz)"
}
check "offline: a chart downloads through the imported index.yaml" t_chart

t_image() {
    copy_from "127.0.0.1:$SB/hub/team/app:v1" "dir:$T/pulled"
    assert_eq "$(copy_digest "$T/pulled")" "$D_V1" "the pulled image's manifest digest"
    dir_verified "$T/pulled"
}
check "offline: skopeo copy of the image through the shim" t_image

t_maven() {
    "${CURL[@]}" -o "$T/demo.jar" "$B/mvn/$JAR" || die "the jar download failed"
    assert_sha256 "$T/demo.jar" "$(fixture_sha256 "$T/www/maven" "$JAR")"
}
check "offline: the maven artifact through the shim" t_maven

t_delta_import() {
    http_get "$B/js/$UTIL_OLD"
    assert_eq "$HTTP_STATUS" 404 "the new version before the delta"
    upfs registry import js "$USB/js-delta" >/dev/null
    "${CURL[@]}" -o "$T/util-old.tgz" "$B/js/$UTIL_OLD" || die "the delta's version is not served"
    assert_sha256 "$T/util-old.tgz" "$(npm_field "$UTIL_OLD" sha256)"
    assert_sha256 "$MNT_B/js/$DEMO" "$(npm_field "$DEMO" sha256)"
}
check "a delta bundle adds its version on top of the first import" t_delta_import

# refused BUNDLE MESSAGE: import into a new pypi registry fails with MESSAGE, nothing lands
refused() {
    local name="bad$RANDOM" before rc=0
    upfs registry create "$name" --type pypi >/dev/null
    before="$(stats_field local_objects)"
    upfs registry import "$name" "$1" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
    assert_eq "$rc" 1 "exit status of importing a damaged bundle"
    assert_contains "$(cat "$T/bad.err")" "$2" "the refusal"
    assert_eq "$(stats_field local_objects)" "$before" "local objects after the refused import"
    assert_eq "$(ls -A "$MNT_B/$name" | wc -l)" 0 "entries of the refused bundle in the mount"
}
t_corrupt() {
    cp -r "$USB/py" "$T/badpy"
    printf 'x' >>"$T/badpy/upfs-sdist/$SDIST"
    refused "$T/badpy" "upfs-sdist/$SDIST does not match bundle.json (its size differs); nothing imported"
    cp "$USB/py/upfs-sdist/$SDIST" "$T/badpy/upfs-sdist/$SDIST"
    printf 'X' | dd of="$T/badpy/upfs-sdist/$SDIST" bs=1 seek=100 conv=notrunc 2>/dev/null
    refused "$T/badpy" "upfs-sdist/$SDIST does not match bundle.json (its sha256 differs)"
    rm "$T/badpy/upfs-sdist/$SDIST"
    refused "$T/badpy" "upfs-sdist/$SDIST is missing; nothing imported"
}
check "a bundle with one corrupted or missing file is refused whole" t_corrupt

finish
