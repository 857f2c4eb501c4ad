#!/bin/bash
# tests/integration/pypi_test.sh -- pip through the shim of a mount, against a static PyPI tree.
#
#     bash tests/integration/pypi_test.sh build/upstreamfs
#
# The upstream is a PEP 503 tree (tests/integration/pypi/build.py: a wheel with PEP 658
# metadata, a setuptools sdist, a wheel whose page names other bytes) served by
# lib/upstream.py on 127.0.0.1, which counts every request. upstreamfs mounts with -o listen=,
# a pypi proxy "py" (its --url the repository root) and a pypi registry "pyall" over it.
#
# pip is Debian's (/usr/bin/python3 -m pip), run with --isolated (no config files, no PIP_*
# variables), an empty environment, --disable-pip-version-check, --no-cache-dir and
# --index-url pointing at the shim; the upstream's counts are asserted after each run, so no run
# can pass by reaching another index.
#
# Asserts:
#   pip download --no-deps of the wheel succeeds through /py/simple/: the file has the fixture's
#     sha256; the upstream saw one GET of the page, of the .metadata and of the wheel, nothing
#     else;
#   pip download --no-deps --no-build-isolation of the sdist (project Upfs_Sdist, page
#     upfs-sdist) succeeds the same way;
#   the shim's pages: JSON (PEP 691) for pip's Accept, HTML (PEP 503) for text/html, Vary:
#     Accept, every file URL pointing back at the shim (/py/<name>/<file>) with its sha256 kept
#     (hashes / #sha256=), data-requires-python and data-dist-info-metadata kept; any spelling of
#     the name answers the normalised page; unknown projects 404; /py/simple/ lists the known
#     projects;
#   the mount: MNT/py/upfs-demo/ lists the distributions with true sizes, each readable with the
#     fixture's sha256; non-normalised names are absent;
#   ls -l of a project of 500 files (upfs-many, an HTML page without sizes) lists them all,
#     fetches the page once and reads it from the store never (/metrics
#     upstreamfs_document_reads_total), not once per file looked up;
#   pip through the registry /pyall/simple/ succeeds and fetches nothing new;
#   files copied into the registry's local content are on its pages, first: pip downloads a
#     project only the local content has, and a newer local version of an upstream project;
#   upfs-bad: pip download fails, the shim answers 502 for the wheel, and it is not cached;
#   with the upstream stopped (the page past its TTL), both downloads succeed again from the
#     cache and the page is marked stale; with the proxy --offline too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"
BUILD_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")/pypi" && pwd)/build.py"
PIP=(/usr/bin/python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || die "Debian's pip is missing (tools/deps.sh --test installs python3-pip)"
/usr/bin/python3 -c 'import setuptools, wheel' 2>/dev/null ||
    die "setuptools and wheel are missing (tools/deps.sh --test installs python3-setuptools python3-wheel)"

MNT="$T/mnt"
"$PYTHON" "$BUILD_PY" "$T/repo"
upstream_start "$T/repo" --quiet

fsha() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])' "$T/expect.json" "$1" "${2:-sha256}"; }
total() { upstream_counts | "$PYTHON" -c 'import json,sys; print(sum(json.load(sys.stdin).values()))'; }

WHL=upfs_demo-1.0.0-py3-none-any.whl
SDIST=upfs_sdist-1.0.0.tar.gz
BAD=upfs_bad-1.0.0-py3-none-any.whl

upfs proxy create py --type pypi --url "$UPSTREAM_URL" >/dev/null
upfs registry create pyall --type pypi --upstream py >/dev/null
SPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$SPORT"
wait_for_port "$SPORT" 10 || die "mount -o listen=127.0.0.1:$SPORT: the shim is not listening"
S="http://127.0.0.1:$SPORT"
mkdir -p "$T/home"

# pip_download DEST INDEX_URL ARGS...: pip download into a new DEST; sets RC, OUT, ERR
pip_download() {
    local dest="$1" index="$2"
    shift 2
    [[ ! -e "$dest" ]] || die "pip_download: $dest is not new"
    run_capture with_timeout 180 env -i PATH=/usr/bin:/bin HOME="$T/home" \
        "${PIP[@]}" download --isolated --disable-pip-version-check --no-cache-dir --no-input \
        --index-url "$index" --no-deps -d "$dest" "$@"
}

