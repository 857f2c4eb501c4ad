#!/bin/bash
# tests/integration/npm_test.sh -- npm through the shim of a mount, against a tiny npm registry.
#
#     bash tests/integration/npm_test.sh build/upstreamfs
#
# The upstream is tests/integration/npm/registry.py on 127.0.0.1, serving packages this test
# builds (upfs-demo, which depends on the scoped @upfs/util, and upfs-bad, whose document names
# other bytes) and counting every request. upstreamfs mounts with -o listen= (the shim in the same
# process), an npm proxy "npm" on the registry and an npm registry "npmall" over it.
#
# Every npm run has its own --cache, --registry and an empty --userconfig, an empty environment
# (env -i: no npm_config_* from outside), --no-update-notifier --no-audit --no-fund; the fixture's
# request counts are asserted after each, so no run can pass by reaching another registry.
#
# Asserts:
#   npm install upfs-demo through /npm/ succeeds: the installed files have the fixture's sha256,
#     package-lock.json resolves every tarball to the shim (/npm/...) with the fixture's sha512
#     integrity (npm checked it); upstream: one abbreviated document per package, one GET per
#     tarball, no full document, nothing else, and never a URL fragment;
#   the shim's routes: /npm/@upfs%2futil and /npm/@upfs/util answer the full document (Accept:
#     application/json) or the abbreviated one (the install Accept), separately cached, with
#     Vary: Accept and every dist.tarball pointing back at the shim under /npm/; a target with an
#     escaped '/' elsewhere is a 400;
#   the mount: MNT/npm/upfs-demo/{package.json,-/upfs-demo-1.0.0.tgz}, MNT/npm/@upfs/util/...,
#     package.json's tarballs relative ("-/<name>-<version>.tgz"), true sizes, the tarball's
#     sha256, its user.upstreamfs.digest;
#   ls -l of the tarballs of a package of 2,000 versions (upfs-many) lists them all and reads
#     the document from the store once (/metrics upstreamfs_document_reads_total: the parse of
#     its table, not one read per tarball looked up), fetched from the registry once; a second
#     ls -l reads it no more;
#   npm install through the registry /npmall/ resolves to /npmall/ and fetches nothing new;
#   upfs-bad: npm install fails, the shim answers 502 for the tarball, and it is not cached (a
#     second request reaches the upstream again; no blob with its bytes; cached=none);
#   with the registry stopped (and the documents past their TTL), npm install succeeds again from
#     the cache, the documents are marked stale; with the proxy --offline too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
command -v npm >/dev/null || die "npm is missing (tools/deps.sh --test installs it)"
command -v node >/dev/null || die "node is missing (tools/deps.sh --test installs nodejs)"
source "$(dirname "${BASH_SOURCE[0]}")/npm/lab.sh"

FIX="$T/fix"
MNT="$T/mnt"
"$PYTHON" "$REGISTRY_PY" build "$FIX"

# ---- the fixture registry ----------------------------------------------------------------------
npm_lab_start "$FIX"

# reg_count KEY: the fixture's count of KEY ("GET /upfs-demo abbreviated", "GET /x/-/x-1.tgz")
reg_count() {
    "${CURL[@]}" "${REG_URL}_control/counts" |
        "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1"
}
# reg_total: every request the fixture saw
reg_total() {
    "${CURL[@]}" "${REG_URL}_control/counts" | "$PYTHON" -c 'import json,sys; print(sum(json.load(sys.stdin).values()))'
}
# expect_field PATH FIELD: a field of the tarball PATH in the fixture's expect.json
expect_field() {
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tarballs"][sys.argv[2]][sys.argv[3]])' \
        "$FIX/expect.json" "$1" "$2"
}
index_js_sha() {
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["index_js"][sys.argv[2]])' "$FIX/expect.json" "$1"
}

upfs proxy create npm --type npm --url "$REG_URL" >/dev/null
upfs registry create npmall --type npm --upstream npm >/dev/null
SPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$SPORT"
wait_for_port "$SPORT" 10 || die "mount -o listen=127.0.0.1:$SPORT: the shim is not listening"
S="http://127.0.0.1:$SPORT"
mkdir -p "$T/home"
: >"$T/npmrc"

