#!/bin/bash
# tests/integration/policy_test.sh -- the release cooldown and the package rules (docs/policy.md)
# through the shim and the mount, against a local npm registry and a local PyPI JSON index.
#
#     bash tests/integration/policy_test.sh build/upstreamfs
#
# Upstreams (on 127.0.0.1, each logging every request):
#   tests/integration/npm/registry.py: upfs-fresh and @upfs/fresh with 1.0.0 published on
#     2024-01-01 and 1.1.0 published a day ago (the full document's "time"); upfs-evil 1.0.0;
#   lib/upstream.py over tests/integration/pypi/build.py's tree: JSON pages (PEP 691) with
#     PEP 700 upload times: upfs-fresh and upfs-inhouse 1.0.0 (2024-01-01) and 1.1.0 (a day
#     ago); upfs-evil 1.0.0.
# Proxies: npm "npm" --min-age 7d --min-age-exempt '@upfs/*' --deny upfs-evil (and a registry
# "npmall" over it), and a pypi proxy "py" --min-age 7d --min-age-exempt upfs-inhouse --deny
# upfs-evil.
#
# Asserts:
#   npm install upfs-fresh through the shim installs 1.0.0 (the newest old-enough version);
#     @upfs/fresh (exempt) installs 1.1.0; the document the shim serves, for the abbreviated
#     Accept too, lists only 1.0.0 in versions and time, dist-tags.latest 1.0.0; the upstream
#     was asked only for full documents (the times are in them); a registry over the proxy
#     serves the same document and refuses the same tarball and name;
#   the hidden tarball is refused before any request: the shim answers 403 naming cause policy,
#     the mount's cat fails with EACCES and user.upstreamfs.error names policy; ls of
#     upfs-fresh/-/ lists 1.0.0 only; the upstream saw no request for the 1.1.0 tarball;
#   a denied name never reaches the upstream: npm install upfs-evil fails, the shim answers 403,
#     ls in the mount fails with EACCES, and the registry's request log has no upfs-evil;
#   pip download upfs-fresh through the shim gets the 1.0.0 wheel (its sha256); upfs-inhouse
#     (exempt) 1.1.0; ls of the project lists 1.0.0 only; the 1.1.0 wheel is refused (403 and
#     EACCES) with no request for it; upfs-evil fails and its page is never asked for;
#   Maven --deny 'com.example:demo:1.*' and Helm --deny 'alpha@<1': the denied artifact and chart
#     fail with EACCES and the upstream saw no request for them (nor the jar's checksum); the
#     chart's version is left out of index.yaml; another chart still reads; demo's
#     maven-metadata.xml leaves 1.0 out (no release left; latest 2.0-SNAPSHOT) and its .sha1 and
#     .md5 are of the document served; a document with nothing denied is the upstream's bytes;
#   proxy update npm --min-age 0 while mounted: the document lists 1.1.0 within seconds (it is
#     made again, although its --metadata-ttl has not run out); the deny rule still holds;
#   the proxies' settings: proxy show --json has min_age 604800, the exempt and deny lists; a
#     rule in the wrong syntax for the type is refused with its message.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
command -v npm >/dev/null || die "npm is missing (tools/deps.sh --test installs it)"
source "$(dirname "${BASH_SOURCE[0]}")/npm/lab.sh"
BUILD_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")/pypi" && pwd)/build.py"
PIP=(/usr/bin/python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || die "Debian's pip is missing (tools/deps.sh --test installs python3-pip)"

MNT="$T/mnt"
FIX="$T/fix"
"$PYTHON" "$REGISTRY_PY" build "$FIX"
"$PYTHON" "$BUILD_PY" "$T/repo"
fixtures_maven "$T/repo/maven"
upstream_start "$T/repo" --quiet
fixtures_helm "$T/repo/helm" "$T/repo/other" "${UPSTREAM_URL}other" # read from disk per request

npm_lab_start "$FIX"

reg_count() { # reg_count KEY: the npm fixture's count of KEY ("GET /upfs-fresh full")
    "${CURL[@]}" "${REG_URL}_control/counts" |
        "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"
}
reg_targets_with() { # reg_targets_with TEXT: how many requests the npm fixture saw naming TEXT
    "${CURL[@]}" "${REG_URL}_control/requests" |
        "$PYTHON" -c 'import json,sys; print(sum(sys.argv[1] in r["target"] for r in json.load(sys.stdin)))' "$1"
}
up_paths_with() { # up_paths_with TEXT: how many requests the PyPI upstream saw naming TEXT
    upstream_counts | "$PYTHON" -c 'import json,sys; print(sum(v for k, v in json.load(sys.stdin).items() if sys.argv[1] in k))' "$1"
}
fsha() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["sha256"])' "$T/expect.json" "$1"; }

