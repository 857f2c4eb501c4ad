#!/usr/bin/python3
"""tests/integration/pypi/build.py -- a static PyPI simple repository for the tests (stdlib only).

    /usr/bin/python3 build.py DIR
    /usr/bin/python3 build.py remove DIR PROJECT FILE     drops FILE's link from PROJECT's page
                                                          (a file deleted at the index)
    /usr/bin/python3 build.py yank DIR PROJECT FILE REASON  marks FILE's link yanked
                                                          (PEP 592: data-yanked="REASON")

Writes a tree that any static server (upstream.py, nginx) serves as a PEP 503 repository:

    DIR/simple/index.html                               the project list
    DIR/simple/<project>/index.html                     one page per project: links relative to
                                                        the page (../../packages/<file>#sha256=)
    DIR/packages/<file>                                 the distributions
    DIR/packages/<wheel>.metadata                       PEP 658 core metadata of upfs-demo's wheel
and DIR/../expect.json: {"<file>": {"sha256": hex, "size": n}}, and DIR/../local/, never
served: distributions a test copies into a registry's local content.

Projects:
    upfs-demo    upfs_demo-1.0.0-py3-none-any.whl (with data-dist-info-metadata), and an older
                 upfs_demo-0.9.0.tar.gz on the page but never asked for
    Upfs_Sdist   upfs_sdist-1.0.0.tar.gz, a setuptools sdist (pip prepares its metadata, so it
                 needs --no-build-isolation and setuptools); its page is at simple/upfs-sdist/
    upfs-bad     upfs_bad-1.0.0-py3-none-any.whl whose page names the sha256 of other bytes
    upfs-fresh, upfs-inhouse, upfs-evil   JSON pages (PEP 691, simple/<project>/index.json) with
                 PEP 700 upload times: <m>-1.0.0-py3-none-any.whl uploaded 2024-01-01 and (not
                 upfs-evil) <m>-1.1.0-py3-none-any.whl uploaded one day before the build
Local (DIR/../local/):
    upfs_local-1.0.0-py3-none-any.whl   a project no upstream has
    upfs_demo-2.0.0-py3-none-any.whl    a newer upfs-demo than the upstream's
"""

import base64
import gzip
import hashlib
import html
import io
import json
import os
import sys
import tarfile
import time
import zipfile

MTIME = (2024, 1, 1, 0, 0, 0)


def metadata(name, version):
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: upstreamfs test fixture\n"
            "Requires-Python: >=3.7\n" % (name, version)).encode()


