#!/bin/bash
# tests/integration/lib/selftest.sh -- self-test of the integration-test harness in this dir.
#
# Usage:  bash tests/integration/lib/selftest.sh
#         SELFTEST_BIG=0 bash tests/integration/lib/selftest.sh   # skip the 1 GiB fixture
#         KEEP_TMP=1 ...                                          # keep the temp dir for debugging
#
# Exercises common.sh (asserts, cleanup stack incl. on failure and on SIGTERM, timeouts, ports),
# nginx.sh (second host name, autoindex, Range/ETag, access-log counts, restart on the same port,
# connection refused after stop), fixtures.sh (manifests, Maven checksums, Helm index + charts)
# and upstream.py/upstream.sh (Range, conditionals, every fault type, counts, concurrency, early
# disconnects, restart). Needs curl, nginx, openssl and /usr/bin/python3 (python3-yaml optional).
# Exits non-zero on the first failure.
set -euo pipefail

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEST_NAME=selftest
source "$LIB/common.sh"
source "$LIB/nginx.sh"
source "$LIB/fixtures.sh"
source "$LIB/upstream.sh"

T="$(test_tmpdir)"
C=("${CURL[@]}" --max-time 30)
STARTED=$SECONDS

section() { log "---- $*"; }

# curl_rc ARGS...: print curl's exit status (0 = ok) without tripping set -e
curl_rc() {
    local rc=0
    "${C[@]}" "$@" >/dev/null 2>&1 || rc=$?
    echo "$rc"
}

# http_code URL [curl args...]
http_code() {
    "${C[@]}" -o /dev/null -w '%{http_code}' "$@" || true
}

# url_sha256 URL [curl args...]: sha256 of the downloaded body
url_sha256() {
    local out
    out="$("${C[@]}" --fail "$@" | openssl dgst -sha256 -r)" || return 1
    printf '%s\n' "${out%% *}"
}

# ============================================================================================
section "common.sh"
assert_eq "a b" "a b" "assert_eq"
assert_ne a b "assert_ne"
assert_contains "hello world" "lo wo"
(assert_eq 1 2 "expected failure") 2>/dev/null && die "assert_eq did not fail"
printf 'abc' >"$T/abc"
assert_eq "$(sha256_of "$T/abc")" ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "sha256_of"
assert_sha256 "$T/abc" BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD
(assert_sha256 "$T/abc" 0000) 2>/dev/null && die "assert_sha256 did not fail"

p="$(free_port)"
if ! [[ "$p" =~ ^[0-9]+$ ]] || ((p <= 1024 || p >= 65536)); then die "free_port gave '$p'"; fi
port_is_open "$p" && die "free port $p is open"

rc=0; with_timeout 1 sleep 10 || rc=$?
assert_eq "$rc" 124 "with_timeout on a command"
rc=0; with_timeout 5 true || rc=$?
assert_eq "$rc" 0 "with_timeout success"
rc=0; with_timeout 5 sh -c 'exit 3' || rc=$?
assert_eq "$rc" 3 "with_timeout passes the status through"
_slow_fn() { sleep 10; }
t0=$SECONDS; rc=0; with_timeout 1 _slow_fn || rc=$?
assert_eq "$rc" 124 "with_timeout on a function"
((SECONDS - t0 < 5)) || die "with_timeout on a function took $((SECONDS - t0))s"
rc=0; wait_until 0.3 false || rc=$?
assert_eq "$rc" 1 "wait_until timeout"
wait_until 1 true || die "wait_until true"

# cleanup stack: reverse order, exit status kept, runs on `set -e` failure and on SIGTERM
cat >"$T/child.sh" <<EOF
set -euo pipefail
TEST_NAME=child
source "$LIB/common.sh"
on_exit 'echo first >>"$T/order"'
add_line() { printf '%s\n' "\$1" >>"$T/order"; }
on_exit add_line "second with space"
on_exit 'echo "\$((1+1))" >>"$T/order"'
false
echo notreached >>"$T/order"
EOF
rc=0; bash "$T/child.sh" 2>/dev/null || rc=$?
assert_eq "$rc" 1 "child exit status preserved"
assert_eq "$(cat "$T/order")" "$(printf '2\nsecond with space\nfirst')" "cleanup order"