upfs proxy create npm --type npm --url "$REG_URL" --min-age 7d --min-age-exempt '@upfs/*' \
    --deny upfs-evil >/dev/null
upfs proxy create py --type pypi --url "$UPSTREAM_URL" --min-age 7d --min-age-exempt upfs-inhouse \
    --deny upfs-evil >/dev/null
upfs registry create npmall --type npm --upstream npm >/dev/null
upfs proxy create mvn --type maven --url "${UPSTREAM_URL}maven/" --deny 'com.example:demo:1.*' \
    >/dev/null
upfs proxy create charts --type helm --url "${UPSTREAM_URL}helm/" --deny 'alpha@<1' >/dev/null
SPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$SPORT"
wait_for_port "$SPORT" 10 || die "mount -o listen=127.0.0.1:$SPORT: the shim is not listening"
S="http://127.0.0.1:$SPORT"
mkdir -p "$T/home"
: >"$T/npmrc"

npm_in() { # npm_in DIR ARGS...: npm in a new project DIR against the shim's /npm/; RC, OUT, ERR
    local dir="$1"
    shift
    mkdir -p "$dir"
    printf '{"name":"proj","version":"1.0.0","private":true}\n' >"$dir/package.json"
    run_capture with_timeout 180 env -i PATH="$PATH" HOME="$T/home" \
        npm --prefix "$dir" --registry "$S/${NPM_ROUTE:-npm}/" --cache "$dir.cache" \
        --userconfig "$T/npmrc" --no-update-notifier --no-audit --no-fund --loglevel warn "$@"
}
installed_version() { # installed_version DIR PACKAGE
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$1/node_modules/$2/package.json"
}
pip_download() { # pip_download DEST ARGS...: pip download through the shim's /py/; RC, OUT, ERR
    local dest="$1"
    shift
    run_capture with_timeout 180 env -i PATH=/usr/bin:/bin HOME="$T/home" \
        "${PIP[@]}" download --isolated --disable-pip-version-check --no-cache-dir --no-input \
        --index-url "$S/${PY_ROUTE:-py}/simple/" --no-deps -d "$dest" "$@"
}
# expect_eacces CMD...: the command fails with "Permission denied"
expect_eacces() { expect_fail_with "Permission denied" "$@"; }

# ---- settings ----------------------------------------------------------------------------------
t_settings() {
    local j
    j="$(upfs proxy show npm --json)"
    assert_eq "$("$PYTHON" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["min_age"], j["min_age_unknown"], j["min_age_exempt"], j["deny"])' "$j")" \
        "604800 deny ['@upfs/*'] ['upfs-evil']" "npm proxy's policy settings"
    expect_fail_with "deny: x@>>1 is not NAME[@RANGE] (an npm semver range)" \
        upfs proxy update npm --deny 'x@>>1'
    expect_fail_with "allow: requests@=>2 is not NAME[@SPECIFIERS] (PEP 440" \
        upfs proxy update py --allow 'requests@=>2'
    expect_fail_with "min_age: must be a whole number of seconds" \
        upfs proxy update py --min-age 7days
}
check "policy settings: shown, and rules checked in their type's syntax" t_settings

# ---- npm ---------------------------------------------------------------------------------------
t_npm_cooldown() {
    npm_in "$T/n1" install upfs-fresh
    ((RC == 0)) || die "npm install upfs-fresh failed ($RC): $ERR"
    assert_eq "$(installed_version "$T/n1" upfs-fresh)" 1.0.0 "upfs-fresh installed (cooldown)"
    npm_in "$T/n2" install @upfs/fresh
    ((RC == 0)) || die "npm install @upfs/fresh failed ($RC): $ERR"
    assert_eq "$(installed_version "$T/n2" @upfs/fresh)" 1.1.0 "@upfs/fresh installed (exempt)"
    assert_eq "$(reg_count "GET /upfs-fresh abbreviated")" 0 "abbreviated documents asked for"
    assert_eq "$(reg_targets_with upfs-fresh-1.1.0)" 0 "requests for the hidden tarball"
}
check --setup "npm install through the shim: the newest old-enough version; exempt names not held back" t_npm_cooldown

