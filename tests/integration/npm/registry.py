#!/usr/bin/python3
"""tests/integration/npm/registry.py -- a tiny npm registry for the tests (standard library only).

    /usr/bin/python3 registry.py build DIR
        Builds the fixture packages into DIR: tarballs under DIR/tarballs/<registry path>,
        package documents under DIR/docs/<name, '/' as %2f>.json (tarball URLs start with the
        placeholder {BASE}), and DIR/expect.json (what the test asserts on: each tarball's
        sha256, SRI integrity and the sha256 of each package's index.js).

        upfs-demo 1.0.0       depends on @upfs/util ^1.0.0 (the scoped dependency)
        @upfs/util 1.0.0, 1.1.0
        upfs-bad 1.0.0        its document's integrity and shasum are those of other bytes
        upfs-fresh, @upfs/fresh 1.0.0 (published 2024-01-01) and 1.1.0 (published one day before
                              the document is served: "time" says {RECENT}, filled in then)
        upfs-evil 1.0.0       a package a test denies (it must never be asked for)
        and, never served, DIR/local/: package documents and tarballs a test copies into a
        registry's local content (tarball URLs relative, as the mount shows them):
        upfs-local 1.0.0      a package no upstream has
        @upfs/util 2.0.0      a newer version of an upstream package (latest)

    /usr/bin/python3 registry.py unpublish DIR NAME VERSION
        Removes VERSION from NAME's document in DIR (versions, time; dist-tags that named it move
        to the newest version left), as "npm unpublish NAME@VERSION" does at a registry; the
        server reads documents per request, so the next GET answers the new document (a new
        ETag). The tarball stays on disk, as unpublished tarballs stay in caches.

    /usr/bin/python3 registry.py serve DIR [--port-file FILE] [--full-only]
        Serves DIR on 127.0.0.1 (a kernel-chosen port, printed and written to FILE); with
        --full-only it answers the full document whatever Accept asks (as some registries do):
          GET|HEAD /<name>, /@scope%2fname, /@scope/name   the package document: the abbreviated
              one (application/vnd.npm.install-v1+json) when Accept names that type, else the
              full one (application/json); ETag / If-None-Match -> 304
          GET|HEAD /<name>/-/<file>.tgz, /@scope/<name>/-/<file>.tgz   the tarballs
          GET /_control/counts     {"GET /upfs-demo abbreviated": 1, "GET /upfs-demo/-/...": 1, ...}
                                   (documents count per variant; /_control/ is never counted)
          GET /_control/requests   [{"method", "target", "accept"}, ...]
        Anything else is 404 (and counted), so a test sees every request it did not expect.
"""

import base64
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CORGI = "application/vnd.npm.install-v1+json"
ABBREVIATED_VERSION_KEYS = ("name", "version", "dependencies", "optionalDependencies",
                            "devDependencies", "bundleDependencies", "peerDependencies",
                            "peerDependenciesMeta", "bin", "directories", "dist", "engines",
                            "_hasShrinkwrap", "hasInstallScript", "deprecated", "os", "cpu")