# ---- pip through the proxy ---------------------------------------------------------------------
t_wheel() {
    pip_download "$T/dl1" "$S/py/simple/" upfs-demo==1.0.0
    ((RC == 0)) || die "pip download upfs-demo failed ($RC): $ERR $OUT"
    assert_sha256 "$T/dl1/$WHL" "$(fsha "$WHL")"
    assert_eq "$(upstream_count GET /simple/upfs-demo/)" 1 "GETs of the upfs-demo page"
    assert_eq "$(upstream_count GET "/packages/$WHL")" 1 "GETs of the wheel"
    # pip reads the wheel's metadata first when the page offers it (PEP 658), if it knows how
    local meta
    meta="$(upstream_count GET "/packages/$WHL.metadata")"
    ((meta <= 1)) || die "the .metadata was fetched $meta times"
    local heads
    heads=$(($(upstream_count HEAD "/packages/$WHL") + $(upstream_count HEAD "/packages/$WHL.metadata")))
    assert_eq "$(total)" $((2 + meta + heads)) "requests the upstream saw"
}
check --setup "pip download of a wheel through the shim; sha256; one GET each" t_wheel

t_sdist() {
    local before
    before="$(total)"
    pip_download "$T/dl2" "$S/py/simple/" --no-build-isolation Upfs_Sdist==1.0.0
    ((RC == 0)) || die "pip download Upfs_Sdist failed ($RC): $ERR $OUT"
    assert_sha256 "$T/dl2/$SDIST" "$(fsha "$SDIST")"
    assert_eq "$(upstream_count GET /simple/upfs-sdist/)" 1 "GETs of the upfs-sdist page"
    assert_eq "$(upstream_count GET "/packages/$SDIST")" 1 "GETs of the sdist"
    local heads
    heads="$(upstream_count HEAD "/packages/$SDIST")"
    assert_eq "$(total)" $((before + 2 + heads)) "requests the upstream saw"
}
check --setup "pip download of an sdist (--no-build-isolation) through the shim" t_sdist

# ---- the shim's pages --------------------------------------------------------------------------
t_pages() {
    local whl_url="$S/py/upfs-demo/$WHL"
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01'
    assert_eq "$HTTP_STATUS" 200 "JSON page"
    assert_eq "$(header_of Content-Type)" application/vnd.pypi.simple.v1+json "JSON Content-Type"
    assert_eq "$(header_of Vary)" Accept "Vary"
    assert_eq "$(json_field 'j["name"]')" upfs-demo "name"
    assert_eq "$(json_field '[f["url"] for f in j["files"] if f["filename"] == "'"$WHL"'"][0]')" "$whl_url" "wheel URL"
    assert_eq "$(json_field '[f["hashes"]["sha256"] for f in j["files"] if f["filename"] == "'"$WHL"'"][0]')" "$(fsha "$WHL")" "wheel sha256"
    assert_eq "$(json_field '[f["core-metadata"]["sha256"] for f in j["files"] if f["filename"] == "'"$WHL"'"][0]')" \
        "$(fsha "$WHL.metadata")" "core-metadata hash"
    [[ "$BODY" != *"127.0.0.1:$UPSTREAM_PORT"* ]] || die "the upstream's address leaked: ${BODY:0:300}"
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: text/html'
    assert_eq "$HTTP_STATUS" 200 "HTML page"
    assert_contains "$(header_of Content-Type)" text/html "HTML Content-Type"
    assert_contains "$BODY" "<a href=\"$whl_url#sha256=$(fsha "$WHL")\"" "HTML link with its hash"
    assert_contains "$BODY" "data-dist-info-metadata=\"sha256=$(fsha "$WHL.metadata")\"" "HTML core metadata"
    assert_contains "$BODY" 'data-requires-python="&gt;=3.7"' "HTML requires-python"
    [[ "$BODY" != *"127.0.0.1:$UPSTREAM_PORT"* ]] || die "the upstream's address leaked: ${BODY:0:300}"
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: application/vnd.pypi.simple.v1+html'
    assert_eq "$(header_of Content-Type)" application/vnd.pypi.simple.v1+html "v1+html Content-Type"
    http_get "$S/py/simple/UPFS.Demo/"
    assert_eq "$HTTP_STATUS" 200 "a non-normalised spelling"
    assert_contains "$BODY" "$whl_url" "the normalised project's page"
    # Without its slash the name is a file of a project called "simple" (pip always sends it).
    http_get "$S/py/simple/upfs-demo"
    assert_eq "$HTTP_STATUS" 404 "no trailing slash"
    http_get "$S/py/simple"
    assert_eq "$HTTP_STATUS" 301 "the root page without its slash"
    assert_eq "$(header_of Location)" /py/simple/ "Location"
    http_get "$S/py/simple/no-such-project/"
    assert_eq "$HTTP_STATUS" 404 "unknown project"
    http_get "$S/py/simple/bad%20name/"
    assert_eq "$HTTP_STATUS" 404 "not a project name"
    http_get "$S/py/simple/a%2fb/"
    assert_eq "$HTTP_STATUS" 400 "escaped '/'"
    http_get "$S/py/simple/"
    assert_eq "$HTTP_STATUS" 200 "the root page"
    assert_contains "$BODY" '<a href="upfs-demo/">' "the root page lists known projects"
    assert_eq "$(upstream_count GET /simple/upfs-demo/)" 1 "the page was fetched once for all that"
    # the files behind the page's links
    http_get "$whl_url"
    assert_eq "$HTTP_STATUS" 200 "GET of the wheel through the link"
    assert_sha256 "$T/body" "$(fsha "$WHL")"
    http_get "$whl_url.metadata"
    assert_eq "$HTTP_STATUS" 200 "GET of the core metadata"
    assert_sha256 "$T/body" "$(fsha "$WHL.metadata")"
}
check "shim pages: JSON and HTML by Accept, URLs back at the shim, hashes kept, names normalised" t_pages