t_npm_document() {
    http_get "$S/npm/upfs-fresh" -H 'Accept: application/vnd.npm.install-v1+json'
    assert_eq "$HTTP_STATUS" 200 "GET /npm/upfs-fresh"
    assert_eq "$(json_field 'sorted(j["versions"])')" "['1.0.0']" "versions"
    assert_eq "$(json_field 'j["dist-tags"]["latest"]')" 1.0.0 "dist-tags.latest"
    assert_eq "$(json_field '"1.1.0" in j.get("time", {})')" False "time of the hidden version"
    http_get "$S/npm/@upfs%2ffresh" -H 'Accept: application/json'
    assert_eq "$(json_field 'sorted(j["versions"])')" "['1.0.0', '1.1.0']" "versions of the exempt"
    assert_eq "$(json_field 'j["dist-tags"]["latest"]')" 1.1.0 "dist-tags.latest of the exempt"
    # a registry over the proxy shows what the proxy shows
    http_get "$S/npmall/upfs-fresh" -H 'Accept: application/json'
    assert_eq "$HTTP_STATUS" 200 "GET /npmall/upfs-fresh"
    assert_eq "$(json_field 'sorted(j["versions"])')" "['1.0.0']" "versions through the registry"
    assert_eq "$(json_field 'j["dist-tags"]["latest"]')" 1.0.0 "dist-tags.latest through the registry"
    http_get "$S/npmall/upfs-fresh/-/upfs-fresh-1.1.0.tgz"
    assert_eq "$HTTP_STATUS" 403 "GET of the hidden tarball through the registry"
    http_get "$S/npmall/upfs-evil" -H 'Accept: application/json'
    assert_eq "$HTTP_STATUS" 403 "GET of a denied name through the registry"
}
check "the npm document lists only the old-enough versions, dist-tags moved back" t_npm_document

t_npm_refused() {
    http_get "$S/npm/upfs-fresh/-/upfs-fresh-1.1.0.tgz"
    assert_eq "$HTTP_STATUS" 403 "GET of the hidden tarball"
    assert_contains "$BODY" "cause policy" "the shim's error body"
    assert_contains "$BODY" "min-age" "the shim's error body"
    expect_eacces cat "$MNT/npm/upfs-fresh/-/upfs-fresh-1.1.0.tgz"
    assert_contains "$(xattr error "$MNT/npm/upfs-fresh/-")" "policy" "user.upstreamfs.error"
    assert_eq "$(ls "$MNT/npm/upfs-fresh/-/")" upfs-fresh-1.0.0.tgz "ls of upfs-fresh/-/"
    assert_eq "$(reg_targets_with upfs-fresh-1.1.0)" 0 "requests for the hidden tarball"
    assert_contains "$(cat "$STATE/upstreamfs.log")" \
        "npm proxy npm: upfs-fresh@1.1.0 refused: published less than 604800s ago" "the log"
}
check "a hidden version's tarball is refused with cause policy, no upstream request" t_npm_refused

t_npm_denied() {
    npm_in "$T/n3" install upfs-evil
    ((RC != 0)) || die "npm install upfs-evil succeeded"
    assert_contains "$ERR" "403" "npm's error"
    http_get "$S/npm/upfs-evil" -H 'Accept: application/json'
    assert_eq "$HTTP_STATUS" 403 "GET /npm/upfs-evil"
    assert_contains "$BODY" "cause policy" "the shim's error body"
    expect_eacces ls "$MNT/npm/upfs-evil"
    assert_contains "$(xattr error "$MNT/npm")" "policy" "user.upstreamfs.error of the proxy"
    assert_eq "$(reg_targets_with upfs-evil)" 0 "requests for upfs-evil"
}
check "a denied npm name never reaches the upstream" t_npm_denied