# npm_in DIR REGISTRY_URL ARGS...: npm in a new project DIR with its own new cache DIR.cache;
# sets RC, OUT, ERR
npm_in() {
    local dir="$1" reg="$2"
    shift 2
    [[ ! -e "$dir" ]] || die "npm_in: $dir is not new"
    mkdir -p "$dir"
    printf '{"name":"proj","version":"1.0.0","private":true}\n' >"$dir/package.json"
    run_capture with_timeout 180 env -i PATH="$PATH" HOME="$T/home" \
        npm --prefix "$dir" --registry "$reg" --cache "$dir.cache" \
        --userconfig "$T/npmrc" --no-update-notifier --no-audit --no-fund --loglevel warn "$@"
}

lock_field() { # lock_field DIR EXPR: a Python expression over package-lock.json's "packages" (p)
    "$PYTHON" -c 'import json,sys; p=json.load(open(sys.argv[1]))["packages"]; print(eval(sys.argv[2]))' \
        "$1/package-lock.json" "$2"
}

DEMO_TGZ=upfs-demo/-/upfs-demo-1.0.0.tgz
UTIL_TGZ=@upfs/util/-/util-1.1.0.tgz

# ---- npm install through the proxy -------------------------------------------------------------
t_install() {
    npm_in "$T/p1" "$S/npm/" install upfs-demo
    ((RC == 0)) || die "npm install upfs-demo failed ($RC): $ERR"
    assert_sha256 "$T/p1/node_modules/upfs-demo/index.js" "$(index_js_sha upfs-demo@1.0.0)"
    assert_sha256 "$T/p1/node_modules/@upfs/util/index.js" "$(index_js_sha @upfs/util@1.1.0)"
    assert_eq "$(cd "$T/p1" && env -i PATH="$PATH" node -e "console.log(require('upfs-demo'))")" \
        "demo @upfs/util 1.1.0" "the installed package runs"
    assert_eq "$(lock_field "$T/p1" 'p["node_modules/upfs-demo"]["resolved"]')" "$S/npm/$DEMO_TGZ" \
        "upfs-demo resolved to the shim"
    assert_eq "$(lock_field "$T/p1" 'p["node_modules/@upfs/util"]["resolved"]')" "$S/npm/$UTIL_TGZ" \
        "@upfs/util resolved to the shim"
    assert_eq "$(lock_field "$T/p1" 'p["node_modules/upfs-demo"]["integrity"]')" \
        "$(expect_field "$DEMO_TGZ" integrity)" "upfs-demo integrity"
    assert_eq "$(lock_field "$T/p1" 'p["node_modules/@upfs/util"]["integrity"]')" \
        "$(expect_field "$UTIL_TGZ" integrity)" "@upfs/util integrity"
    # The driver learns a package and its tarballs from the abbreviated document; the client's
    # Accept decides whether the full one is fetched too (npm 9 asks for the abbreviated one,
    # npm 11 for the full one). Each variant is fetched at most once.
    local pkg docs=0 n
    for pkg in upfs-demo @upfs/util; do
        assert_eq "$(reg_count "GET /$pkg abbreviated")" 1 "abbreviated documents of $pkg"
        n="$(reg_count "GET /$pkg full")"
        ((n <= 1)) || die "full documents of $pkg fetched $n times"
        docs=$((docs + 1 + n))
    done
    assert_eq "$(reg_count "GET /$DEMO_TGZ")" 1 "GETs of the upfs-demo tarball"
    assert_eq "$(reg_count "GET /$UTIL_TGZ")" 1 "GETs of the @upfs/util tarball"
    # The lookups ask the tarballs' sizes with HEAD; nothing else reached the registry.
    local heads=$(($(reg_count "HEAD /$DEMO_TGZ") + $(reg_count "HEAD /$UTIL_TGZ")))
    assert_eq "$(reg_total)" $((docs + 2 + heads)) "requests the fixture registry saw"
    local frag
    frag="$("${CURL[@]}" "${REG_URL}_control/requests" | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)
print(sum("#" in x["target"] for x in r))')"
    assert_eq "$frag" 0 "requests with a URL fragment"
}
check --setup "npm install upfs-demo (scoped dependency) through the shim; integrity; one GET each" t_install