# ---- the mount layout --------------------------------------------------------------------------
t_mount() {
    local names
    names="$(ls "$MNT/py/upfs-demo" | tr '\n' ' ')"
    assert_eq "$names" "upfs_demo-0.9.0.tar.gz $WHL $WHL.metadata " "ls MNT/py/upfs-demo"
    assert_eq "$(stat -c %s "$MNT/py/upfs-demo/upfs_demo-0.9.0.tar.gz")" "$(fsha upfs_demo-0.9.0.tar.gz size)" "true size before a read"
    assert_sha256 "$MNT/py/upfs-demo/upfs_demo-0.9.0.tar.gz" "$(fsha upfs_demo-0.9.0.tar.gz)"
    assert_sha256 "$MNT/py/upfs-sdist/$SDIST" "$(fsha "$SDIST")"
    assert_eq "$(xattr digest "$MNT/py/upfs-demo/$WHL")" "sha256:$(fsha "$WHL")" "digest xattr"
    assert_eq "$(upstream_count GET "/packages/$WHL")" 1 "the mount reads the wheel the shim cached"
    [[ ! -e "$MNT/py/Upfs_Sdist" ]] || die "a non-normalised name exists in the mount"
    [[ ! -e "$MNT/py/no-such-project" ]] || die "an unknown project exists in the mount"
    "$PYTHON" - "$MNT/py/upfs-demo/.simple.json" "$WHL" <<'EOF' || die ".simple.json in the mount"
import json, sys
d = json.load(open(sys.argv[1]))
f = [f for f in d["files"] if f["filename"] == sys.argv[2]][0]
assert f["url"] == sys.argv[2], f["url"]  # relative: the file beside it
EOF
}
check "mount layout: MNT/py/<normalized-name>/<file>, true sizes, readable" t_mount

# ---- a project of many files -------------------------------------------------------------------
t_many() {
    # a PEP 503 page without sizes: the listing looks each file up (and asks its size)
    "$PYTHON" - "$T/repo/simple/upfs-many" <<'EOF'
import os, sys
os.makedirs(sys.argv[1], exist_ok=True)
links = "".join('<a href="../../packages/upfs_many-1.%d.0.tar.gz#sha256=%s">upfs_many-1.%d.0.tar.gz</a>\n'
                % (i, "%064x" % i, i) for i in range(500))
open(os.path.join(sys.argv[1], "index.html"), "w").write("<!DOCTYPE html><html><body>\n" + links + "</body></html>\n")
EOF
    # fetched once and parsed from the answer's bytes; every lookup of a file uses the form kept
    # for the page's sha256: nothing is read from the store (one read per lookup before)
    assert_eq "$(ls_reads "$S/metrics" "$MNT/py/upfs-many" ' upfs_many-1\.[0-9]*\.0\.tar\.gz$')" \
        "500 0" "files listed by ls -l, documents read from the store meanwhile"
    assert_eq "$(upstream_count GET /simple/upfs-many/)" 1 "GETs of the page"
}
check "ls -l of a project's 500 files: its page fetched once, no stored copy read" t_many