# ---- PyPI --------------------------------------------------------------------------------------
t_pip_cooldown() {
    pip_download "$T/d1" upfs-fresh
    ((RC == 0)) || die "pip download upfs-fresh failed ($RC): $ERR $OUT"
    assert_eq "$(ls "$T/d1")" upfs_fresh-1.0.0-py3-none-any.whl "pip's download (cooldown)"
    assert_sha256 "$T/d1/upfs_fresh-1.0.0-py3-none-any.whl" "$(fsha upfs_fresh-1.0.0-py3-none-any.whl)"
    pip_download "$T/d2" upfs-inhouse
    ((RC == 0)) || die "pip download upfs-inhouse failed ($RC): $ERR $OUT"
    assert_eq "$(ls "$T/d2")" upfs_inhouse-1.1.0-py3-none-any.whl "pip's download (exempt)"
    assert_eq "$(ls "$MNT/py/upfs-fresh/")" upfs_fresh-1.0.0-py3-none-any.whl "ls of upfs-fresh"
    assert_eq "$(up_paths_with upfs_fresh-1.1.0)" 0 "requests for the hidden wheel"
}
check --setup "pip download through the shim: the newest old-enough version; exempt names not held back" t_pip_cooldown

t_pip_refused() {
    local whl=upfs_fresh-1.1.0-py3-none-any.whl
    http_get "$S/py/upfs-fresh/$whl"
    assert_eq "$HTTP_STATUS" 403 "GET of the hidden wheel"
    assert_contains "$BODY" "cause policy" "the shim's error body"
    expect_eacces cat "$MNT/py/upfs-fresh/$whl"
    assert_contains "$(xattr error "$MNT/py/upfs-fresh")" "policy" "user.upstreamfs.error"
    http_get "$S/py/simple/upfs-fresh/" -H 'Accept: application/vnd.pypi.simple.v1+json'
    assert_eq "$(json_field '[f["filename"] for f in j["files"]]')" "['upfs_fresh-1.0.0-py3-none-any.whl']" \
        "the JSON page's files"
    assert_eq "$(up_paths_with upfs_fresh-1.1.0)" 0 "requests for the hidden wheel"
}
check "a hidden PyPI file is refused with cause policy, no upstream request" t_pip_refused

t_pip_denied() {
    pip_download "$T/d3" upfs-evil
    ((RC != 0)) || die "pip download upfs-evil succeeded"
    http_get "$S/py/simple/upfs-evil/"
    assert_eq "$HTTP_STATUS" 403 "GET /py/simple/upfs-evil/"
    assert_contains "$BODY" "cause policy" "the shim's error body"
    expect_eacces ls "$MNT/py/upfs-evil"
    assert_eq "$(up_paths_with upfs-evil)$(up_paths_with upfs_evil)" 00 "requests for upfs-evil"
}
check "a denied PyPI name never reaches the upstream" t_pip_denied

# ---- Maven and Helm ----------------------------------------------------------------------------
t_maven_helm() {
    expect_eacces cat "$MNT/mvn/com/example/demo/1.0/demo-1.0.jar"
    assert_contains "$(cat "$STATE/upstreamfs.log")" \
        "maven proxy mvn: com.example:demo@1.0 refused by --deny com.example:demo:1.*" "the log"
    assert_eq "$(up_paths_with /maven/com/example/demo/1.0/demo-1.0.jar)" 0 \
        "requests for the denied jar and its checksums"
    expect_eacces cat "$MNT/charts/charts/alpha-0.1.0.tgz"
    local idx
    idx="$(cat "$MNT/charts/index.yaml")"
    [[ "$idx" != *alpha-0.1.0* ]] || die "index.yaml still lists the denied alpha 0.1.0: $idx"
    assert_contains "$idx" "charts/beta-1.2.3.tgz" "index.yaml keeps the other charts"
    assert_eq "$(up_paths_with alpha-0.1.0.tgz)" 0 "requests for the denied chart"
    expect_ok cat "$MNT/charts/charts/beta-1.2.3.tgz"
}
check "Maven and Helm: a denied version is refused before any request; others read" t_maven_helm