# ---- the shim's npm routes ---------------------------------------------------------------------
doc_tarball() { # doc_tarball VERSION: dist.tarball of VERSION in $BODY
    json_field "j['versions']['$1']['dist']['tarball']"
}
t_routes() {
    http_get "$S/npm/@upfs%2futil" -H 'Accept: application/json'
    assert_eq "$HTTP_STATUS" 200 "GET /npm/@upfs%2futil"
    assert_contains "$(header_of Content-Type)" application/json "Content-Type"
    assert_eq "$(header_of Vary)" Accept "Vary"
    assert_eq "$(doc_tarball 1.0.0)" "$S/npm/@upfs/util/-/util-1.0.0.tgz" "full document's tarball URL"
    assert_eq "$(json_field "'readme' in j")" True "the full document has the readme"
    http_get "$S/npm/@upfs/util" -H 'Accept: application/json'
    assert_eq "$HTTP_STATUS" 200 "GET /npm/@upfs/util"
    assert_eq "$(doc_tarball 1.1.0)" "$S/npm/$UTIL_TGZ" "the unescaped form"
    assert_eq "$(reg_count 'GET /@upfs/util full')" 1 "full document fetched once"
    http_get "$S/npm/@upfs%2Futil" -H 'Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
    assert_eq "$HTTP_STATUS" 200 "abbreviated GET"
    assert_eq "$(json_field "'readme' in j")" False "the abbreviated document has no readme"
    assert_eq "$(doc_tarball 1.1.0)" "$S/npm/$UTIL_TGZ" "abbreviated document's tarball URL"
    assert_eq "$(reg_count 'GET /@upfs/util abbreviated')" 1 "abbreviated document: still one fetch"
    # every URL in the answer points back at the shim
    [[ "$BODY" != *"127.0.0.1:$REG_PORT"* ]] || die "the registry's address leaked: ${BODY:0:300}"
    # a tarball through the shim, and HEAD
    http_get "$S/npm/$UTIL_TGZ"
    assert_eq "$HTTP_STATUS" 200 "GET of the tarball"
    assert_sha256 "$T/body" "$(expect_field "$UTIL_TGZ" sha256)"
    # hostile and unknown names
    http_get "$S/npm/no-such-package"
    assert_eq "$HTTP_STATUS" 404 "unknown package"
    http_get "$S/npm/upfs-demo%2f..%2f..%2fetc%2fpasswd"
    assert_eq "$HTTP_STATUS" 400 "escaped '/' in an unscoped name"
    http_get "$S/npm/@upfs%2f..%2f..%2fetc"
    assert_eq "$HTTP_STATUS" 400 "escaped dot segments"
    http_get "$S/npm/@upfs%2futil/-/util-1.1.0.tgz"
    assert_eq "$HTTP_STATUS" 400 "escaped '/' beyond the document route"
    http_get "$S/v2/npm%2fx/tags/list"
    assert_eq "$HTTP_STATUS" 400 "escaped '/' outside a path route"
}
check "shim routes: scoped names both ways, full and abbreviated variants, tarball URLs" t_routes

# ---- the mount layout --------------------------------------------------------------------------
t_mount() {
    local names
    names="$(ls "$MNT/npm/upfs-demo")"
    assert_contains "$names" "package.json" "ls MNT/npm/upfs-demo"
    assert_contains "$names" "-" "ls MNT/npm/upfs-demo"
    assert_eq "$(ls "$MNT/npm/upfs-demo/-")" "upfs-demo-1.0.0.tgz" "ls MNT/npm/upfs-demo/-"
    "$PYTHON" - "$MNT/npm/upfs-demo/package.json" <<'EOF' || die "package.json in the mount"
import json, sys
d = json.load(open(sys.argv[1]))
t = d["versions"]["1.0.0"]["dist"]["tarball"]
assert t == "-/upfs-demo-1.0.0.tgz", t
assert "readme" in d, "the mount's package.json is the full document"
EOF
    assert_eq "$(ls "$MNT/npm/@upfs/util/-" | tr '\n' ' ')" "util-1.0.0.tgz util-1.1.0.tgz " "scoped tarballs"
    assert_eq "$(stat -c %s "$MNT/npm/@upfs/util/-/util-1.0.0.tgz")" "$(expect_field @upfs/util/-/util-1.0.0.tgz size)" "true size before a read"
    assert_sha256 "$MNT/npm/@upfs/util/-/util-1.0.0.tgz" "$(expect_field @upfs/util/-/util-1.0.0.tgz sha256)"
    assert_eq "$(xattr digest "$MNT/npm/$DEMO_TGZ")" "sha256:$(expect_field "$DEMO_TGZ" sha256)" "digest xattr"
    assert_eq "$(reg_count "GET /$DEMO_TGZ")" 1 "the mount reads the tarball the shim cached"
    [[ ! -e "$MNT/npm/no-such-package" ]] || die "an unknown package exists in the mount"
}
check "mount layout: package.json (relative tarballs), -/<file>.tgz, @scope/<name>/" t_mount