def wheel(name, version, module):
    dist_info = "%s-%s.dist-info" % (name.replace("-", "_"), version)
    files = {
        module + "/__init__.py": ("VERSION = %r\n" % version).encode(),
        dist_info + "/METADATA": metadata(name, version),
        dist_info + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: upstreamfs-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
    record.append(dist_info + "/RECORD,,")
    files[dist_info + "/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(zipfile.ZipInfo(path, MTIME), data)
    return out.getvalue(), files[dist_info + "/METADATA"]


def sdist(name, version, module):
    base = "%s-%s" % (name.replace("-", "_").lower(), version)
    files = {
        "PKG-INFO": metadata(name, version),
        "pyproject.toml": b'[build-system]\nrequires = ["setuptools"]\n'
                          b'build-backend = "setuptools.build_meta"\n',
        "setup.py": ("from setuptools import setup\nsetup(name=%r, version=%r, packages=[%r])\n"
                     % (name, version, module)).encode(),
        module + "/__init__.py": ("VERSION = %r\n" % version).encode(),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(base + "/" + path)
            info.size = len(data)
            info.mtime = 1704067200
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def page(project, links):
    rows = "".join('<a href="../../packages/%s#sha256=%s"%s>%s</a><br/>\n' % (f, h, extra, f)
                   for f, h, extra in links)
    return ("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">"
            "<title>Links for %s</title></head><body><h1>Links for %s</h1>\n%s</body></html>\n"
            % (project, project, rows)).encode()


def main():
    root = sys.argv[1]
    os.makedirs(os.path.join(root, "packages"), exist_ok=True)
    expect = {}

    def put(name, data):
        with open(os.path.join(root, "packages", name), "wb") as f:
            f.write(data)
        expect[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        return expect[name]["sha256"]

    def put_page(project, links):
        d = os.path.join(root, "simple", project)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.html"), "wb") as f:
            f.write(page(project, links))

    whl, meta = wheel("upfs-demo", "1.0.0", "upfs_demo")
    wname = "upfs_demo-1.0.0-py3-none-any.whl"
    wsha = put(wname, whl)
    msha = put(wname + ".metadata", meta)
    old = "upfs_demo-0.9.0.tar.gz"
    osha = put(old, sdist("upfs-demo", "0.9.0", "upfs_demo"))
    put_page("upfs-demo", [(wname, wsha, ' data-dist-info-metadata="sha256=%s"' % msha),
                           (old, osha, ' data-requires-python="&gt;=3.7"')])

    sname = "upfs_sdist-1.0.0.tar.gz"
    ssha = put(sname, sdist("Upfs_Sdist", "1.0.0", "upfs_sdist"))
    put_page("upfs-sdist", [(sname, ssha, "")])

    bad, _ = wheel("upfs-bad", "1.0.0", "upfs_bad")
    bname = "upfs_bad-1.0.0-py3-none-any.whl"
    put(bname, bad)
    put_page("upfs-bad", [(bname, hashlib.sha256(bad + b"other bytes").hexdigest(), "")])

    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
    for project, versions in (("upfs-fresh", ("1.0.0", "1.1.0")),
                              ("upfs-inhouse", ("1.0.0", "1.1.0")), ("upfs-evil", ("1.0.0",))):
        module = project.replace("-", "_")
        files = []
        for v in versions:
            data, _ = wheel(project, v, module)
            fname = "%s-%s-py3-none-any.whl" % (module, v)
            files.append({"filename": fname, "url": "../../packages/" + fname,
                          "hashes": {"sha256": put(fname, data)}, "size": len(data),
                          "upload-time": "2024-01-01T00:00:00.000000Z" if v == "1.0.0" else recent})
        d = os.path.join(root, "simple", project)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.json"), "w") as f:
            json.dump({"meta": {"api-version": "1.1"}, "name": project, "files": files,
                       "versions": list(versions)}, f, indent=1)

    local = os.path.join(os.path.dirname(os.path.abspath(root)), "local")
    os.makedirs(local, exist_ok=True)
    for name, version, module in (("upfs-local", "1.0.0", "upfs_local"),
                                  ("upfs-demo", "2.0.0", "upfs_demo")):
        data, _ = wheel(name, version, module)
        fname = "%s-%s-py3-none-any.whl" % (module, version)
        with open(os.path.join(local, fname), "wb") as f:
            f.write(data)
        expect[fname] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    with open(os.path.join(root, "simple", "index.html"), "wb") as f:
        f.write(b"<!DOCTYPE html><html><body>" + b"".join(
            b'<a href="%s/">%s</a>\n' % (p, p) for p in (b"upfs-demo", b"upfs-sdist", b"upfs-bad"))
            + b"</body></html>\n")
    with open(os.path.join(os.path.dirname(os.path.abspath(root)), "expect.json"), "w") as f:
        json.dump(expect, f, indent=2)


def edit_page(root, project, fname, yank_reason=None):
    """Removes (or, with a reason, marks yanked) the link of fname on project's page."""
    path = os.path.join(root, "simple", project, "index.html")
    with open(path, "rb") as f:
        lines = f.read().decode().split("\n")
    out, found = [], False
    for line in lines:
        if ">%s</a>" % fname in line:
            found = True
            if yank_reason is None:
                continue
            line = line.replace(">%s</a>" % fname,
                                ' data-yanked="%s">%s</a>' % (html.escape(yank_reason), fname), 1)
        out.append(line)
    if not found:
        sys.exit("%s: no link of %s" % (path, fname))
    with open(path + ".tmp", "wb") as f:
        f.write("\n".join(out).encode())
    os.rename(path + ".tmp", path)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "remove":
        edit_page(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 6 and sys.argv[1] == "yank":
        edit_page(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        main()