t_maven_metadata() {
    local md="$MNT/mvn/com/example/demo/maven-metadata.xml" xml
    xml="$(cat "$md")"
    [[ "$xml" != *"<version>1.0</version>"* ]] || die "maven-metadata.xml still lists 1.0: $xml"
    [[ "$xml" != *"<release>"* ]] || die "maven-metadata.xml names a release (1.0 is denied): $xml"
    assert_contains "$xml" "<version>2.0-SNAPSHOT</version>" "the versions left"
    assert_contains "$xml" "<latest>2.0-SNAPSHOT</latest>" "latest"
    # its checksum files are of the document served
    assert_eq "$(cat "$md.sha1")" "$(sha1sum <"$md" | cut -d' ' -f1)" "maven-metadata.xml.sha1"
    assert_eq "$(cat "$md.md5")" "$(md5sum <"$md" | cut -d' ' -f1)" "maven-metadata.xml.md5"
    # a document with nothing denied is the upstream's, byte for byte
    assert_eq "$(sha256sum <"$MNT/mvn/com/example/bad/maven-metadata.xml" | cut -d' ' -f1)" \
        "$(sha256sum <"$T/repo/maven/com/example/bad/maven-metadata.xml" | cut -d' ' -f1)" \
        "bad/maven-metadata.xml"
}
check "maven-metadata.xml leaves out the versions the rules refuse (latest, release, checksums follow)" t_maven_metadata

# ---- a change of the rules ---------------------------------------------------------------------
versions_now() { # versions_now: the versions /npm/upfs-fresh lists now
    http_get "$S/npm/upfs-fresh" -H 'Accept: application/json'
    json_field 'sorted(j["versions"])'
}
fresh_listed() { [[ "$(versions_now)" == "['1.0.0', '1.1.0']" ]]; }
t_rules_change() {
    assert_eq "$(versions_now)" "['1.0.0']" "versions before the change"
    upfs proxy update npm --min-age 0 >/dev/null
    # the document made under the old rules is made again (its --metadata-ttl is 600 s)
    wait_until 10 fresh_listed || die "after --min-age 0 the document still lists $(versions_now)"
    expect_eacces ls "$MNT/npm/upfs-evil" # --deny stays
}
check "proxy update --min-age 0: the running mount's document lists the new version at once" t_rules_change

# ---- what the cache already holds --------------------------------------------------------------
tgz_refused() { ! cat "$MNT/npm/upfs-fresh/-/upfs-fresh-1.1.0.tgz" >/dev/null 2>&1; }
whl_served() { cat "$MNT/py/upfs-fresh/upfs_fresh-1.1.0-py3-none-any.whl" >/dev/null 2>&1; }
whl_refused() { ! cat "$MNT/py/upfs-fresh/upfs_fresh-1.1.0-py3-none-any.whl" >/dev/null 2>&1; }
t_cached_refused() {
    local tgz="$MNT/npm/upfs-fresh/-/upfs-fresh-1.1.0.tgz" whl=upfs_fresh-1.1.0-py3-none-any.whl
    # cached with no cooldown (npm's was set to 0 above; py's now)
    upfs proxy update py --min-age 0 >/dev/null
    wait_until 10 whl_served || die "the 1.1.0 wheel is refused under --min-age 0"
    expect_ok cat "$tgz"
    local docs tgz_reqs whl_reqs
    tgz_reqs="$(reg_targets_with upfs-fresh-1.1.0)" # its HEAD (the size) and GET
    whl_reqs="$(up_paths_with "$whl")"
    ((tgz_reqs > 0 && whl_reqs > 0)) || die "the 1.1.0 files were not fetched: $tgz_reqs $whl_reqs"
    docs="$(reg_count "GET /upfs-fresh full")"
    upfs proxy update npm --min-age 7d >/dev/null
    upfs proxy update py --min-age 7d >/dev/null
    wait_until 10 tgz_refused || die "the cached 1.1.0 tarball is still served under --min-age 7d"
    wait_until 10 whl_refused || die "the cached 1.1.0 wheel is still served under --min-age 7d"
    expect_eacces cat "$tgz"
    expect_eacces cat "$MNT/py/upfs-fresh/$whl"
    http_get "$S/npm/upfs-fresh/-/upfs-fresh-1.1.0.tgz"
    assert_eq "$HTTP_STATUS" 403 "GET of the cached hidden tarball"
    assert_contains "$BODY" "cause policy" "the shim's error body"
    http_get "$S/py/upfs-fresh/$whl"
    assert_eq "$HTTP_STATUS" 403 "GET of the cached hidden wheel"
    assert_contains "$BODY" "cause policy" "the shim's error body"
    expect_ok cat "$MNT/npm/upfs-fresh/-/upfs-fresh-1.0.0.tgz"
    # the refusal read the cached documents: no request for the files nor the (fresh) packument
    assert_eq "$(reg_targets_with upfs-fresh-1.1.0)" "$tgz_reqs" "requests for the 1.1.0 tarball"
    assert_eq "$(up_paths_with "$whl")" "$whl_reqs" "requests for the 1.1.0 wheel"
    assert_eq "$(reg_count "GET /upfs-fresh full")" "$docs" "requests for the packument"
}
check "a version cached before --min-age was set is refused from the cache, no upstream request" t_cached_refused