mkdir -p "$T/sig-root" "$T/ctmp"   # ctmp: the children's TMPDIR, so a SIGKILLed child leaks nothing
echo sig >"$T/sig-root/f"
cat >"$T/child2.sh" <<EOF
set -euo pipefail
TEST_NAME=child2
source "$LIB/common.sh"
source "$LIB/upstream.sh"
source "$LIB/nginx.sh"
upstream_start "$T/sig-root" --quiet
nginx_start "$T/sig-root"
echo "\$UPSTREAM_PORT \$UPSTREAM_PID \$NGINX_PORT \$NGINX_PID" >"$T/child2.ports"
"\${DIE_WITH_PARENT[@]}" sleep 60 &
on_exit "kill \$!"
wait \$!
EOF
TMPDIR="$T/ctmp" bash "$T/child2.sh" 2>"$T/child2.err" &
cpid=$!
wait_until 20 test -s "$T/child2.ports" || { cat "$T/child2.err" >&2; die "child2 did not start"; }
read -r up_port up_pid ng_port ng_pid <"$T/child2.ports"
port_is_open "$up_port" || die "child2 upstream not listening"
port_is_open "$ng_port" || die "child2 nginx not listening"
kill -TERM "$cpid"
rc=0; wait "$cpid" || rc=$?
assert_eq "$rc" 143 "child2 exit status after SIGTERM"
pid_alive "$up_pid" && die "upstream.py survived its test's SIGTERM"
pid_alive "$ng_pid" && die "nginx survived its test's SIGTERM"
port_is_open "$up_port" && die "upstream port still open after SIGTERM"
port_is_open "$ng_port" && die "nginx port still open after SIGTERM"