# ---- through a registry ------------------------------------------------------------------------
t_registry() {
    local before
    before="$(upstream_count '*' "/packages/$WHL")"
    pip_download "$T/dl3" "$S/pyall/simple/" upfs-demo==1.0.0
    ((RC == 0)) || die "pip download through the registry failed ($RC): $ERR $OUT"
    assert_sha256 "$T/dl3/$WHL" "$(fsha "$WHL")"
    assert_eq "$(upstream_count '*' "/packages/$WHL")" "$before" "requests for the wheel"
    http_get "$S/pyall/simple/upfs-demo/" -H 'Accept: text/html'
    assert_contains "$BODY" "$S/pyall/upfs-demo/$WHL#sha256=" "the registry's page links into the registry"
}
check "pip through a pypi registry: its own URLs, nothing fetched again" t_registry

# ---- a registry's local content in its pages ---------------------------------------------------
t_registry_local() {
    local before lwhl=upfs_local-1.0.0-py3-none-any.whl dwhl=upfs_demo-2.0.0-py3-none-any.whl
    mkdir "$MNT/pyall/upfs-local"
    cp "$T/local/$lwhl" "$MNT/pyall/upfs-local/"
    cp "$T/local/$dwhl" "$MNT/pyall/upfs-demo/"
    before="$(total)"
    pip_download "$T/dl-local1" "$S/pyall/simple/" upfs-local
    ((RC == 0)) || die "pip download of a project only the registry's local content has failed ($RC): $ERR $OUT"
    assert_sha256 "$T/dl-local1/$lwhl" "$(fsha "$lwhl")"
    pip_download "$T/dl-local2" "$S/pyall/simple/" upfs-demo
    ((RC == 0)) || die "pip download upfs-demo through the registry failed ($RC): $ERR $OUT"
    assert_eq "$(ls "$T/dl-local2")" "$dwhl" "the newest upfs-demo: the local one"
    assert_sha256 "$T/dl-local2/$dwhl" "$(fsha "$dwhl")"
    http_get "$S/pyall/simple/upfs-demo/" -H 'Accept: application/vnd.pypi.simple.v1+json'
    "$PYTHON" - "$BODY" "$S" "$dwhl" "$(fsha "$dwhl")" "$WHL" "$(fsha "$WHL")" <<'EOF' || die "the registry's merged page: $BODY"
import json, sys
d = json.loads(sys.argv[1])
s, local, lsha, up, usha = sys.argv[2:]
names = [f["filename"] for f in d["files"]]
assert names[0] == local, names            # local first
assert up in names, names                  # the upstream's files stay
by = {f["filename"]: f for f in d["files"]}
assert by[local]["hashes"]["sha256"] == lsha and by[local]["url"] == s + "/pyall/upfs-demo/" + local
assert by[up]["hashes"]["sha256"] == usha and by[up]["url"] == s + "/pyall/upfs-demo/" + up
EOF
    http_get "$S/py/simple/upfs-demo/" -H 'Accept: text/html'
    [[ "$BODY" != *"$dwhl"* ]] || die "the proxy's own page lists the registry's local file"
    assert_eq "$(total)" "$before" "upstream requests for local content"
    http_get "$S/pyall/simple/upfs-nothing/"
    assert_eq "$HTTP_STATUS" 404 "a project neither local content nor an upstream has"
}
check "a pypi registry's pages list its local files first, then the upstreams'" t_registry_local