# ---- a package of many versions -----------------------------------------------------------------
t_many() {
    # the registry reads its documents per request: a new one is served as soon as it is written
    "$PYTHON" - "$FIX/docs/upfs-many.json" <<'EOF'
import json, sys
vs = ["1.%d.%d" % (i // 100, i % 100) for i in range(2000)]
doc = {"_id": "upfs-many", "name": "upfs-many", "dist-tags": {"latest": vs[-1]}, "versions": {
    v: {"name": "upfs-many", "version": v, "dist": {
        "tarball": "{BASE}/upfs-many/-/upfs-many-%s.tgz" % v,
        "integrity": "sha512-" + "A" * 86 + "==", "shasum": "0" * 40}} for v in vs}}
json.dump(doc, open(sys.argv[1], "w"))
EOF
    local tgz=' upfs-many-1\.[0-9]*\.[0-9]*\.tgz$'
    # fetched once (the answer's bytes are kept in memory), read from the store once to parse
    # its table; each lookup of a tarball then uses the table the document's sha256 names
    assert_eq "$(ls_reads "$S/metrics" "$MNT/npm/upfs-many/-" "$tgz")" "2000 1" \
        "tarballs listed by ls -l, documents read from the store meanwhile"
    assert_eq "$(reg_count 'GET /upfs-many abbreviated')" 1 "abbreviated documents of upfs-many fetched"
    assert_eq "$(ls_reads "$S/metrics" "$MNT/npm/upfs-many/-" "$tgz")" "2000 0" \
        "tarballs listed by a second ls -l, documents read from the store meanwhile"
}
check "ls -l of 2,000 tarballs reads the package's document once" t_many

# ---- through a registry ------------------------------------------------------------------------
t_registry() {
    local before
    before="$(reg_total)"
    npm_in "$T/p2" "$S/npmall/" install upfs-demo
    ((RC == 0)) || die "npm install through the registry failed ($RC): $ERR"
    assert_eq "$(lock_field "$T/p2" 'p["node_modules/@upfs/util"]["resolved"]')" "$S/npmall/$UTIL_TGZ" \
        "resolved to the registry's path"
    assert_sha256 "$T/p2/node_modules/@upfs/util/index.js" "$(index_js_sha @upfs/util@1.1.0)"
    assert_eq "$(reg_total)" "$before" "requests to the fixture for an install through the registry"
}
check "npm install through an npm registry: its own URLs, nothing fetched again" t_registry

# ---- a registry's local content laid over its upstreams' documents -----------------------------
t_registry_local() {
    # a package without local content costs the upstream exactly the document asked for
    local full abbr
    full="$(reg_count 'GET /upfs-bad full')"
    abbr="$(reg_count 'GET /upfs-bad abbreviated')"
    http_get "$S/npmall/upfs-bad" -H 'Accept: application/vnd.npm.install-v1+json'
    assert_eq "$HTTP_STATUS" 200 "the registry's abbreviated upfs-bad"
    assert_eq "$(reg_count 'GET /upfs-bad full')" "$full" "full documents fetched for an abbreviated one"
    assert_eq "$(reg_count 'GET /upfs-bad abbreviated')" "$((abbr + 1))" "abbreviated upfs-bad fetched"
    cp -r "$FIX/local/upfs-local" "$MNT/npmall/"
    mkdir -p "$MNT/npmall/@upfs/util/-"
    cp "$FIX/local/@upfs/util/package.json" "$MNT/npmall/@upfs/util/"
    cp "$FIX/local/@upfs/util/-/util-2.0.0.tgz" "$MNT/npmall/@upfs/util/-/"
    npm_in "$T/p-local" "$S/npmall/" install upfs-local @upfs/util@latest
    ((RC == 0)) || die "npm install of the registry's local packages failed ($RC): $ERR"
    assert_sha256 "$T/p-local/node_modules/upfs-local/index.js" "$(index_js_sha upfs-local@1.0.0)"
    assert_sha256 "$T/p-local/node_modules/@upfs/util/index.js" "$(index_js_sha @upfs/util@2.0.0)"
    assert_eq "$(lock_field "$T/p-local" 'p["node_modules/@upfs/util"]["integrity"]')" \
        "$(expect_field @upfs/util/-/util-2.0.0.tgz integrity)" "integrity of the local @upfs/util"
    local v
    for v in 'application/json' 'application/vnd.npm.install-v1+json'; do
        http_get "$S/npmall/@upfs%2futil" -H "Accept: $v"
        "$PYTHON" - "$BODY" "$S" <<'EOF' || die "the registry's @upfs/util document ($v): $BODY"
import json, sys
d, s = json.loads(sys.argv[1]), sys.argv[2]
assert sorted(d["versions"]) == ["1.0.0", "1.1.0", "2.0.0"], sorted(d["versions"])
assert d["dist-tags"]["latest"] == "2.0.0", d["dist-tags"]
for v in d["versions"]:
    assert d["versions"][v]["dist"]["tarball"] == s + "/npmall/@upfs/util/-/util-%s.tgz" % v
EOF
    done
    # the proxy itself knows nothing of the registry's local versions
    http_get "$S/npm/@upfs%2futil" -H 'Accept: application/json'
    [[ "$BODY" != *2.0.0* ]] || die "the proxy's document lists the registry's local version"
}
check "npm registry: local packages, and local versions laid over the upstream's document" t_registry_local

# ---- bytes that do not match the integrity -----------------------------------------------------
t_bad() {
    local bad=upfs-bad/-/upfs-bad-1.0.0.tgz bad_sha
    bad_sha="$(expect_field "$bad" sha256)"
    npm_in "$T/p3" "$S/npm/" install --fetch-retries 0 upfs-bad
    ((RC != 0)) || die "npm install upfs-bad succeeded"
    local n
    n="$(reg_count "GET /$bad")"
    ((n >= 1)) || die "the bad tarball was never fetched"
    http_get "$S/npm/$bad"
    assert_eq "$HTTP_STATUS" 502 "the shim's answer for bytes that do not match"
    assert_contains "$BODY" "bad gateway" "502 body"
    assert_eq "$(reg_count "GET /$bad")" $((n + 1)) "not cached: the next request fetches again"
    assert_eq "$(xattr cached "$MNT/npm/$bad")" none "cached state of the bad tarball"
    [[ -z "$(find "$STATE" -name "$bad_sha*")" ]] || die "the bad bytes were stored"
    if cat -- "$MNT/npm/$bad" >/dev/null 2>&1; then die "reading the bad tarball in the mount succeeded"; fi
}
check "a tarball that does not match its integrity fails and is not cached" t_bad

# ---- the remote gone ---------------------------------------------------------------------------
t_offline() {
    # Both variants of the document, as both kinds of client ask for them, while the registry is up.
    local accept
    for accept in 'application/json' 'application/vnd.npm.install-v1+json'; do
        http_get "$S/npm/upfs-demo" -H "Accept: $accept"
        assert_eq "$HTTP_STATUS" 200 "GET /npm/upfs-demo ($accept)"
    done
    npm_lab_stop
    upfs proxy update npm --metadata-ttl 1 >/dev/null
    sleep 3 # the engine picks the change up within 2 s; the documents are now past their TTL
    npm_in "$T/p4" "$S/npm/" install upfs-demo
    ((RC == 0)) || die "npm install with the registry stopped failed ($RC): $ERR"
    assert_sha256 "$T/p4/node_modules/@upfs/util/index.js" "$(index_js_sha @upfs/util@1.1.0)"
    # both variants still answer, each from its own stale copy
    http_get "$S/npm/upfs-demo" -H 'Accept: application/json'
    assert_eq "$HTTP_STATUS" 200 "full document with the registry stopped"
    assert_eq "$(json_field "'readme' in j")" True "the full variant"
    http_get "$S/npm/upfs-demo" -H 'Accept: application/vnd.npm.install-v1+json'
    assert_eq "$HTTP_STATUS" 200 "abbreviated document with the registry stopped"
    assert_eq "$(json_field "'readme' in j")" False "the abbreviated variant"
    assert_eq "$(xattr stale "$MNT/npm/upfs-demo/package.json")" 1 "package.json is marked stale"
    assert_eq "$(xattr stale "$MNT/npm/upfs-demo/.abbreviated.json")" 1 ".abbreviated.json is marked stale"
    upfs proxy update npm --offline >/dev/null
    sleep 3
    npm_in "$T/p5" "$S/npm/" install upfs-demo
    ((RC == 0)) || die "npm install with the proxy offline failed ($RC): $ERR"
    assert_sha256 "$T/p5/node_modules/upfs-demo/index.js" "$(index_js_sha upfs-demo@1.0.0)"
}
check "with the registry stopped, npm install succeeds from the cache (stale, then --offline)" t_offline

finish
