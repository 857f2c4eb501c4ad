#!/bin/bash
# tests/integration/mount_maven_helm_test.sh -- Maven and Helm proxies through FUSE.
#
#     bash tests/integration/mount_maven_helm_test.sh build/upstreamfs
#
# Asserts:
#   Maven: demo-1.0.jar (with .sha1/.sha256) reads its exact bytes with one GET, the checksum
#     was fetched, digest xattr; bad-1.0.jar (its .sha1 is wrong) fails with EIO every time,
#     shows cached=none, adds nothing to `cache stats` and leaves no blob in the store.
#   Helm: MNT/<key>/index.yaml parses, keeps every entry and digest, and every chart URL is
#     the relative charts/<name>-<version>.tgz (no http anywhere in the urls); alpha (relative
#     URL) and beta (absolute URL on the other host name) read with the right sha256 and one GET
#     each, on the right host; gamma (wrong digest in the index) fails with EIO and caches nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"

SRV="$T/srv"
OTHER="$T/other"
MNT="$T/mnt"
mkdir -p "$SRV/maven" "$SRV/helm" "$OTHER"
nginx_start "$SRV" "$OTHER"
fixtures_maven "$SRV/maven"
fixtures_helm "$SRV/helm" "$OTHER" "$NGINX_OTHER_URL"

upfs proxy create mvn --type maven --url "${NGINX_URL}maven/" >/dev/null
# beta is on the other host name (localhost), a learned origin on loopback: allowed explicitly.
upfs proxy create charts --type helm --url "${NGINX_URL}helm/" --allow-host localhost >/dev/null
upfs_mount "$MNT"

DEMO=com/example/demo/1.0/demo-1.0.jar
BAD=com/example/bad/1.0/bad-1.0.jar

# no_blob HEX: nothing named after HEX anywhere under the state dir's store
no_blob() {
    local hits
    hits="$(find "$STATE/blobs" -name "*$1*" 2>/dev/null || true)"
    [[ -z "$hits" ]] || die "the store holds an object for sha256 $1: $hits"
}

# ---- Maven ---------------------------------------------------------------------------------
t_maven_demo() {
    local want
    want="$(fixture_sha256 "$SRV/maven" "$DEMO")"
    with_timeout 30 cat "$MNT/mvn/$DEMO" >"$T/demo.jar" || die "cat demo-1.0.jar failed"
    assert_sha256 "$T/demo.jar" "$want"
    nginx_expect_count 1 GET '^/maven/com/example/demo/1\.0/demo-1\.0\.jar$'
    local sums
    sums=$(($(nginx_count GET '^/maven/com/example/demo/1\.0/demo-1\.0\.jar\.sha1$') +
        $(nginx_count GET '^/maven/com/example/demo/1\.0/demo-1\.0\.jar\.sha256$')))
    ((sums >= 1)) || die "the jar was not verified: no GET of demo-1.0.jar.sha1 or .sha256"
    assert_eq "$(xattr digest "$MNT/mvn/$DEMO")" "sha256:$want" "user.upstreamfs.digest of demo-1.0.jar"
    assert_eq "$(xattr cached "$MNT/mvn/$DEMO")" complete "user.upstreamfs.cached of demo-1.0.jar"
    assert_eq "$(stat -c %s "$MNT/mvn/$DEMO")" "$(stat -c %s "$SRV/maven/$DEMO")" "size of demo-1.0.jar"
    # a second read is local
    with_timeout 30 cat "$MNT/mvn/$DEMO" >"$T/demo2.jar" || die "second cat of demo-1.0.jar failed"
    assert_sha256 "$T/demo2.jar" "$want"
    nginx_expect_count 1 GET '^/maven/com/example/demo/1\.0/demo-1\.0\.jar$'
    # the pom (its .sha1 is "<hex>  name") reads as well
    with_timeout 30 cat "$MNT/mvn/com/example/demo/1.0/demo-1.0.pom" >"$T/demo.pom" || die "cat demo-1.0.pom failed"
    assert_sha256 "$T/demo.pom" "$(fixture_sha256 "$SRV/maven" com/example/demo/1.0/demo-1.0.pom)"
}
check "maven: demo-1.0.jar reads its exact bytes, verified, one GET" t_maven_demo

