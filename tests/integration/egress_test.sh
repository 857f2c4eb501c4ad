#!/bin/bash
# tests/integration/egress_test.sh -- where the daemon connects and what it sends there
# (docs/SECURITY.md), through a mount.
#
#     bash tests/integration/egress_test.sh build/upstreamfs
#
# Two upstream.py servers on 127.0.0.1: "home" (the proxies' configured origin) and "cdn" (another
# port: another origin). home serves a Helm index, an npm document and a PyPI page that each name
# a file on cdn, and a generic tree whose moved.bin redirects to cdn. Every proxy has
# --auth access-key; the servers log the headers of every request.
#
# Asserts:
#   credentials: Helm, npm and PyPI files named on cdn are read with the fixture's sha256 and cdn
#     sees no Authorization header, while home sees the proxy's Basic credentials; with
#     --pass-credentials cdn sees them too; a redirect's target never does (even with
#     --pass-credentials);
#   the address rule: without --allow-host, the same files (an index entry, a 302 of a generic
#     upstream, and an index entry naming 169.254.169.254) are refused: the read fails, cdn gets no
#     request, and the log names the rule, the address and the --allow-host that would allow it;
#     with --allow-host 127.0.0.1 they are served;
#   sizes: a body without Content-Length longer than --max-size is cut and not cached (a second
#     read asks again, no blob holds its bytes); one within it is served; --max-size does not
#     limit a body whose length was announced.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/mount_common.sh" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/shim/shim_common.sh"

HOME_ROOT="$T/home"
CDN_ROOT="$T/cdn"
MNT="$T/mnt"
mkdir -p "$HOME_ROOT/helm" "$HOME_ROOT/npm" "$HOME_ROOT/pypi/simple/far" "$HOME_ROOT/files" "$CDN_ROOT"
upstream_start --name home "$HOME_ROOT" --quiet
upstream_start --name cdn "$CDN_ROOT" --quiet
CDN="$UPSTREAM_CDN_URL"
USER_PASS="egress-user:egress-s3cret"
BASIC="Basic $(printf '%s' "$USER_PASS" | base64 -w0)"

# ---- fixtures: one file of each kind on cdn, named by a document on home ------------------------
"$PYTHON" - "$HOME_ROOT" "$CDN_ROOT" "$CDN" <<'EOF'
import base64, hashlib, json, os, sys
home, cdn, cdn_url = sys.argv[1:4]
def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()
chart = b"helm chart bytes on the other origin\n" * 50
own = b"helm chart bytes on the proxy's own origin\n" * 50
tgz = b"npm tarball bytes on the other origin\n" * 50
sdist = b"pypi sdist bytes on the other origin\n" * 50
put(os.path.join(cdn, "far-1.0.0.tgz"), chart)
put(os.path.join(home, "helm", "charts", "own-1.0.0.tgz"), own)
put(os.path.join(cdn, "npmfar-1.0.0.tgz"), tgz)
put(os.path.join(cdn, "pyfar-1.0.tar.gz"), sdist)
put(os.path.join(cdn, "moved.bin"), b"moved bytes\n" * 100)
put(os.path.join(home, "files", "moved.bin"), b"never served: redirected\n")
put(os.path.join(home, "files", "moved2.bin"), b"never served: redirected\n")
put(os.path.join(cdn, "moved2.bin"), b"moved2 bytes\n" * 100)
put(os.path.join(home, "files", "big.bin"), os.urandom(64 << 10))
put(os.path.join(home, "files", "small.bin"), b"s" * 512)
put(os.path.join(home, "files", "announced.bin"), b"a" * 4096)
def sha(d):
    return hashlib.sha256(d).hexdigest()
index = """apiVersion: v1
entries:
  far:
  - name: far
    version: 1.0.0
    digest: %s
    urls:
    - %sfar-1.0.0.tgz
  own:
  - name: own
    version: 1.0.0
    digest: %s
    urls:
    - charts/own-1.0.0.tgz
  meta:
  - name: meta
    version: 1.0.0
    urls:
    - http://169.254.169.254/latest/meta-data/meta-1.0.0.tgz
generated: "2026-01-01T00:00:00Z"
""" % (sha(chart), cdn_url, sha(own))
put(os.path.join(home, "helm", "index.yaml"), index.encode())
sri = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
doc = {"name": "npmfar", "dist-tags": {"latest": "1.0.0"},
       "versions": {"1.0.0": {"name": "npmfar", "version": "1.0.0",
                              "dist": {"tarball": cdn_url + "npmfar-1.0.0.tgz", "integrity": sri,
                                       "shasum": hashlib.sha1(tgz).hexdigest()}}}}
