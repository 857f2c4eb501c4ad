# shellcheck shell=bash
# tests/integration/lib/fixtures.sh -- deterministic fixture trees (generic, Maven, Helm).
#
# Usage:
#     source "$LIB/common.sh"; source "$LIB/fixtures.sh"
#     fixtures_generic "$T/www" [--big]
#     fixtures_maven   "$T/maven"
#     fixtures_helm    "$T/helm" "$T/other" "$NGINX_OTHER_URL"
#     want="$(fixture_sha256 "$T/www" 10m.bin)"          # sha256 hex of a fixture file
#     assert_sha256 "$MNT/gen/10m.bin" "$want"
#
# Provides:
#     fixture_bytes SEED SIZE OUT   write SIZE bytes of the deterministic stream for SEED to OUT:
#                                   the AES-128-CTR keystream, key = first 16 bytes of
#                                   sha256(SEED), IV = 0 (so byte i is the same for every SIZE).
#     fixtures_generic DIR [--big]  a plain static tree (see the layout below)
#     fixtures_maven DIR            a Maven 2 layout repository
#     fixtures_helm DIR OTHER_DIR OTHER_BASE_URL   a classic Helm chart repository
#     fixture_sha256 DIR RELPATH    print the recorded sha256 of DIR/RELPATH (from the manifest)
#     fixtures_verify DIR           re-hash DIR's files against the manifest (status 1 on mismatch)
#
# Manifest: every fixtures_* call (re)writes the entries for the trees it built in
#     "$(dirname DIR)/fixtures.sha256"    (exported as FIXTURES_MANIFEST)
# in `sha256sum` format, paths relative to that parent dir and starting with basename(DIR):
#     <hex>  www/10m.bin
# so `cd "$(dirname DIR)" && sha256sum -c fixtures.sha256` checks everything. The manifest lives
# next to the tree, never inside it, so it is not served. Build trees in sibling dirs of one
# parent (e.g. $T/www, $T/maven, $T/helm, $T/other) and they share one manifest.
#
# fixtures_generic layout (seeds are the file names):
#     empty.bin (0 B)   one.bin (1 B)   4k.bin (4096 B)   10m.bin (10 MiB)   [1g.bin (1 GiB), --big]
#     hello.txt ("hello, upstreamfs\n")
#     a/b/c/deep.txt    ("deep file\n")
#     with space+plus.txt
#     listing/          (no index.html: nginx autoindex renders its HTML index page)
#         one.txt  two.txt  sub/three.txt
#     1 GiB takes ~2-4 s to write plus <1 s to hash (openssl, AES-NI + SHA-NI).
#
# fixtures_maven layout (groupId com.example):
#     com/example/demo/maven-metadata.xml (+ .sha1, .md5)   A-level: versions 1.0, 2.0-SNAPSHOT
#     com/example/demo/1.0/demo-1.0.jar      real zip (python zipfile, fixed timestamps)
#                              .jar.sha1     bare lower-case hex
#                              .jar.sha256   bare lower-case hex
#                              .jar.md5      bare lower-case hex
#                          demo-1.0.pom
#                              .pom.sha1     "<hex>  demo-1.0.pom"  (variant: hex, 2 spaces, name)
#                          demo-1.0-sources.jar (+ .sha1)          (classifier)
#     com/example/demo/2.0-SNAPSHOT/maven-metadata.xml (+ .sha1)   V-level: timestamp
#                              20240102.030405, buildNumber 2
#                          demo-2.0-20240101.120000-1.jar/.pom (+ .sha1)   older build
#                          demo-2.0-20240102.030405-2.jar/.pom (+ .sha1)   current build
#     com/example/bad/maven-metadata.xml (+ .sha1)
#     com/example/bad/1.0/bad-1.0.jar     real zip
#                         bad-1.0.jar.sha1   WRONG (sha1 of other bytes; no .sha256/.md5 for it)
#                         bad-1.0.pom (+ correct .sha1)
#
# fixtures_helm layout:
#     DIR/index.yaml              apiVersion v1, generated, entries alpha/beta/gamma
#     DIR/charts/alpha-0.1.0.tgz  urls: [charts/alpha-0.1.0.tgz] (relative), correct digest
#     OTHER_DIR/beta-1.2.3.tgz    urls: [OTHER_BASE_URL/beta-1.2.3.tgz] (absolute, other host)
#     DIR/charts/gamma-0.0.1.tgz  urls: [charts/gamma-0.0.1.tgz], digest WRONG in index.yaml
#     Each .tgz is gzip(tar(<name>/Chart.yaml, <name>/values.yaml, <name>/templates/configmap.yaml))
#     with mtime 0 everywhere, so the bytes (and digests) are stable for a given OTHER_BASE_URL.
#     Also exported: HELM_GAMMA_WRONG_DIGEST (the digest index.yaml claims for gamma).