t_maven_bad() {
    local objs bytes real i
    objs="$(stats_field cache_objects)"
    bytes="$(stats_field cache_bytes)"
    real="$(fixture_sha256 "$SRV/maven" "$BAD")"
    for i in 1 2; do
        expect_fail_with "Input/output error" with_timeout 30 cat "$MNT/mvn/$BAD"
        [[ -z "$OUT" ]] || die "cat of bad-1.0.jar (try $i) printed ${#OUT} bytes before failing"
    done
    ((  $(nginx_count GET '^/maven/com/example/bad/1\.0/bad-1\.0\.jar$') >= 1 )) ||
        die "bad-1.0.jar was never requested (the test did not exercise verification)"
    assert_eq "$(xattr cached "$MNT/mvn/$BAD")" none "user.upstreamfs.cached of bad-1.0.jar"
    assert_eq "$(stats_field cache_objects)" "$objs" "cache_objects after reading bad-1.0.jar"
    assert_eq "$(stats_field cache_bytes)" "$bytes" "cache_bytes after reading bad-1.0.jar"
    no_blob "$real"
}
check "maven: bad-1.0.jar (wrong .sha1) gives EIO and caches nothing" t_maven_bad

# ---- Helm ----------------------------------------------------------------------------------
ALPHA=charts/alpha-0.1.0.tgz
BETA=charts/beta-1.2.3.tgz
GAMMA=charts/gamma-0.0.1.tgz