put(os.path.join(home, "npm", "npmfar"), json.dumps(doc).encode())
page = ('<!DOCTYPE html><html><body><a href="%spyfar-1.0.tar.gz#sha256=%s">pyfar-1.0.tar.gz</a>'
        '</body></html>\n' % (cdn_url, sha(sdist)))
put(os.path.join(home, "pypi", "simple", "pyfar", "index.html"), page.encode())
with open(os.path.join(home, "sums"), "w") as f:
    for name, d in (("far", chart), ("own", own), ("npmfar", tgz), ("pyfar", sdist),
                    ("moved", b"moved bytes\n" * 100), ("moved2", b"moved2 bytes\n" * 100)):
        f.write("%s %s\n" % (name, sha(d)))
EOF
rmdir "$HOME_ROOT/pypi/simple/far"
sum_of() { awk -v n="$1" '$1 == n { print $2 }' "$HOME_ROOT/sums"; }
for f in moved moved2; do
    upstream_fault --name home "{\"path\": \"^/files/$f\\\\.bin\$\", \"fault\": \"redirect\", \"location\": \"${CDN}$f.bin\", \"status\": 302}"
done
# The GETs of big.bin and small.bin announce no length (their HEADs do: the mount shows a size).
upstream_fault --name home '{"path": "^/files/big\\.bin$", "method": "GET", "fault": "no_length"}'
upstream_fault --name home '{"path": "^/files/small\\.bin$", "method": "GET", "fault": "no_length"}'

# mk KEY TYPE PATH [OPTIONS...]: a proxy on home/PATH with the access key (secret on stdin).
mk() {
    local key="$1" type="$2" path="$3"
    shift 3
    printf '%s' "${USER_PASS#*:}" | upfs proxy create "$key" --type "$type" \
        --url "${UPSTREAM_HOME_URL}$path" --auth access-key --access-key "${USER_PASS%%:*}" \
        --secret-key-stdin --negative-ttl 0 "$@" >/dev/null
}
mk helm helm helm/ --allow-host 127.0.0.1
mk helmpass helm helm/ --allow-host 127.0.0.1 --pass-credentials
mk helmssrf helm helm/
mk npm npm npm/ --allow-host 127.0.0.1
mk npmpass npm npm/ --allow-host 127.0.0.1 --pass-credentials
mk npmssrf npm npm/
mk pypi pypi pypi/ --allow-host 127.0.0.1
mk pypipass pypi pypi/ --allow-host 127.0.0.1 --pass-credentials
mk pypissrf pypi pypi/
mk gen generic files/ --allow-host 127.0.0.1 --pass-credentials
mk genssrf generic files/
mk small generic files/ --max-size 1K
# An HTTP forward proxy (a configured endpoint) for two more generic proxies: through it, the
# learned host's own resolution is what the rule checks.
"${DIE_WITH_PARENT[@]}" "$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/egress/forward_proxy.py" \
    --port-file "$T/fp.port" --log "$T/fp.log" 2>"$T/fp.err" &
FP_PID=$!
on_exit kill -TERM "$FP_PID"
wait_until 10 test -s "$T/fp.port" || die "the forward proxy did not start: $(cat "$T/fp.err")"
FP="http://127.0.0.1:$(cat "$T/fp.port")"
mk viaproxy generic files/ --http-proxy "$FP"
mk viaproxyok generic files/ --http-proxy "$FP" --allow-host 127.0.0.1
# cdn as a configured origin of another proxy: its connections sit in the shared connection cache.
upfs proxy create cdnconf --type generic --url "$CDN" >/dev/null
SPORT="$(free_port)"
upfs_mount "$MNT" -o "listen=127.0.0.1:$SPORT"
wait_for_port "$SPORT" 10 || die "mount -o listen=127.0.0.1:$SPORT: the shim is not listening"
SHIM="http://127.0.0.1:$SPORT"

# auth_seen NAME PATH: the Authorization headers server NAME got for PATH, one per line ("-": none).
auth_seen() {
    upstream_requests --name "$1" | "$PYTHON" -c '
import json, sys
for r in json.load(sys.stdin):
    if r["path"] == sys.argv[1]:
        h = {k.lower(): v for k, v in r["headers"].items()}
        print(h.get("authorization", "-"))' "$2"
}

# read_far MNTPATH SUM CDNPATH WANT: reads MNTPATH (sha256 SUM); cdn saw CDNPATH with exactly the
# Authorization lines WANT ("-" for none), and only now.
read_far() {
    local path="$1" sum="$2" cdn_path="$3" want="$4" got
    upstream_reset_counts --name cdn
    with_timeout 30 cat "$MNT/$path" >"$T/read.out" || die "cat $path failed"
    assert_sha256 "$T/read.out" "$sum"
    got="$(auth_seen cdn "$cdn_path" | sort -u)"
    assert_eq "$got" "$want" "Authorization that cdn saw for $cdn_path"
}