# SIGKILL: no trap runs, but the servers get SIGTERM from the kernel (parent-death signal)
if ((${#DIE_WITH_PARENT[@]})); then
    rm -f "$T/child2.ports"
    TMPDIR="$T/ctmp" bash "$T/child2.sh" 2>"$T/child2.err" &
    cpid=$!
    wait_until 20 test -s "$T/child2.ports" || { cat "$T/child2.err" >&2; die "child2 did not start"; }
    read -r up_port up_pid ng_port ng_pid <"$T/child2.ports"
    kill -KILL "$cpid"
    wait "$cpid" 2>/dev/null || true
    wait_until 10 _upfs_pid_dead "$up_pid" || die "upstream.py survived SIGKILL of its test"
    wait_until 10 _upfs_pid_dead "$ng_pid" || die "nginx survived SIGKILL of its test"
    wait_port_closed "$up_port" 5 || die "upstream port open after SIGKILL of its test"
    wait_port_closed "$ng_port" 5 || die "nginx port open after SIGKILL of its test"
else
    log "setpriv --pdeathsig not available: skipping the SIGKILL check"
fi
log "common.sh ok"

# ============================================================================================
section "fixtures.sh"
t0=$(_upfs_now_ms)
if [[ "${SELFTEST_BIG:-1}" == 1 ]]; then
    fixtures_generic "$T/www" --big
    BIG_MS=$(($(_upfs_now_ms) - t0))
    log "fixtures_generic --big took ${BIG_MS} ms (1 GiB + hashing)"
    assert_eq "$(stat -c %s "$T/www/1g.bin")" 1073741824 "1g.bin size"
else
    fixtures_generic "$T/www"
fi
assert_eq "$(stat -c %s "$T/www/empty.bin")" 0 "empty.bin"
assert_eq "$(stat -c %s "$T/www/one.bin")" 1 "one.bin"
assert_eq "$(stat -c %s "$T/www/4k.bin")" 4096 "4k.bin"
assert_eq "$(stat -c %s "$T/www/10m.bin")" 10485760 "10m.bin"
[[ -f "$T/www/a/b/c/deep.txt" && -f "$T/www/with space+plus.txt" && -d "$T/www/listing/sub" ]] ||
    die "generic layout incomplete"
# determinism: the stream depends only on the seed, and a prefix is a prefix
fixture_bytes 4k.bin 4096 "$T/again.bin"
assert_sha256 "$T/again.bin" "$(fixture_sha256 "$T/www" 4k.bin)"
fixture_bytes 10m.bin 4096 "$T/prefix.bin"
cmp -s "$T/prefix.bin" <(head -c 4096 "$T/www/10m.bin") || die "stream is not prefix-stable"
cmp -s "$T/www/4k.bin" <(head -c 4096 "$T/www/10m.bin") && die "different seeds gave the same bytes"
assert_eq "$(fixture_sha256 "$T/www" empty.bin)" e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 "empty sha"

fixtures_maven "$T/maven"
# helm charts live on nginx: index.yaml + charts/ on 127.0.0.1, beta on "localhost" (other root)
mkdir -p "$T/helm" "$T/other"
nginx_start "$T/www" "$T/other"
fixtures_helm "$T/helm" "$T/other" "$NGINX_OTHER_URL"
[[ "$FIXTURES_MANIFEST" == "$T/fixtures.sha256" ]] || die "FIXTURES_MANIFEST=$FIXTURES_MANIFEST"
(cd "$T" && sha256sum --quiet -c fixtures.sha256) || die "manifest does not match the files"
for d in www maven helm other; do fixtures_verify "$T/$d" || die "fixtures_verify $d"; done
# re-running a builder replaces its entries instead of duplicating them
n1="$(wc -l <"$T/fixtures.sha256")"
fixtures_maven "$T/maven"
assert_eq "$(wc -l <"$T/fixtures.sha256")" "$n1" "manifest entries after a rebuild"

"$PYTHON" - "$T/maven" <<'EOF' || die "maven fixture checks"
import hashlib, os, sys, zipfile
import xml.etree.ElementTree as ET
r = sys.argv[1]
def rd(p): return open(os.path.join(r, p), "rb").read()
def txt(p): return rd(p).decode().strip()
d = "com/example/demo/1.0/"
jar = rd(d + "demo-1.0.jar")
with zipfile.ZipFile(os.path.join(r, d + "demo-1.0.jar")) as z:
    assert z.testzip() is None
    assert "META-INF/MANIFEST.MF" in z.namelist()
assert txt(d + "demo-1.0.jar.sha1") == hashlib.sha1(jar).hexdigest()
assert txt(d + "demo-1.0.jar.sha256") == hashlib.sha256(jar).hexdigest()
assert txt(d + "demo-1.0.jar.md5") == hashlib.md5(jar).hexdigest()
pom = rd(d + "demo-1.0.pom")
assert txt(d + "demo-1.0.pom.sha1") == hashlib.sha1(pom).hexdigest() + "  demo-1.0.pom"
ET.fromstring(pom)
a = ET.fromstring(rd("com/example/demo/maven-metadata.xml"))
assert [v.text for v in a.find("versioning/versions")] == ["1.0", "2.0-SNAPSHOT"]
assert txt("com/example/demo/maven-metadata.xml.sha1") == hashlib.sha1(rd("com/example/demo/maven-metadata.xml")).hexdigest()
s = "com/example/demo/2.0-SNAPSHOT/"
v = ET.fromstring(rd(s + "maven-metadata.xml"))
ts, bn = v.findtext("versioning/snapshot/timestamp"), v.findtext("versioning/snapshot/buildNumber")
name = "demo-2.0-%s-%s.jar" % (ts, bn)
assert os.path.exists(os.path.join(r, s + name)), name
assert txt(s + name + ".sha1") == hashlib.sha1(rd(s + name)).hexdigest()
assert [e.text for e in v.iter("value")] == ["2.0-%s-%s" % (ts, bn)] * 2
b = "com/example/bad/1.0/"
bad = rd(b + "bad-1.0.jar")
zipfile.ZipFile(os.path.join(r, b + "bad-1.0.jar")).testzip()
assert txt(b + "bad-1.0.jar.sha1") != hashlib.sha1(bad).hexdigest()
assert len(txt(b + "bad-1.0.jar.sha1")) == 40
assert not os.path.exists(os.path.join(r, b + "bad-1.0.jar.sha256"))
EOF

"$PYTHON" - "$T/helm" "$T/other" "$NGINX_OTHER_URL" "$HELM_GAMMA_WRONG_DIGEST" <<'EOF' || die "helm fixture checks"
import hashlib, io, os, sys, tarfile
root, other, other_url, gamma_wrong = sys.argv[1:5]
raw = open(os.path.join(root, "index.yaml")).read()
try:
    import yaml
except ImportError:
    yaml = None
    print("python3-yaml not available: grep checks only", file=sys.stderr)
def sha(p): return hashlib.sha256(open(p, "rb").read()).hexdigest()
files = {"alpha": os.path.join(root, "charts/alpha-0.1.0.tgz"),
         "beta": os.path.join(other, "beta-1.2.3.tgz"),
         "gamma": os.path.join(root, "charts/gamma-0.0.1.tgz")}
for name, p in files.items():
    with tarfile.open(p, "r:gz") as tf:
        chart = tf.extractfile(name + "/Chart.yaml").read().decode()
        assert "apiVersion: v2\n" in chart and ("name: %s\n" % name) in chart, chart
        for m in tf.getmembers():
            assert m.mtime == 0 and m.name.startswith(name + "/"), m.name
    assert open(p, "rb").read()[4:8] == b"\0\0\0\0", "gzip mtime must be 0"
if yaml:
    idx = yaml.safe_load(raw)
    assert idx["apiVersion"] == "v1" and "generated" in idx
    e = idx["entries"]
    assert sorted(e) == ["alpha", "beta", "gamma"]
    assert e["alpha"][0]["urls"] == ["charts/alpha-0.1.0.tgz"]
    assert e["beta"][0]["urls"] == [other_url.rstrip("/") + "/beta-1.2.3.tgz"]
    assert e["gamma"][0]["urls"] == ["charts/gamma-0.0.1.tgz"]
    assert e["alpha"][0]["digest"] == sha(files["alpha"])
    assert e["beta"][0]["digest"] == sha(files["beta"])
    assert e["gamma"][0]["digest"] == gamma_wrong != sha(files["gamma"])
    for k in e:
        v = e[k][0]
        assert v["name"] == k and v["version"] and v["created"] and v["apiVersion"] == "v2"
        assert len(v["digest"]) == 64 and not v["digest"].startswith("sha256:")
else:
    assert raw.startswith("apiVersion: v1\n")
    assert "- charts/alpha-0.1.0.tgz\n" in raw
    assert "- %s/beta-1.2.3.tgz\n" % other_url.rstrip("/") in raw
    assert "digest: %s\n" % sha(files["alpha"]) in raw
    assert "digest: %s\n" % gamma_wrong in raw
EOF
log "fixtures.sh ok"

# ============================================================================================
section "nginx.sh"
grep -Eq '^[[:space:]]*access_log[^#]*(buffer|flush)=' "$NGINX_DIR/nginx.conf" && die "access_log must not be buffered"
ss_out="$(ss -Hltnp 2>/dev/null | grep ":$NGINX_PORT " || true)"
if [[ -n "$ss_out" ]]; then
    [[ "$ss_out" == *"127.0.0.1:$NGINX_PORT "* ]] || die "nginx listens beyond 127.0.0.1: $ss_out"
fi
assert_eq "$NGINX_URL" "http://127.0.0.1:$NGINX_PORT/" "NGINX_URL"
assert_eq "$NGINX_OTHER_URL" "http://localhost:$NGINX_PORT/" "NGINX_OTHER_URL"
for f in empty.bin one.bin 4k.bin 10m.bin hello.txt a/b/c/deep.txt; do
    assert_eq "$(url_sha256 "$NGINX_URL$f")" "$(fixture_sha256 "$T/www" "$f")" "nginx $f"
done
assert_eq "$(url_sha256 "${NGINX_URL}with%20space+plus.txt")" "$(fixture_sha256 "$T/www" "with space+plus.txt")" "space+plus"
assert_eq "$(url_sha256 "${NGINX_URL}with%20space%2Bplus.txt")" "$(fixture_sha256 "$T/www" "with space+plus.txt")" "space%2Bplus"
# second host name: another root on the same port
assert_eq "$(url_sha256 "${NGINX_OTHER_URL}beta-1.2.3.tgz")" "$(fixture_sha256 "$T/other" beta-1.2.3.tgz)" "beta via localhost"
assert_eq "$(http_code "${NGINX_URL}beta-1.2.3.tgz")" 404 "beta must not exist on 127.0.0.1"
assert_eq "$(http_code "${NGINX_OTHER_URL}hello.txt")" 404 "hello.txt must not exist on localhost"
# autoindex, directory redirect
idx="$("${C[@]}" --fail "${NGINX_URL}listing/")"
assert_contains "$idx" '<a href="one.txt">one.txt</a>' "autoindex"
assert_contains "$idx" '<a href="sub/">sub/</a>' "autoindex subdir"
assert_contains "$("${C[@]}" --fail "$NGINX_URL")" 'with%20space%2Bplus.txt' "autoindex escaping"
assert_eq "$(http_code "${NGINX_URL}listing")" 301 "dir without slash"
# Range / validators
assert_eq "$("${C[@]}" -r 1-3 "${NGINX_URL}hello.txt")" "ell" "nginx range"
assert_eq "$(http_code "${NGINX_URL}hello.txt" -r 1-3)" 206 "nginx 206"
hdrs="$("${C[@]}" -I "${NGINX_URL}hello.txt")"
etag="$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^ETag: //Ip')"
lm="$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^Last-Modified: //Ip')"
[[ -n "$etag" && -n "$lm" ]] || die "nginx: no ETag/Last-Modified: $hdrs"
assert_eq "$(http_code "${NGINX_URL}hello.txt" -H "If-None-Match: $etag")" 304 "nginx If-None-Match"
assert_eq "$(http_code "${NGINX_URL}hello.txt" -H "If-Modified-Since: $lm")" 304 "nginx If-Modified-Since"
# counts (the log line is written right after the response; nginx_expect_count waits for it)
nginx_log_reset
assert_eq "$(nginx_count GET '.')" 0 "count after reset"
for _ in 1 2 3; do "${C[@]}" --fail -o /dev/null "${NGINX_URL}a/b/c/deep.txt"; done
"${C[@]}" --fail -o /dev/null -I "${NGINX_URL}a/b/c/deep.txt"
"${C[@]}" --fail -o /dev/null "${NGINX_URL}with%20space+plus.txt"
"${C[@]}" --fail -o /dev/null "${NGINX_OTHER_URL}beta-1.2.3.tgz"
"${C[@]}" -o /dev/null "${NGINX_URL}nope"
nginx_expect_count 3 GET '^/a/b/c/deep\.txt$'
nginx_expect_count 1 HEAD '^/a/b/c/deep\.txt$'
nginx_expect_count 4 '*' '^/a/b/c/deep\.txt$'
nginx_expect_count 1 GET '^/with space\+plus\.txt$'
nginx_expect_count 1 --raw GET '^/with%20space\+plus\.txt$'
nginx_expect_count 1 --host localhost GET '^/beta-1\.2\.3\.tgz$'
nginx_expect_count 0 --host 127.0.0.1 GET 'beta'
nginx_expect_count 1 --status 404 GET '^/nope$'
nginx_expect_count 7 '*' '.'
grep -q "$(printf '\t')206$(printf '\t')" "$NGINX_LOG" && die "stale lines after nginx_log_reset"
# the access log has method, uri, status and bytes sent
line="$(grep -m1 'deep.txt' "$NGINX_LOG")"
IFS=$'\t' read -r _ _ m u _ s b _ <<<"$line"
assert_eq "$m $u $s $b" "GET /a/b/c/deep.txt 200 10" "access log fields"

if [[ "${SELFTEST_BIG:-1}" == 1 ]]; then
    t0=$(_upfs_now_ms)
    assert_eq "$(url_sha256 "${NGINX_URL}1g.bin")" "$(fixture_sha256 "$T/www" 1g.bin)" "nginx 1 GiB"
    log "nginx: 1 GiB download + hash in $(($(_upfs_now_ms) - t0)) ms"
fi

# restart on the same port; stop -> connection refused
old_port="$NGINX_PORT"
nginx_restart
ng_pid_before_stop="$NGINX_PID"
assert_eq "$NGINX_PORT" "$old_port" "restart keeps the port"
assert_eq "$(http_code "${NGINX_URL}hello.txt")" 200 "after restart"
nginx_stop
port_is_open "$old_port" && die "nginx port open after nginx_stop"
assert_eq "$(curl_rc "${NGINX_URL}hello.txt")" 7 "curl to a stopped nginx: connection refused"
pid_alive "$ng_pid_before_stop" && die "nginx master still alive"
nginx_stop   # idempotent
nginx_restart
assert_eq "$(http_code "${NGINX_OTHER_URL}beta-1.2.3.tgz")" 200 "second host after restart"
log "nginx.sh ok"

# ============================================================================================
section "upstream.py / upstream.sh"
upstream_start "$T/www" --quiet
U="$UPSTREAM_URL"
assert_eq "$U" "http://127.0.0.1:$UPSTREAM_PORT/" "UPSTREAM_URL"
ss_out="$(ss -Hltn 2>/dev/null | grep ":$UPSTREAM_PORT " || true)"
if [[ -n "$ss_out" ]]; then
    [[ "$ss_out" == *"127.0.0.1:$UPSTREAM_PORT "* ]] || die "upstream listens beyond 127.0.0.1: $ss_out"
fi
for f in empty.bin one.bin 4k.bin 10m.bin a/b/c/deep.txt; do
    assert_eq "$(url_sha256 "$U$f")" "$(fixture_sha256 "$T/www" "$f")" "upstream $f"
done
assert_eq "$(url_sha256 "${U}with%20space+plus.txt")" "$(fixture_sha256 "$T/www" "with space+plus.txt")" "upstream space+plus"
assert_eq "$(upstream_count GET "/with space+plus.txt")" 1 "decoded path count"

# Range
assert_eq "$("${C[@]}" -r 1-3 "${U}hello.txt")" "ell" "range a-b"
assert_eq "$("${C[@]}" -r 7- "${U}hello.txt")" "upstreamfs" "range a-"
assert_eq "$("${C[@]}" -r -3 "${U}hello.txt")" "fs" "range -n (incl. the newline)"
hdrs="$("${C[@]}" -i -r 4096-8191 "${U}10m.bin" -o /dev/null -D - | tr -d '\r')"
assert_contains "$hdrs" "HTTP/1.1 206" "206"
assert_contains "$hdrs" "Content-Range: bytes 4096-8191/10485760" "Content-Range"
assert_contains "$hdrs" "Content-Length: 4096" "206 Content-Length"
"${C[@]}" -r 4096-8191 "${U}10m.bin" -o "$T/range.bin"
cmp -s "$T/range.bin" <(tail -c +4097 "$T/www/10m.bin" | head -c 4096) || die "range bytes"
hdrs="$("${C[@]}" -o /dev/null -D - -r 18- "${U}hello.txt" | tr -d '\r')"
assert_contains "$hdrs" "HTTP/1.1 416" "416"
assert_contains "$hdrs" "Content-Range: bytes */18" "416 Content-Range"
assert_eq "$(http_code "${U}hello.txt" -r 0-1,3-4)" 200 "multi-range -> 200"
assert_eq "$(http_code "${U}empty.bin" -r 0-)" 416 "range on an empty file"
# HEAD, validators
hdrs="$("${C[@]}" -I "${U}10m.bin" | tr -d '\r')"
assert_contains "$hdrs" "Content-Length: 10485760" "HEAD Content-Length"
etag="$(sed -n 's/^ETag: //Ip' <<<"$hdrs")"
lm="$(sed -n 's/^Last-Modified: //Ip' <<<"$hdrs")"
[[ -n "$etag" && -n "$lm" ]] || die "upstream: no ETag/Last-Modified"
assert_eq "$(http_code "${U}10m.bin" -H "If-None-Match: $etag")" 304 "If-None-Match"
assert_eq "$(http_code "${U}10m.bin" -H 'If-None-Match: "nope"')" 200 "If-None-Match mismatch"
assert_eq "$(http_code "${U}10m.bin" -H "If-Modified-Since: $lm")" 304 "If-Modified-Since"
assert_eq "$(http_code "${U}10m.bin" -H "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT")" 200 "IMS old"
assert_eq "$(http_code "${U}10m.bin" -r 0-9 -H "If-Range: $etag")" 206 "If-Range match"
assert_eq "$(http_code "${U}10m.bin" -r 0-9 -H 'If-Range: "old"')" 200 "If-Range mismatch"
# directories, bad paths
assert_eq "$(http_code "${U}listing")" 301 "dir redirect"
assert_contains "$("${C[@]}" --fail "${U}listing/")" '<a href="sub/">sub/</a>' "upstream autoindex"
assert_eq "$(http_code "${U}nope")" 404 "404"
assert_eq "$(http_code --path-as-is "${U}../../etc/passwd")" 404 "dot-dot"
assert_eq "$(http_code --path-as-is "${U}%2e%2e/%2e%2e/etc/passwd")" 404 "encoded dot-dot"
assert_eq "$(http_code "${U}a%00b")" 400 "NUL"

# counts: exact per method + path, reset
upstream_reset
assert_eq "$(upstream_counts | tr -d ' \n')" "{}" "counts after reset"
for _ in 1 2 3; do "${C[@]}" --fail -o /dev/null "${U}hello.txt"; done
"${C[@]}" --fail -o /dev/null -I "${U}hello.txt"
"${C[@]}" --fail -o /dev/null "${U}hello.txt?x=1"
assert_eq "$(upstream_count GET /hello.txt)" 4 "GET count (query ignored)"
assert_eq "$(upstream_count HEAD /hello.txt)" 1 "HEAD count"
assert_eq "$(upstream_count '*' /hello.txt)" 5 "any-method count"
assert_eq "$(upstream_count GET /hello)" 0 "count is exact, not a prefix"
upstream_expect_count 4 GET /hello.txt
upstream_counts | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); assert d == {"GET /hello.txt": 4, "HEAD /hello.txt": 1}, d' ||
    die "counts JSON"
upstream_requests | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); assert len(d) == 5 and d[4]["target"] == "/hello.txt?x=1", d' ||
    die "requests JSON"

# --- faults
upstream_reset
upstream_fault '{"path": "^/hello\\.txt$", "fault": "status", "status": 503, "times": 2}'
assert_eq "$(http_code "${U}hello.txt")" 503 "status fault 1"
assert_eq "$(http_code "${U}hello.txt")" 503 "status fault 2"
assert_eq "$(http_code "${U}hello.txt")" 200 "status fault spent after times"
assert_eq "$(upstream_count GET /hello.txt)" 3 "faulted requests are counted"
upstream_fault '{"path": "^/4k", "method": "HEAD", "fault": "status", "status": 500}'
assert_eq "$(http_code -I "${U}4k.bin")" 500 "method-limited fault (HEAD)"
assert_eq "$(http_code "${U}4k.bin")" 200 "method-limited fault (GET untouched)"
upstream_reset

upstream_fault '{"path": "^/one\\.bin$", "fault": "delay", "seconds": 1}'
t="$("${C[@]}" -o /dev/null -w '%{time_starttransfer}' "${U}one.bin")"
"$PYTHON" -c "import sys; sys.exit(0 if float('$t') >= 0.9 else 1)" || die "delay: first byte after $t s"
assert_eq "$(curl_rc --max-time 0.5 "${U}one.bin")" 28 "delay exceeds a client timeout"

upstream_fault '{"path": "^/4k\\.bin$", "fault": "stall", "bytes": 1000, "seconds": 2, "times": 1}'
rc=0; "${C[@]}" --max-time 1 -o "$T/stall.part" "${U}4k.bin" 2>/dev/null || rc=$?
assert_eq "$rc" 28 "stall: client timeout"
assert_eq "$(stat -c %s "$T/stall.part")" 1000 "stall: bytes before the stall"
upstream_fault '{"path": "^/4k\\.bin$", "fault": "stall", "bytes": 1000, "seconds": 1, "times": 1}'
t0=$(_upfs_now_ms)
assert_eq "$(url_sha256 "${U}4k.bin")" "$(fixture_sha256 "$T/www" 4k.bin)" "stall: full body after the stall"
(($(_upfs_now_ms) - t0 >= 900)) || die "stall did not stall"

upstream_fault '{"path": "^/4k\\.bin$", "fault": "slow", "bps": 8192, "times": 1}'
t0=$(_upfs_now_ms)
assert_eq "$(url_sha256 "${U}4k.bin")" "$(fixture_sha256 "$T/www" 4k.bin)" "slow: body intact"
ms=$(($(_upfs_now_ms) - t0))
((ms >= 400)) || die "slow: 4 KiB at 8 KiB/s took only $ms ms"

upstream_fault '{"path": "^/10m\\.bin$", "fault": "reset", "bytes": 65536, "times": 1}'
rc=0; "${C[@]}" -o "$T/reset.part" "${U}10m.bin" 2>"$T/reset.err" || rc=$?
[[ "$rc" == 56 || "$rc" == 18 ]] || die "reset: curl rc $rc: $(cat "$T/reset.err")"
size="$(stat -c %s "$T/reset.part")"
((size <= 65536)) || die "reset: got $size bytes"
log "reset: curl rc $rc ($(cat "$T/reset.err")), $size bytes before the reset"

upstream_fault '{"path": "^/10m\\.bin$", "fault": "truncate", "times": 1}'
rc=0; "${C[@]}" -o "$T/trunc.part" "${U}10m.bin" 2>/dev/null || rc=$?
assert_eq "$rc" 18 "truncate: curl partial file"
assert_eq "$(stat -c %s "$T/trunc.part")" 5242880 "truncate: half the body"
cmp -s "$T/trunc.part" <(head -c 5242880 "$T/www/10m.bin") || die "truncate: prefix bytes differ"
upstream_fault '{"path": "^/10m\\.bin$", "fault": "truncate", "bytes": 100, "times": 1}'
rc=0; "${C[@]}" -r 1000-1999 -o "$T/trunc2.part" "${U}10m.bin" 2>/dev/null || rc=$?
assert_eq "$rc:$(stat -c %s "$T/trunc2.part")" "18:100" "truncate inside a range"

upstream_fault '{"path": "^/10m\\.bin$", "fault": "wrong_bytes", "times": 1}'
"${C[@]}" --fail -o "$T/wrong.bin" "${U}10m.bin"
assert_eq "$(stat -c %s "$T/wrong.bin")" 10485760 "wrong_bytes keeps the length"
assert_eq "$(cmp -l "$T/wrong.bin" "$T/www/10m.bin" | wc -l)" 1 "wrong_bytes flips one byte"
upstream_fault '{"path": "^/10m\\.bin$", "fault": "wrong_bytes", "offset": 5000000, "count": 3, "times": 1}'
"${C[@]}" --fail -o "$T/wrong2.bin" "${U}10m.bin"
assert_eq "$(cmp -l "$T/wrong2.bin" "$T/www/10m.bin" | awk '{print $1}' | tr '\n' ' ')" "5000001 5000002 5000003 " "wrong_bytes at offset"
assert_eq "$(url_sha256 "${U}10m.bin")" "$(fixture_sha256 "$T/www" 10m.bin)" "wrong_bytes spent"

upstream_fault '{"path": "^/4k\\.bin$", "fault": "ignore_range"}'
hdrs="$("${C[@]}" -r 0-9 -o "$T/ign.bin" -D - "${U}4k.bin" | tr -d '\r')"
assert_contains "$hdrs" "HTTP/1.1 200" "ignore_range status"
assert_eq "$(stat -c %s "$T/ign.bin")" 4096 "ignore_range body"
upstream_clear_faults
assert_eq "$(http_code -r 0-9 "${U}4k.bin")" 206 "clear_faults"

upstream_fault '{"path": "^/hello", "fault": "retry_after", "seconds": 7, "times": 1}'
hdrs="$("${C[@]}" -o /dev/null -D - "${U}hello.txt" | tr -d '\r')"
assert_contains "$hdrs" "HTTP/1.1 429" "retry_after status"
assert_contains "$hdrs" "Retry-After: 7" "Retry-After header"

upstream_fault "{\"path\": \"^/to-nginx$\", \"fault\": \"redirect\", \"location\": \"${NGINX_URL}hello.txt\"}"
hdrs="$("${C[@]}" -o /dev/null -D - "${U}to-nginx" | tr -d '\r')"
assert_contains "$hdrs" "HTTP/1.1 302" "redirect status"
assert_contains "$hdrs" "Location: ${NGINX_URL}hello.txt" "redirect Location"
assert_eq "$("${C[@]}" -L --fail "${U}to-nginx")" "hello, upstreamfs" "redirect followed"
upstream_fault '{"path": "^/loop$", "fault": "redirect", "loop": true, "status": 301}'
assert_eq "$(curl_rc -L --max-redirs 5 "${U}loop")" 47 "redirect loop"
assert_eq "$(upstream_count GET /loop)" 6 "redirect loop requests"
upstream_fault '{"path": "^/ping$", "fault": "redirect", "location": "/pong"}'
upstream_fault '{"path": "^/pong$", "fault": "redirect", "location": "/ping"}'
assert_eq "$(curl_rc -L --max-redirs 4 "${U}ping")" 47 "two-step redirect loop"

upstream_fault '{"path": "^/drop$", "fault": "drop"}'
rc="$(curl_rc "${U}drop")"
[[ "$rc" == 52 || "$rc" == 56 ]] || die "drop: curl rc $rc"

upstream_fault '{"path": "^/hdr$", "fault": "status", "status": 200, "body": "x", "headers": {"X-Test": "yes"}}'
assert_contains "$("${C[@]}" -D - -o /dev/null "${U}hdr" | tr -d '\r')" "X-Test: yes" "extra headers"
upstream_fault '{"path": "^/one", "fault": "delay", "seconds": 0.2, "times": 1}'
upstream_fault '{"path": "^/one", "fault": "status", "status": 502, "times": 1}'
assert_eq "$(http_code "${U}one.bin")" 502 "rules compose (delay + status)"
"${C[@]}" -s "${U}_control/faults" | "$PYTHON" -c '
import json, sys
rules = json.load(sys.stdin)
spent = [r for r in rules if r.get("remaining") == 0]
assert len(spent) >= 2, rules' || die "faults listing"
assert_eq "$(http_code -X POST -d '{"fault":"status","path":"("}' "${U}_control/fault")" 400 "bad regex rejected"
assert_eq "$(http_code -X POST -d '{"fault":"nope"}' "${U}_control/fault")" 400 "bad fault rejected"
upstream_reset
assert_eq "$("${C[@]}" "${U}_control/faults" | tr -d ' \n')" "[]" "reset clears faults"

# --- concurrency + early disconnects
upstream_reset
want10="$(fixture_sha256 "$T/www" 10m.bin)"
pids=()
for i in $(seq 1 40); do
    ( got="$(url_sha256 "${U}10m.bin")" && [[ "$got" == "$want10" ]] ) &
    pids+=($!)
done
upstream_fault '{"path": "^/4k\\.bin$", "fault": "slow", "bps": 1024}'
for i in $(seq 1 20); do
    "${C[@]}" --max-time 0.3 -o /dev/null "${U}4k.bin" 2>/dev/null &
    pids+=($!)
done
# clients that hang up right after the headers
for i in $(seq 1 20); do
    ( "${C[@]}" "${U}10m.bin" 2>/dev/null | head -c 10 >/dev/null ) &
    pids+=($!)
done
fails=0
for i in "${!pids[@]}"; do
    if ((i < 40)); then wait "${pids[i]}" || fails=$((fails + 1)); else wait "${pids[i]}" || true; fi
done
assert_eq "$fails" 0 "concurrent full downloads with correct sha256"
assert_eq "$(upstream_count GET /10m.bin)" 60 "concurrent request count"
assert_eq "$(upstream_count GET /4k.bin)" 20 "slow request count"
upstream_clear_faults
pid_alive "$UPSTREAM_PID" || die "upstream died"
assert_eq "$(http_code "${U}hello.txt")" 200 "healthy after early disconnects"
if grep -q Traceback "$UPSTREAM_LOG"; then cat "$UPSTREAM_LOG" >&2; die "tracebacks in upstream log"; fi

if [[ "${SELFTEST_BIG:-1}" == 1 ]]; then
    t0=$(_upfs_now_ms)
    assert_eq "$(url_sha256 "${U}1g.bin")" "$(fixture_sha256 "$T/www" 1g.bin)" "upstream 1 GiB"
    log "upstream.py: 1 GiB download + hash in $(($(_upfs_now_ms) - t0)) ms"
fi

# --- second instance, restart, stop
mkdir -p "$T/b"
echo "from b" >"$T/b/only-b.txt"
upstream_start --name b "$T/b" --quiet
[[ "$UPSTREAM_B_PORT" != "$UPSTREAM_PORT" ]] || die "two instances on one port"
assert_eq "$("${C[@]}" --fail "${UPSTREAM_B_URL}only-b.txt")" "from b" "instance b"
assert_eq "$(http_code "${U}only-b.txt")" 404 "default instance does not serve b"
assert_eq "$(upstream_count --name b GET /only-b.txt)" 1 "instance b count"
assert_eq "$(upstream_count GET /only-b.txt)" 1 "default instance count"
upstream_fault --name b '{"fault": "status", "status": 418}'
assert_eq "$(http_code "${UPSTREAM_B_URL}only-b.txt")" 418 "fault on b"
assert_eq "$(http_code "${U}hello.txt")" 200 "no fault on default"
upstream_stop --name b

old_port="$UPSTREAM_PORT"
old_pid="$UPSTREAM_PID"
upstream_fault '{"fault": "status", "status": 500}'
upstream_stop
pid_alive "$old_pid" && die "upstream.py still alive after stop"
port_is_open "$old_port" && die "upstream port open after stop"
assert_eq "$(curl_rc "${U}hello.txt")" 7 "curl to a stopped upstream: connection refused"
upstream_restart
assert_eq "$UPSTREAM_PORT" "$old_port" "upstream restart keeps the port"
assert_eq "$(http_code "${U}hello.txt")" 200 "restart drops faults"
assert_eq "$(upstream_count GET /hello.txt)" 1 "restart zeroes counts"
log "upstream ok"

log "PASS: all harness self-tests passed in $((SECONDS - STARTED)) s"
