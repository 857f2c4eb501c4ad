#!/usr/bin/python3
"""tools/bench/mkdocs.py -- index documents for the metadata rows (M1-M6) of tools/bench/run.sh.

    /usr/bin/python3 mkdocs.py npm DIR NAME VERSIONS
        a packument of VERSIONS versions (each with the members a real one has: description,
        scripts, dependency maps, dist with integrity, maintainers, _npmUser, ...) written as
        DIR/docs/NAME.json in the layout tests/integration/npm/registry.py serves (tarball URLs
        start with {BASE}); prints its size
    /usr/bin/python3 mkdocs.py npm-many DIR N PROJECT
        N small packages pkg-000 ... (one version each, a real tarball) in the same layout, and
        PROJECT/package.json depending on all of them
    /usr/bin/python3 mkdocs.py pypi DIR PROJECT FILES
        DIR/simple/PROJECT/index.html, a PEP 503 page of FILES distributions (sha256 fragments,
        data-requires-python, data-dist-info-metadata), links to ../../packages/<file>
    /usr/bin/python3 mkdocs.py pypi-many DIR N REQS
        N projects proj-000 ... with one real wheel each (DIR/simple/<p>/index.html,
        DIR/packages/<wheel>) and REQS, a requirements file naming all of them
    /usr/bin/python3 mkdocs.py helm DIR CHARTS
        DIR/index.yaml of CHARTS chart versions (20 charts x CHARTS/20 versions), URLs relative

Deterministic: the same arguments write the same bytes.
"""

import base64
import hashlib
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "../../tests/integration/npm"),
                os.path.join(HERE, "../../tests/integration/pypi")]