# ---- a registry's own policy -------------------------------------------------------------------
cool_listed() { # cool_listed: the registry npmcool is served (the mount has reloaded)
    http_get "$S/npmcool/upfs-fresh" -H 'Accept: application/json'
    [[ "$HTTP_STATUS" == 200 ]]
}
t_registry_policy() {
    upfs proxy create npmraw --type npm --url "$REG_URL" >/dev/null
    upfs registry create npmcool --type npm --upstream npmraw --min-age 7d >/dev/null
    upfs proxy create pyraw --type pypi --url "$UPSTREAM_URL" >/dev/null
    upfs registry create pycool --type pypi --upstream pyraw >/dev/null
    upfs registry update pycool --min-age 7d >/dev/null
    assert_eq "$("$PYTHON" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["min_age"], j["min_age_unknown"], j["deny"])' "$(upfs registry show npmcool --json)")" \
        "604800 deny []" "registry show --json"
    wait_until 10 cool_listed || die "the registry npmcool is not served: $HTTP_STATUS $BODY"
    assert_eq "$(json_field 'sorted(j["versions"])')" "['1.0.0']" "versions through the registry"
    assert_eq "$(json_field 'j["dist-tags"]["latest"]')" 1.0.0 "dist-tags.latest through the registry"
    local before
    before="$(reg_targets_with upfs-fresh-1.1.0)"
    NPM_ROUTE=npmcool npm_in "$T/n5" install upfs-fresh
    ((RC == 0)) || die "npm install upfs-fresh through the registry failed ($RC): $ERR"
    assert_eq "$(installed_version "$T/n5" upfs-fresh)" 1.0.0 "upfs-fresh installed through the registry"
    NPM_ROUTE=npmraw npm_in "$T/n6" install upfs-fresh
    ((RC == 0)) || die "npm install upfs-fresh through the proxy failed ($RC): $ERR"
    assert_eq "$(installed_version "$T/n6" upfs-fresh)" 1.1.0 "upfs-fresh installed through the proxy"
    # the tarball the proxy has now is refused through the registry, from the cache
    before="$(reg_targets_with upfs-fresh-1.1.0)"
    http_get "$S/npmcool/upfs-fresh/-/upfs-fresh-1.1.0.tgz"
    assert_eq "$HTTP_STATUS" 403 "GET of the hidden tarball through the registry"
    assert_contains "$BODY" "cause policy" "the shim's error body"
    expect_eacces cat "$MNT/npmcool/upfs-fresh/-/upfs-fresh-1.1.0.tgz"
    assert_eq "$(reg_targets_with upfs-fresh-1.1.0)" "$before" "requests for the hidden tarball"
    PY_ROUTE=pycool pip_download "$T/d5" upfs-fresh
    ((RC == 0)) || die "pip download through the registry failed ($RC): $ERR $OUT"
    assert_eq "$(ls "$T/d5")" upfs_fresh-1.0.0-py3-none-any.whl "pip's download through the registry"
    PY_ROUTE=pyraw pip_download "$T/d6" upfs-fresh
    ((RC == 0)) || die "pip download through the proxy failed ($RC): $ERR $OUT"
    assert_eq "$(ls "$T/d6")" upfs_fresh-1.1.0-py3-none-any.whl "pip's download through the proxy"
}
check "a registry's --min-age holds back what its upstream without a cooldown serves" t_registry_policy

finish