def tgz(files):
    """A deterministic npm tarball: every file under package/."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo("package/" + name)
            info.size = len(data)
            info.mtime = 499162500
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def sri(data):
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def build(root):
    packages = {
        "@upfs/util": {"1.0.0": {}, "1.1.0": {}},
        "upfs-demo": {"1.0.0": {"dependencies": {"@upfs/util": "^1.0.0"}}},
        "upfs-bad": {"1.0.0": {}},
        "upfs-fresh": {"1.0.0": {}, "1.1.0": {"_recent": True}},
        "@upfs/fresh": {"1.0.0": {}, "1.1.0": {"_recent": True}},
        "upfs-evil": {"1.0.0": {}},
    }
    expect = {"tarballs": {}, "index_js": {}}
    for name, versions in packages.items():
        short = name.split("/")[-1]
        doc = {"_id": name, "name": name, "description": "fixture " + name,
               "readme": "# " + name + "\nA fixture of the upstreamfs tests.\n",
               "maintainers": [{"name": "upfs"}], "time": {}, "versions": {}}
        for ver, extra in versions.items():
            extra = dict(extra)
            recent = extra.pop("_recent", False)
            if name == "upfs-demo":
                js = b"module.exports = 'demo ' + require('@upfs/util');\n"
            else:
                js = ("module.exports = '%s %s';\n" % (name, ver)).encode()
            manifest = {"name": name, "version": ver, "main": "index.js", **extra}
            data = tgz({"package.json": json.dumps(manifest, indent=2).encode() + b"\n",
                        "index.js": js})
            path = "%s/-/%s-%s.tgz" % (name, short, ver)
            dest = os.path.join(root, "tarballs", path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(data)
            declared = data
            if name == "upfs-bad":
                declared = data + b"the registry's document names other bytes"
            dist = {"tarball": "{BASE}/" + path, "shasum": hashlib.sha1(declared).hexdigest(),
                    "integrity": sri(declared)}
            doc["versions"][ver] = {**manifest, "_id": name + "@" + ver, "dist": dist}
            doc["time"][ver] = "{RECENT}" if recent else "2024-01-01T00:00:00.000Z"
            expect["tarballs"][path] = {"sha256": hashlib.sha256(data).hexdigest(),
                                        "integrity": sri(data), "size": len(data)}
            expect["index_js"][name + "@" + ver] = hashlib.sha256(js).hexdigest()
        doc["dist-tags"] = {"latest": sorted(versions)[-1]}
        os.makedirs(os.path.join(root, "docs"), exist_ok=True)
        with open(os.path.join(root, "docs", name.replace("/", "%2f") + ".json"), "w") as f:
            json.dump(doc, f, indent=2)
    for name, ver in (("upfs-local", "1.0.0"), ("@upfs/util", "2.0.0")):
        short = name.split("/")[-1]
        js = ("module.exports = '%s %s';\n" % (name, ver)).encode()
        manifest = {"name": name, "version": ver, "main": "index.js"}
        data = tgz({"package.json": json.dumps(manifest, indent=2).encode() + b"\n",
                    "index.js": js})
        d = os.path.join(root, "local", name)
        os.makedirs(os.path.join(d, "-"), exist_ok=True)
        with open(os.path.join(d, "-", "%s-%s.tgz" % (short, ver)), "wb") as f:
            f.write(data)
        dist = {"tarball": "-/%s-%s.tgz" % (short, ver), "integrity": sri(data),
                "shasum": hashlib.sha1(data).hexdigest()}
        doc = {"name": name, "dist-tags": {"latest": ver},
               "versions": {ver: {**manifest, "dist": dist}},
               "time": {ver: "2025-01-01T00:00:00.000Z"}}
        with open(os.path.join(d, "package.json"), "w") as f:
            json.dump(doc, f, indent=2)
        expect["tarballs"]["%s/-/%s-%s.tgz" % (name, short, ver)] = {
            "sha256": hashlib.sha256(data).hexdigest(), "integrity": sri(data), "size": len(data)}
        expect["index_js"][name + "@" + ver] = hashlib.sha256(js).hexdigest()
    with open(os.path.join(root, "expect.json"), "w") as f:
        json.dump(expect, f, indent=2)


def abbreviate(doc):
    return {"name": doc["name"], "modified": "2024-01-01T00:00:00.000Z",
            "dist-tags": doc["dist-tags"],
            "versions": {v: {k: m[k] for k in ABBREVIATED_VERSION_KEYS if k in m}
                         for v, m in doc["versions"].items()}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", ctype="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def count(self, key):
        srv = self.server
        with srv.lock:
            srv.counts[key] = srv.counts.get(key, 0) + 1
            srv.requests.append({"method": self.command, "target": self.path,
                                 "accept": self.headers.get("Accept", "")})

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        srv = self.server
        target = self.path.split("?", 1)[0]
        if target == "/_control/counts":
            with srv.lock:
                body = json.dumps(srv.counts).encode()
            return self.reply(200, body, "application/json")
        if target == "/_control/requests":
            with srv.lock:
                body = json.dumps(srv.requests).encode()
            return self.reply(200, body, "application/json")
        path = urllib.parse.unquote(target)
        if "/-/" in path:
            self.count("%s %s" % (self.command, path))
            f = os.path.realpath(os.path.join(srv.root, "tarballs", path.lstrip("/")))
            if not f.startswith(os.path.join(srv.root, "tarballs") + "/") or not os.path.isfile(f):
                return self.reply(404, b"not found\n")
            with open(f, "rb") as fh:
                return self.reply(200, fh.read(), "application/octet-stream")
        name = path.lstrip("/")
        accept = self.headers.get("Accept", "")
        abbreviated = CORGI in accept and not srv.full_only
        self.count("%s /%s %s" % (self.command, name, "abbreviated" if abbreviated else "full"))
        doc_file = os.path.join(srv.root, "docs", name.replace("/", "%2f") + ".json")
        if "/" in name.replace("/", "", 1) or not os.path.isfile(doc_file):
            return self.reply(404, b'{"error":"not found"}', "application/json")
        with open(doc_file) as fh:
            text = fh.read().replace("{BASE}", "http://127.0.0.1:%d" % srv.server_address[1])
        recent = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 86400))
        text = text.replace("{RECENT}", recent)
        doc = json.loads(text)
        if abbreviated:
            doc = abbreviate(doc)
        body = json.dumps(doc).encode()
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
        if self.headers.get("If-None-Match") == etag:
            return self.reply(304, b"", "application/json", [("ETag", etag)])
        return self.reply(200, body, CORGI if abbreviated else "application/json",
                          [("ETag", etag)])


def unpublish(root, name, version):
    doc_file = os.path.join(root, "docs", name.replace("/", "%2f") + ".json")
    with open(doc_file) as f:
        doc = json.load(f)
    if version not in doc["versions"]:
        sys.exit("unpublish: %s has no version %s" % (name, version))
    del doc["versions"][version]
    doc["time"].pop(version, None)
    left = sorted(doc["versions"], key=lambda v: [int(x) for x in v.split(".")])
    for tag, v in list(doc["dist-tags"].items()):
        if v == version:
            if left:
                doc["dist-tags"][tag] = left[-1]
            else:
                del doc["dist-tags"][tag]
    with open(doc_file + ".tmp", "w") as f:
        json.dump(doc, f, indent=2)
    os.rename(doc_file + ".tmp", doc_file)


def serve(root, port_file, full_only=False):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.full_only = full_only
    srv.daemon_threads = True
    srv.root = os.path.realpath(root)
    srv.lock = threading.Lock()
    srv.counts = {}
    srv.requests = []
    port = srv.server_address[1]
    print(port, flush=True)
    if port_file:
        with open(port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "build":
        build(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "unpublish":
        unpublish(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) >= 3 and sys.argv[1] == "serve":
        args = sys.argv[3:]
        pf = args[args.index("--port-file") + 1] if "--port-file" in args else None
        serve(sys.argv[2], pf, "--full-only" in args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