# refused MNTPATH CDNPATH RULE: the read fails, cdn gets nothing, the log names the rule.
refused() {
    local path="$1" cdn_path="$2" rule="$3"
    upstream_reset_counts --name cdn
    : >"$T/empty"
    if with_timeout 30 cat "$MNT/$path" >"$T/read.out" 2>"$T/read.err"; then
        die "cat $path succeeded; the address rule should have refused it"
    fi
    assert_eq "$(upstream_count --name cdn '*' "$cdn_path")" 0 "requests of $cdn_path on cdn"
    grep -F "egress rule: refused" "$STATE/upstreamfs.log" | grep -qF -- "$rule" ||
        die "the log does not name the rule ($rule): $(grep -F 'egress' "$STATE/upstreamfs.log" | tail -3)"
}

# The refusals first: once another proxy has a file, the store may serve it by digest.
RULE_LO="it resolves to 127.0.0.1, a loopback (127.0.0.0/8) address"
check "helm: an index entry on a loopback origin is refused, naming the rule" \
    refused helmssrf/charts/far-1.0.0.tgz /far-1.0.0.tgz "$RULE_LO"
check "npm: a tarball URL on a loopback origin is refused" \
    refused npmssrf/npmfar/-/npmfar-1.0.0.tgz /npmfar-1.0.0.tgz "--allow-host 127.0.0.1 would allow it"
check "pypi: a file URL on a loopback origin is refused" \
    refused pypissrf/pyfar/pyfar-1.0.tar.gz /pyfar-1.0.tar.gz "refused http://127.0.0.1:$UPSTREAM_CDN_PORT"
check "generic: a 302 to a loopback origin is refused" \
    refused genssrf/moved.bin /moved.bin "$RULE_LO"
check "helm: an index entry naming 169.254.169.254 is refused (link-local, instance metadata)" \
    refused helmssrf/charts/meta-1.0.0.tgz /none "169.254.169.254, a link-local"

# A connection to cdn that a configured proxy opened (and libcurl keeps for reuse) must not
# carry a learned request: the check is made on reused connections too, before anything is sent.
t_pooled_connection() {
    with_timeout 30 cat "$MNT/cdnconf/moved2.bin" >"$T/read.out" || die "cat cdnconf/moved2.bin failed"
    assert_sha256 "$T/read.out" "$(sum_of moved2)"
    refused genssrf/moved.bin /moved.bin "$RULE_LO"
}
check "a learned origin is refused on a connection reused from a configured proxy's" t_pooled_connection

t_http_proxy() {
    : >"$T/fp.log"
    refused viaproxy/moved.bin /moved.bin "$RULE_LO"
    grep -qF "${UPSTREAM_HOME_URL}files/moved.bin" "$T/fp.log" || die "the proxy's own URL did not go through --http-proxy"
    ! grep -qF "${CDN}moved.bin" "$T/fp.log" || die "the refused target reached the forward proxy"
    with_timeout 30 cat "$MNT/viaproxyok/moved.bin" >"$T/read.out" || die "cat viaproxyok/moved.bin failed"
    assert_sha256 "$T/read.out" "$(sum_of moved)"
    grep -qF "${CDN}moved.bin" "$T/fp.log" || die "the allowed target did not go through --http-proxy"
}
check "--http-proxy: a redirect to a loopback origin is refused before the proxy is asked; allowed with --allow-host" \
    t_http_proxy

t_shim_refused() {
    upstream_reset_counts --name cdn
    http_get "$SHIM/npmssrf/npmfar/-/npmfar-1.0.0.tgz"
    [[ "$HTTP_STATUS" != 200 ]] || die "the shim served the tarball on a loopback origin"
    http_get "$SHIM/genssrf/moved.bin"
    [[ "$HTTP_STATUS" != 200 ]] || die "the shim served a 302's loopback target"
    assert_eq "$(upstream_count --name cdn '*' /npmfar-1.0.0.tgz)" 0 "cdn requests of the tarball"
    assert_eq "$(upstream_count --name cdn '*' /moved.bin)" 0 "cdn requests of moved.bin"
}
check "shim: a tarball URL and a redirect to a loopback origin are refused" t_shim_refused

t_shim_redirect_anonymous() {
    upstream_reset_counts --name cdn
    upstream_reset_counts --name home
    http_get "$SHIM/gen/moved2.bin"
    assert_eq "$HTTP_STATUS" 200 "GET /gen/moved2.bin"
    assert_sha256 "$T/body" "$(sum_of moved2)"
    assert_eq "$(auth_seen cdn /moved2.bin | sort -u)" - "Authorization that cdn saw"
    assert_eq "$(auth_seen home /files/moved2.bin | sort -u)" "$BASIC" "Authorization on the proxy's origin"
}