from build import wheel  # noqa: E402  (the test fixtures' own package builders)
from registry import sri, tgz  # noqa: E402


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def npm_doc(root, name, versions):
    rnd = random.Random(name)
    doc = {"_id": name, "name": name, "description": "a benchmark package " + name,
           "readme": "# %s\n\n%s\n" % (name, "Lorem ipsum dolor sit amet. " * 200),
           "maintainers": [{"name": "bench", "email": "bench@example.invalid"}],
           "repository": {"type": "git", "url": "git+https://example.invalid/%s.git" % name},
           "license": "MIT", "time": {"created": "2020-01-01T00:00:00.000Z",
                                      "modified": "2024-01-01T00:00:00.000Z"},
           "versions": {}}
    for i in range(versions):
        ver = "%d.%d.%d" % (i // 1000, (i // 10) % 100, i % 10)
        digest = hashlib.sha512(("%s@%s" % (name, ver)).encode()).digest()
        doc["versions"][ver] = {
            "name": name, "version": ver, "description": "a benchmark package " + name,
            "main": "index.js", "license": "MIT",
            "scripts": {"test": "node test.js", "build": "tsc -p ."},
            "dependencies": {"dep-%d" % rnd.randrange(50): "^%d.0.0" % rnd.randrange(9)
                             for _ in range(4)},
            "devDependencies": {"typescript": "^5.0.0", "mocha": "^10.2.0"},
            "engines": {"node": ">=18"},
            "gitHead": hashlib.sha1(ver.encode()).hexdigest(),
            "_id": "%s@%s" % (name, ver), "_npmVersion": "10.2.3",
            "_npmUser": {"name": "bench", "email": "bench@example.invalid"},
            "dist": {"tarball": "{BASE}/%s/-/%s-%s.tgz" % (name, name.split("/")[-1], ver),
                     "shasum": hashlib.sha1(digest).hexdigest(),
                     "integrity": "sha512-" + base64.b64encode(digest).decode(),
                     "fileCount": 7, "unpackedSize": 12345},
        }
        doc["time"][ver] = "2023-01-01T00:00:00.000Z"
    doc["dist-tags"] = {"latest": ver}
    path = os.path.join(root, "docs", name.replace("/", "%2f") + ".json")
    data = json.dumps(doc, separators=(",", ":")).encode()
    write(path, data)
    print(len(data))


def npm_many(root, n, project):
    deps = {}
    for i in range(n):
        name = "pkg-%03d" % i
        js = ("module.exports = '%s';\n" % name).encode()
        manifest = {"name": name, "version": "1.0.0", "main": "index.js"}
        data = tgz({"package.json": json.dumps(manifest).encode(), "index.js": js})
        path = "%s/-/%s-1.0.0.tgz" % (name, name)
        write(os.path.join(root, "tarballs", path), data)
        doc = {"_id": name, "name": name, "dist-tags": {"latest": "1.0.0"},
               "time": {"1.0.0": "2024-01-01T00:00:00.000Z"},
               "versions": {"1.0.0": {**manifest, "_id": name + "@1.0.0",
                                      "dist": {"tarball": "{BASE}/" + path, "integrity": sri(data),
                                               "shasum": hashlib.sha1(data).hexdigest()}}}}
        write(os.path.join(root, "docs", name + ".json"), json.dumps(doc).encode())
        deps[name] = "^1.0.0"
    write(os.path.join(project, "package.json"),
          json.dumps({"name": "bench-project", "version": "1.0.0", "private": True,
                      "dependencies": deps}, indent=2).encode())


def pypi_page(root, project, files):
    rows = []
    for i in range(files):
        ver = "%d.%d.%d" % (i // 300, (i // 10) % 30, i % 10)
        f = "%s-%s-py3-none-any.whl" % (project.replace("-", "_"), ver)
        h = hashlib.sha256(f.encode()).hexdigest()
        rows.append('<a href="../../packages/%s#sha256=%s" data-requires-python="&gt;=3.8" '
                    'data-dist-info-metadata="sha256=%s">%s</a><br/>\n' % (f, h, h, f))
    page = ("<!DOCTYPE html>\n<html><head><title>Links for %s</title></head><body>\n"
            "<h1>Links for %s</h1>\n%s</body></html>\n" % (project, project, "".join(rows)))
    write(os.path.join(root, "simple", project, "index.html"), page.encode())
    print(len(page))


def pypi_many(root, n, reqs):
    names = []
    for i in range(n):
        name = "proj-%03d" % i
        f = "%s-1.0.0-py3-none-any.whl" % name.replace("-", "_")
        data, _ = wheel(name, "1.0.0", name.replace("-", "_"))
        write(os.path.join(root, "packages", f), data)
        h = hashlib.sha256(data).hexdigest()
        page = ('<!DOCTYPE html>\n<html><body>\n<a href="../../packages/%s#sha256=%s">%s</a><br/>\n'
                "</body></html>\n" % (f, h, f))
        write(os.path.join(root, "simple", name, "index.html"), page.encode())
        names.append(name)
    write(reqs, "".join("%s==1.0.0\n" % p for p in names).encode())


def helm_index(root, charts):
    per = max(1, charts // 20)
    out = ["apiVersion: v1", "entries:"]
    for c in range(20):
        name = "chart-%02d" % c
        out.append("  %s:" % name)
        for v in range(per):
            ver = "%d.%d.%d" % (v // 100, (v // 10) % 10, v % 10)
            digest = hashlib.sha256(("%s-%s" % (name, ver)).encode()).hexdigest()
            out += ["  - apiVersion: v2",
                    "    appVersion: \"%s\"" % ver,
                    "    created: \"2024-01-01T00:00:00.000000000Z\"",
                    "    description: A benchmark chart %s with a description of typical length" % name,
                    "    digest: %s" % digest,
                    "    home: https://example.invalid/%s" % name,
                    "    maintainers:",
                    "    - email: bench@example.invalid",
                    "      name: bench",
                    "    name: %s" % name,
                    "    sources:",
                    "    - https://example.invalid/src/%s" % name,
                    "    type: application",
                    "    urls:",
                    "    - charts/%s-%s.tgz" % (name, ver),
                    "    version: %s" % ver]
    out += ["generated: \"2024-01-01T00:00:00.000000000Z\"", ""]
    data = "\n".join(out).encode()
    write(os.path.join(root, "index.yaml"), data)
    print(len(data))


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "npm":
        npm_doc(a[1], a[2], int(a[3]))
    elif len(a) == 4 and a[0] == "npm-many":
        npm_many(a[1], int(a[2]), a[3])
    elif len(a) == 4 and a[0] == "pypi":
        pypi_page(a[1], a[2], int(a[3]))
    elif len(a) == 4 and a[0] == "pypi-many":
        pypi_many(a[1], int(a[2]), a[3])
    elif len(a) == 3 and a[0] == "helm":
        helm_index(a[1], int(a[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