if [[ -n "${_UPFS_FIXTURES_SH:-}" ]]; then return 0; fi
_UPFS_FIXTURES_SH=1
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

fixture_bytes() {
    local seed="$1" size="$2" out="$3" key mib=$((1024 * 1024))
    key="$(printf '%s' "$seed" | openssl dgst -sha256 -r)"
    key="${key:0:32}"
    mkdir -p -- "$(dirname -- "$out")"
    if ((size == 0)); then
        : >"$out"
    elif ((size % mib == 0)); then
        # dd with a big block size is ~2x faster than head -c for large files
        dd if=/dev/zero bs=1M count=$((size / mib)) status=none |
            openssl enc -aes-128-ctr -K "$key" -iv 00000000000000000000000000000000 -out "$out"
    else
        head -c "$size" /dev/zero |
            openssl enc -aes-128-ctr -K "$key" -iv 00000000000000000000000000000000 -out "$out"
    fi
    local got
    got="$(stat -c %s -- "$out")"
    [[ "$got" == "$size" ]] || die "fixture_bytes: $out has $got bytes, wanted $size"
}

# _fixtures_record DIR: replace DIR's entries in $(dirname DIR)/fixtures.sha256.
_fixtures_record() {
    local dir parent base manifest
    dir="$(cd "$1" && pwd -P)"
    parent="$(dirname -- "$dir")"
    base="$(basename -- "$dir")"
    manifest="$parent/fixtures.sha256"
    "$PYTHON" - "$parent" "$base" "$manifest" <<'EOF'
import hashlib, os, sys
parent, base, manifest = sys.argv[1:4]
keep = []
if os.path.exists(manifest):
    with open(manifest, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            name = line.rstrip("\n")[66:]
            if name != base and not name.startswith(base + "/"):
                keep.append(line if line.endswith("\n") else line + "\n")
new = []
for root, dirs, files in os.walk(os.path.join(parent, base)):
    dirs.sort()
    for fn in sorted(files):
        p = os.path.join(root, fn)
        if not os.path.isfile(p):
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
        new.append("%s  %s\n" % (h.hexdigest(), os.path.relpath(p, parent)))
tmp = manifest + ".tmp.%d" % os.getpid()
with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
    f.writelines(keep + new)
os.replace(tmp, manifest)
EOF
    export FIXTURES_MANIFEST="$manifest"
}

fixture_sha256() {
    local dir parent base rel="$2" manifest
    dir="$(cd "$1" && pwd -P)"
    parent="$(dirname -- "$dir")"
    base="$(basename -- "$dir")"
    manifest="$parent/fixtures.sha256"
    [[ -f "$manifest" ]] || die "fixture_sha256: no manifest $manifest"
    rel="${rel#/}"
    local want="$base/$rel" hex="" line
    while IFS= read -r line; do
        if [[ "${line:66}" == "$want" ]]; then hex="${line:0:64}"; break; fi
    done <"$manifest"
    [[ -n "$hex" ]] || die "fixture_sha256: $want not in $manifest"
    printf '%s\n' "$hex"
}

fixtures_verify() {
    local dir parent base
    dir="$(cd "$1" && pwd -P)"
    parent="$(dirname -- "$dir")"
    base="$(basename -- "$dir")"
    (cd "$parent" && grep -F "  $base/" fixtures.sha256 | sha256sum --quiet -c -)
}

fixtures_generic() {
    local dir="${1:?fixtures_generic DIR [--big]}" big=0
    if [[ "${2:-}" == "--big" ]]; then big=1; fi
    mkdir -p -- "$dir"
    fixture_bytes empty.bin 0 "$dir/empty.bin"
    fixture_bytes one.bin 1 "$dir/one.bin"
    fixture_bytes 4k.bin 4096 "$dir/4k.bin"
    fixture_bytes 10m.bin $((10 * 1024 * 1024)) "$dir/10m.bin"
    if ((big)); then
        fixture_bytes 1g.bin $((1024 * 1024 * 1024)) "$dir/1g.bin"
    fi
    printf 'hello, upstreamfs\n' >"$dir/hello.txt"
    mkdir -p -- "$dir/a/b/c" "$dir/listing/sub"
    printf 'deep file\n' >"$dir/a/b/c/deep.txt"
    printf 'a name with a space and a plus\n' >"$dir/with space+plus.txt"
    printf 'one\n' >"$dir/listing/one.txt"
    printf 'two\n' >"$dir/listing/two.txt"
    printf 'three\n' >"$dir/listing/sub/three.txt"
    _fixtures_record "$dir"
}

fixtures_maven() {
    local dir="${1:?fixtures_maven DIR}"
    mkdir -p -- "$dir"
    "$PYTHON" - "$dir" <<'EOF'
import hashlib, io, os, sys, zipfile

root = sys.argv[1]

def write(rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(p, "wb") as f:
        f.write(data)
    return data

def sums(rel, data, algos=("sha1",), named=False):
    name = os.path.basename(rel)
    for a in algos:
        hx = hashlib.new(a, data).hexdigest()
        write(rel + "." + a, hx + ("  " + name if named else "") + "\n")

def jar(group, artifact, version, extra=""):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        def add(name, text):
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, text)
        add("META-INF/MANIFEST.MF",
            "Manifest-Version: 1.0\r\nCreated-By: upstreamfs fixtures\r\n"
            "Implementation-Title: %s\r\nImplementation-Version: %s\r\n\r\n" % (artifact, version))
        add("META-INF/maven/%s/%s/pom.properties" % (group, artifact),
            "groupId=%s\nartifactId=%s\nversion=%s\n" % (group, artifact, version))
        add("com/example/%s/Hello.txt" % artifact.replace("-", "_"),
            "hello from %s %s%s\n" % (artifact, version, extra))
    return buf.getvalue()

def pom(group, artifact, version):
    return ("""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>%s</groupId>
  <artifactId>%s</artifactId>
  <version>%s</version>
  <packaging>jar</packaging>
</project>
""" % (group, artifact, version))

G = "com.example"
GP = "com/example"

# --- demo 1.0 (release)
d = GP + "/demo/1.0/"
data = write(d + "demo-1.0.jar", jar(G, "demo", "1.0"))
sums(d + "demo-1.0.jar", data, ("sha1", "sha256", "md5"))
data = write(d + "demo-1.0.pom", pom(G, "demo", "1.0"))
sums(d + "demo-1.0.pom", data, ("sha1",), named=True)        # "<hex>  demo-1.0.pom" variant
sums(d + "demo-1.0.pom", data, ("md5",))
data = write(d + "demo-1.0-sources.jar", jar(G, "demo", "1.0", " (sources)"))
sums(d + "demo-1.0-sources.jar", data, ("sha1",))

# --- demo 2.0-SNAPSHOT: two timestamped builds, V-level metadata points at build 2
d = GP + "/demo/2.0-SNAPSHOT/"
builds = [("20240101.120000", 1), ("20240102.030405", 2)]
for ts, n in builds:
    v = "2.0-%s-%d" % (ts, n)
    data = write(d + "demo-%s.jar" % v, jar(G, "demo", "2.0-SNAPSHOT", " build %d" % n))
    sums(d + "demo-%s.jar" % v, data, ("sha1",))
    data = write(d + "demo-%s.pom" % v, pom(G, "demo", "2.0-SNAPSHOT"))
    sums(d + "demo-%s.pom" % v, data, ("sha1",))
ts, n = builds[-1]
data = write(d + "maven-metadata.xml", """<?xml version="1.0" encoding="UTF-8"?>
<metadata modelVersion="1.1.0">
  <groupId>com.example</groupId>
  <artifactId>demo</artifactId>
  <version>2.0-SNAPSHOT</version>
  <versioning>
    <snapshot>
      <timestamp>%(ts)s</timestamp>
      <buildNumber>%(n)d</buildNumber>
    </snapshot>
    <lastUpdated>%(upd)s</lastUpdated>
    <snapshotVersions>
      <snapshotVersion>
        <extension>jar</extension>
        <value>2.0-%(ts)s-%(n)d</value>
        <updated>%(upd)s</updated>
      </snapshotVersion>
      <snapshotVersion>
        <extension>pom</extension>
        <value>2.0-%(ts)s-%(n)d</value>
        <updated>%(upd)s</updated>
      </snapshotVersion>
    </snapshotVersions>
  </versioning>
</metadata>
""" % {"ts": ts, "n": n, "upd": ts.replace(".", "")})
sums(d + "maven-metadata.xml", data, ("sha1",))

# --- demo A-level metadata
data = write(GP + "/demo/maven-metadata.xml", """<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>com.example</groupId>
  <artifactId>demo</artifactId>
  <versioning>
    <latest>2.0-SNAPSHOT</latest>
    <release>1.0</release>
    <versions>
      <version>1.0</version>
      <version>2.0-SNAPSHOT</version>
    </versions>
    <lastUpdated>20240102030405</lastUpdated>
  </versioning>
</metadata>
""")
sums(GP + "/demo/maven-metadata.xml", data, ("sha1", "md5"))

# --- bad 1.0: the jar's .sha1 is WRONG (and there is no .sha256/.md5 to fall back on)
d = GP + "/bad/1.0/"
data = write(d + "bad-1.0.jar", jar(G, "bad", "1.0"))
write(d + "bad-1.0.jar.sha1", hashlib.sha1(data + b"tampered").hexdigest() + "\n")
data = write(d + "bad-1.0.pom", pom(G, "bad", "1.0"))
sums(d + "bad-1.0.pom", data, ("sha1",))
data = write(GP + "/bad/maven-metadata.xml", """<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>com.example</groupId>
  <artifactId>bad</artifactId>
  <versioning>
    <latest>1.0</latest>
    <release>1.0</release>
    <versions>
      <version>1.0</version>
    </versions>
    <lastUpdated>20240101000000</lastUpdated>
  </versioning>
</metadata>
""")
sums(GP + "/bad/maven-metadata.xml", data, ("sha1",))
EOF
    _fixtures_record "$dir"
}

fixtures_helm() {
    local dir="${1:?fixtures_helm DIR OTHER_DIR OTHER_BASE_URL}"
    local other="${2:?fixtures_helm DIR OTHER_DIR OTHER_BASE_URL}"
    local base_url="${3:?fixtures_helm DIR OTHER_DIR OTHER_BASE_URL}"
    mkdir -p -- "$dir/charts" "$other"
    HELM_GAMMA_WRONG_DIGEST="$("$PYTHON" - "$dir" "$other" "$base_url" <<'EOF'
import gzip, hashlib, io, os, sys, tarfile

root, other, base_url = sys.argv[1:4]
base_url = base_url.rstrip("/")

def chart(name, version, desc):
    files = {
        "Chart.yaml": "apiVersion: v2\nname: %s\nversion: %s\nappVersion: \"%s\"\n"
                      "description: %s\ntype: application\n" % (name, version, version, desc),
        "values.yaml": "greeting: hello from %s\n" % name,
        "templates/configmap.yaml":
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-%s\n"
            "data:\n  greeting: {{ .Values.greeting | quote }}\n" % name,
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for rel in sorted(files):
            data = files[rel].encode()
            ti = tarfile.TarInfo("%s/%s" % (name, rel))
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tf.addfile(ti, io.BytesIO(data))
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0) as g:
        g.write(raw.getvalue())
    return gz.getvalue()

def put(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()

alpha = put(os.path.join(root, "charts", "alpha-0.1.0.tgz"), chart("alpha", "0.1.0", "Alpha test chart"))
beta = put(os.path.join(other, "beta-1.2.3.tgz"), chart("beta", "1.2.3", "Beta test chart (other host)"))
gamma_real = put(os.path.join(root, "charts", "gamma-0.0.1.tgz"), chart("gamma", "0.0.1", "Gamma chart with a wrong digest"))
gamma_wrong = hashlib.sha256(b"not gamma-0.0.1.tgz").hexdigest()
assert gamma_wrong != gamma_real

def entry(name, version, desc, url, digest):
    return (
        "  %(n)s:\n"
        "  - apiVersion: v2\n"
        "    appVersion: \"%(v)s\"\n"
        "    created: \"2024-01-01T00:00:00Z\"\n"
        "    description: %(d)s\n"
        "    digest: %(g)s\n"
        "    name: %(n)s\n"
        "    type: application\n"
        "    urls:\n"
        "    - %(u)s\n"
        "    version: %(v)s\n" % {"n": name, "v": version, "d": desc, "u": url, "g": digest})

index = ("apiVersion: v1\nentries:\n"
         + entry("alpha", "0.1.0", "Alpha test chart", "charts/alpha-0.1.0.tgz", alpha)
         + entry("beta", "1.2.3", "Beta test chart (other host)", base_url + "/beta-1.2.3.tgz", beta)
         + entry("gamma", "0.0.1", "Gamma chart with a wrong digest", "charts/gamma-0.0.1.tgz", gamma_wrong)
         + "generated: \"2024-01-01T00:00:00Z\"\n")
put(os.path.join(root, "index.yaml"), index.encode())
print(gamma_wrong)
EOF
)"
    export HELM_GAMMA_WRONG_DIGEST
    _fixtures_record "$dir"
    _fixtures_record "$other"
}