t_helm_credentials() {
    upstream_reset_counts --name home
    read_far helm/charts/own-1.0.0.tgz "$(sum_of own)" /none ""
    assert_eq "$(auth_seen home /helm/charts/own-1.0.0.tgz | sort -u)" "$BASIC" "Authorization on the proxy's origin"
    assert_eq "$(auth_seen home /helm/index.yaml | sort -u)" "$BASIC" "Authorization for the index"
    read_far helm/charts/far-1.0.0.tgz "$(sum_of far)" /far-1.0.0.tgz -
}
check "helm: a chart on another origin is fetched without the proxy's credentials" t_helm_credentials
check "helm --pass-credentials: the other origin gets them" \
    read_far helmpass/charts/far-1.0.0.tgz "$(sum_of far)" /far-1.0.0.tgz "$BASIC"

t_npm_credentials() {
    upstream_reset_counts --name home
    read_far npm/npmfar/-/npmfar-1.0.0.tgz "$(sum_of npmfar)" /npmfar-1.0.0.tgz -
    assert_eq "$(auth_seen home /npm/npmfar | sort -u)" "$BASIC" "Authorization for the npm document"
}
check "npm: a tarball on another origin is fetched without the proxy's credentials" t_npm_credentials
check "npm --pass-credentials: the other origin gets them" \
    read_far npmpass/npmfar/-/npmfar-1.0.0.tgz "$(sum_of npmfar)" /npmfar-1.0.0.tgz "$BASIC"

t_pypi_credentials() {
    upstream_reset_counts --name home
    read_far pypi/pyfar/pyfar-1.0.tar.gz "$(sum_of pyfar)" /pyfar-1.0.tar.gz -
    assert_eq "$(auth_seen home /pypi/simple/pyfar/ | sort -u)" "$BASIC" "Authorization for the PyPI page"
}
check "pypi: a file on another origin is fetched without the proxy's credentials" t_pypi_credentials
check "pypi --pass-credentials: the other origin gets them" \
    read_far pypipass/pyfar/pyfar-1.0.tar.gz "$(sum_of pyfar)" /pyfar-1.0.tar.gz "$BASIC"

t_redirect_anonymous() {
    upstream_reset_counts --name home
    read_far gen/moved.bin "$(sum_of moved)" /moved.bin -
    assert_eq "$(auth_seen home /files/moved.bin | sort -u)" "$BASIC" "Authorization on the redirecting origin"
}
check "generic: a redirect's target on another origin is fetched anonymously (even with --pass-credentials)" \
    t_redirect_anonymous
check "shim: a redirect's target on another origin is fetched anonymously" t_shim_redirect_anonymous

t_max_size() {
    local before
    before="$(upstream_count --name home GET /files/big.bin)"
    if with_timeout 30 cat "$MNT/small/big.bin" >"$T/big.out" 2>/dev/null; then
        die "a 64 KiB body without Content-Length was served through --max-size 1K"
    fi
    if with_timeout 30 cat "$MNT/small/big.bin" >"$T/big.out" 2>/dev/null; then
        die "the second read of big.bin succeeded"
    fi
    (($(upstream_count --name home GET /files/big.bin) >= before + 2)) ||
        die "the second read did not ask the remote again (something was cached)"
    local hex
    hex="$(sha256sum "$HOME_ROOT/files/big.bin" | cut -d' ' -f1)"
    [[ -z "$(find "$STATE" -name "*$hex*" 2>/dev/null)" ]] || die "the store holds big.bin's bytes"
    grep -qF "the body is longer than the proxy's max_size (1024 bytes); cut" "$STATE/upstreamfs.log" ||
        die "the log does not say why big.bin was cut"
}
check "--max-size: a body of unknown length over it is cut and not cached" t_max_size
t_max_size_within() {
    local sum
    sum="$(sha256sum "$HOME_ROOT/files/small.bin" | cut -d' ' -f1)"
    with_timeout 30 cat "$MNT/small/small.bin" >"$T/small.out" || die "cat small.bin failed"
    assert_sha256 "$T/small.out" "$sum"
}
check "--max-size: a body of unknown length within it is served" t_max_size_within
t_max_size_announced() {
    with_timeout 30 cat "$MNT/small/announced.bin" >"$T/announced.out" || die "cat announced.bin failed"
    assert_sha256 "$T/announced.out" "$(sha256sum "$HOME_ROOT/files/announced.bin" | cut -d' ' -f1)"
}
check "--max-size does not limit a body whose Content-Length announced its size" t_max_size_announced

finish