# ---- bytes that do not match the page's sha256 -------------------------------------------------
t_bad() {
    pip_download "$T/dl4" "$S/py/simple/" upfs-bad
    ((RC != 0)) || die "pip download upfs-bad succeeded"
    local n
    n="$(upstream_count GET "/packages/$BAD")"
    ((n >= 1)) || die "the bad wheel was never fetched"
    http_get "$S/py/upfs-bad/$BAD"
    assert_eq "$HTTP_STATUS" 502 "the shim's answer for bytes that do not match"
    assert_eq "$(upstream_count GET "/packages/$BAD")" $((n + 1)) "not cached: the next request fetches again"
    assert_eq "$(xattr cached "$MNT/py/upfs-bad/$BAD")" none "cached state of the bad wheel"
    [[ -z "$(find "$STATE" -name "$(fsha "$BAD")*")" ]] || die "the bad bytes were stored"
    [[ ! -e "$T/dl4/$BAD" ]] || die "pip kept the bad wheel"
}
check "a wheel that does not match its sha256 fails and is not cached" t_bad

# ---- single flight for index pages ---------------------------------------------------------
# A proxy of its own, so its pages are not cached yet; the upstream answers the pages 1.5 s late,
# so every client asks while the first fetch is still running.
t_page_single_flight() {
    local i sums
    upfs proxy create pyone --type pypi --url "$UPSTREAM_URL" >/dev/null
    wait_until 10 test -d "$MNT/pyone" || die "the new proxy pyone did not appear in the mount"
    upstream_reset_counts
    upstream_fault '{"path": "^/simple/upfs-(demo|sdist)/$", "fault": "delay", "seconds": 1.5}' >/dev/null
    for ((i = 0; i < 16; i++)); do
        "${CURL[@]}" --max-time 30 -H 'Accept: application/vnd.pypi.simple.v1+json' \
            -o "$T/sf-shim.$i" "$S/pyone/simple/upfs-demo/" &
    done
    for ((i = 0; i < 8; i++)); do
        with_timeout 30 ls "$MNT/pyone/upfs-sdist" >"$T/sf-mount.$i" &
    done
    wait
    upstream_clear_faults >/dev/null
    sums="$(sha256sum "$T"/sf-shim.* | cut -d' ' -f1 | sort -u)"
    assert_eq "$(wc -l <<<"$sums")" 1 "one page for 16 concurrent shim clients"
    assert_contains "$(cat "$T/sf-shim.0")" "$WHL" "the page the shim clients got"
    sums="$(sha256sum "$T"/sf-mount.* | cut -d' ' -f1 | sort -u)"
    assert_eq "$(wc -l <<<"$sums")" 1 "one listing for 8 concurrent mount readers"
    assert_contains "$(cat "$T/sf-mount.0")" "$SDIST" "the listing the mount readers got"
    assert_eq "$(upstream_count GET /simple/upfs-demo/)" 1 "upstream GETs of a page 16 clients asked for at once"
    assert_eq "$(upstream_count GET /simple/upfs-sdist/)" 1 "upstream GETs of a page 8 readers listed at once"
}
check "index pages: one upstream request for concurrent clients of the shim and the mount" t_page_single_flight

# ---- the remote gone ---------------------------------------------------------------------------
t_offline() {
    upstream_stop
    upfs proxy update py --metadata-ttl 1 >/dev/null
    sleep 3 # the engine picks the change up within 2 s; the pages are now past their TTL
    pip_download "$T/dl5" "$S/py/simple/" upfs-demo==1.0.0
    ((RC == 0)) || die "pip download of the wheel with the upstream stopped failed ($RC): $ERR $OUT"
    assert_sha256 "$T/dl5/$WHL" "$(fsha "$WHL")"
    pip_download "$T/dl6" "$S/py/simple/" --no-build-isolation Upfs_Sdist==1.0.0
    ((RC == 0)) || die "pip download of the sdist with the upstream stopped failed ($RC): $ERR $OUT"
    assert_sha256 "$T/dl6/$SDIST" "$(fsha "$SDIST")"
    assert_eq "$(xattr stale "$MNT/py/upfs-demo/.simple.json")" 1 "the page is marked stale"
    upfs proxy update py --offline >/dev/null
    sleep 3
    pip_download "$T/dl7" "$S/py/simple/" upfs-demo==1.0.0
    ((RC == 0)) || die "pip download with the proxy offline failed ($RC): $ERR $OUT"
    assert_sha256 "$T/dl7/$WHL" "$(fsha "$WHL")"
}
check "with the upstream stopped, both downloads succeed from the cache (stale, then --offline)" t_offline

finish