t_helm_index() {
    with_timeout 30 cat "$MNT/charts/index.yaml" >"$T/index.yaml" || die "cat index.yaml failed"
    [[ -s "$T/index.yaml" ]] || die "index.yaml is empty"
    if grep -nE '^\s*-\s*\S*https?:' "$T/index.yaml"; then
        die "index.yaml still has absolute URLs (lines above)"
    fi
    # the urls lines (the list items under "urls:") are all relative charts/ paths
    local urls
    urls="$(awk '/^ *urls:/{u=1; next} u && /^ *- /{print; next} {u=0}' "$T/index.yaml")"
    [[ -n "$urls" ]] || die "no urls entries in the rewritten index.yaml: $(head -c 2000 "$T/index.yaml")"
    if grep -v -E '^ *- "?charts/[a-z]+-[0-9.]+\.tgz"?$' <<<"$urls"; then
        die "urls entries above are not charts/<name>-<version>.tgz"
    fi
    if ! "$PYTHON" -c 'import yaml' 2>/dev/null; then
        log "python3-yaml is not installed: skipping the structural parse of index.yaml"
        return 0
    fi
    "$PYTHON" - "$T/index.yaml" "$(fixture_sha256 "$SRV/helm" "$ALPHA")" \
        "$(fixture_sha256 "$OTHER" beta-1.2.3.tgz)" "$HELM_GAMMA_WRONG_DIGEST" <<'EOF' || die "index.yaml content check failed"
import sys, yaml
path, alpha, beta, gamma = sys.argv[1:5]
doc = yaml.safe_load(open(path))
want = {"alpha": ("0.1.0", alpha), "beta": ("1.2.3", beta), "gamma": ("0.0.1", gamma)}
ents = doc.get("entries") or {}
ok = True
if set(ents) != set(want):
    print("entries are %s, want %s" % (sorted(ents), sorted(want)), file=sys.stderr); ok = False
for name, (ver, dig) in want.items():
    for v in ents.get(name) or []:
        urls = v.get("urls")
        exp = ["charts/%s-%s.tgz" % (name, ver)]
        if urls != exp:
            print("%s: urls %r, want %r" % (name, urls, exp), file=sys.stderr); ok = False
        if str(v.get("version")) != ver:
            print("%s: version %r, want %r" % (name, v.get("version"), ver), file=sys.stderr); ok = False
        if v.get("digest") != dig:
            print("%s: digest %r, want %r" % (name, v.get("digest"), dig), file=sys.stderr); ok = False
if doc.get("apiVersion") != "v1":
    print("apiVersion %r" % doc.get("apiVersion"), file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
EOF
    nginx_expect_count 1 GET '^/helm/index\.yaml$'
}
check "helm: index.yaml parses, keeps entries/digests, every URL is relative charts/<name>-<version>.tgz" t_helm_index

t_helm_alpha() {
    local want
    want="$(fixture_sha256 "$SRV/helm" "$ALPHA")"
    with_timeout 30 cat "$MNT/charts/$ALPHA" >"$T/alpha.tgz" || die "cat $ALPHA failed"
    assert_sha256 "$T/alpha.tgz" "$want"
    nginx_expect_count 1 --host 127.0.0.1 GET '^/helm/charts/alpha-0\.1\.0\.tgz$'
    assert_eq "$(xattr digest "$MNT/charts/$ALPHA")" "sha256:$want" "user.upstreamfs.digest of alpha"
    assert_eq "$(xattr cached "$MNT/charts/$ALPHA")" complete "user.upstreamfs.cached of alpha"
    with_timeout 30 cat "$MNT/charts/$ALPHA" >"$T/alpha2.tgz" || die "second cat of $ALPHA failed"
    assert_sha256 "$T/alpha2.tgz" "$want"
    nginx_expect_count 1 --host 127.0.0.1 GET '^/helm/charts/alpha-0\.1\.0\.tgz$'
}
check "helm: alpha (relative URL) reads with the right sha256, one GET" t_helm_alpha

t_helm_beta() {
    local want
    want="$(fixture_sha256 "$OTHER" beta-1.2.3.tgz)"
    with_timeout 30 cat "$MNT/charts/$BETA" >"$T/beta.tgz" || die "cat $BETA failed"
    assert_sha256 "$T/beta.tgz" "$want"
    nginx_expect_count 1 --host localhost GET '^/beta-1\.2\.3\.tgz$'
    assert_eq "$(nginx_count --host 127.0.0.1 GET 'beta')" 0 "GETs of beta on the index's host"
    assert_eq "$(xattr source "$MNT/charts/$BETA")" "${NGINX_OTHER_URL}beta-1.2.3.tgz" "user.upstreamfs.source of beta"
}
check "helm: beta (absolute URL on the other host name) reads with the right sha256" t_helm_beta

t_helm_gamma() {
    local objs bytes real i
    objs="$(stats_field cache_objects)"
    bytes="$(stats_field cache_bytes)"
    real="$(fixture_sha256 "$SRV/helm" "$GAMMA")"
    for i in 1 2; do
        expect_fail_with "Input/output error" with_timeout 30 cat "$MNT/charts/$GAMMA"
        [[ -z "$OUT" ]] || die "cat of gamma (try $i) printed ${#OUT} bytes before failing"
    done
    (($(nginx_count GET '^/helm/charts/gamma-0\.0\.1\.tgz$') >= 1)) ||
        die "gamma was never requested (the test did not exercise verification)"
    assert_eq "$(xattr cached "$MNT/charts/$GAMMA")" none "user.upstreamfs.cached of gamma"
    assert_eq "$(stats_field cache_objects)" "$objs" "cache_objects after reading gamma"
    assert_eq "$(stats_field cache_bytes)" "$bytes" "cache_bytes after reading gamma"
    no_blob "$real"
}
check "helm: gamma (wrong digest in the index) gives EIO and caches nothing" t_helm_gamma

t_helm_listing() {
    local l
    l="$(with_timeout 10 ls "$MNT/charts/charts")" || die "ls charts/ failed"
    assert_eq "$(echo $l)" "alpha-0.1.0.tgz beta-1.2.3.tgz gamma-0.0.1.tgz" "ls MNT/charts/charts"
    l="$(with_timeout 10 ls "$MNT/charts")" || die "ls of the helm proxy failed"
    assert_eq "$(echo $l)" "charts index.yaml" "ls MNT/charts"
}
check "helm: the proxy lists index.yaml and charts/<name>-<version>.tgz" t_helm_listing

finish
