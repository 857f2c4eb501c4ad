#!/usr/bin/python3
"""tests/integration/lib/lying_fixtures.py -- artifacts of every digest-verified type, for
tests/integration/fault_digest_test.sh (standard library only).

    /usr/bin/python3 lying_fixtures.py ROOT BASE_URL SIZE_NAME=BYTES... [--big NAME=BYTES]

Writes under ROOT (served by upstream.py at BASE_URL) one artifact per SIZE_NAME and type, with
a correct checksum in the protocol's own place:

    maven/org/v/s1-NAME/1.0/s1-NAME-1.0.jar      + .sha1 only
    maven/org/v/s256-NAME/1.0/s256-NAME-1.0.jar  + .sha256 only
    npm/docs/upfs-NAME                           package document: dist.integrity (sha512 SRI)
    npm/t/upfs-NAME-1.0.0.tgz                    its tarball (absolute URL in the document)
    pypi/simple/upfs-NAME/index.html             link ../../packages/<file>#sha256=<hex>
    pypi/packages/upfs_NAME-1.0.0-py3-none-any.whl
    helm/index.yaml                              entry cNAME 1.0.0 with its digest
    helm/charts/cNAME-1.0.0.tgz
--big NAME=BYTES adds maven/org/v/s1-NAME (a sparse file: 1 MiB of random bytes, then zeros,
so 300 MiB take no time to write), checksum .sha1. The bodies are random bytes: the drivers
never look inside them. Prints one line "TYPE NAME RELPATH SHA256" per artifact.
"""
import base64
import hashlib
import os
import sys


def write(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def body(size):
    return os.urandom(size)


def sparse(root, rel, size):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    head = os.urandom(min(size, 1 << 20))
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    h1, h256 = hashlib.sha1(), hashlib.sha256()
    h1.update(head)
    h256.update(head)
    zeros = bytes(1 << 20)
    left = size - len(head)
    while left > 0:
        n = min(left, len(zeros))
        h1.update(zeros[:n])
        h256.update(zeros[:n])
        left -= n
    return h1.hexdigest(), h256.hexdigest()


def main():
    root, base = sys.argv[1], sys.argv[2].rstrip("/")
    args = sys.argv[3:]
    big = []
    sizes = []
    while args:
        a = args.pop(0)
        if a == "--big":
            big.append(args.pop(0))
        else:
            sizes.append(a)
    out = []
    helm = []
    for spec in sizes:
        name, size = spec.split("=")
        size = int(size)
        for kind, ext in (("s1", "sha1"), ("s256", "sha256")):
            rel = "maven/org/v/%s-%s/1.0/%s-%s-1.0.jar" % (kind, name, kind, name)
            data = body(size)
            write(root, rel, data)
            write(root, rel + "." + ext, hashlib.new(ext, data).hexdigest().encode())
            out.append(("maven-" + ext, name, rel, hashlib.sha256(data).hexdigest()))
        # npm: the tarball elsewhere than below the document (the document names it)
        data = body(size)
        rel = "npm/t/upfs-%s-1.0.0.tgz" % name
        write(root, rel, data)
        sri = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        doc = ('{"name": "upfs-%s", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": '
               '{"name": "upfs-%s", "version": "1.0.0", "dist": {"tarball": "%s/%s", '
               '"integrity": "%s"}}}}\n' % (name, name, base, rel, sri))
        write(root, "npm/docs/upfs-%s" % name, doc.encode())
        out.append(("npm", name, rel, hashlib.sha256(data).hexdigest()))
        # pypi
        data = body(size)
        fname = "upfs_%s-1.0.0-py3-none-any.whl" % name
        write(root, "pypi/packages/" + fname, data)
        hexd = hashlib.sha256(data).hexdigest()
        page = ('<!DOCTYPE html>\n<html><body>\n<a href="../../packages/%s#sha256=%s">%s</a>\n'
                '</body></html>\n' % (fname, hexd, fname))
        write(root, "pypi/simple/upfs-%s/index.html" % name, page.encode())
        out.append(("pypi", name, "pypi/packages/" + fname, hexd))
        # helm
        data = body(size)
        rel = "helm/charts/c%s-1.0.0.tgz" % name
        write(root, rel, data)
        hexd = hashlib.sha256(data).hexdigest()
        helm.append("  c%s:\n  - apiVersion: v2\n    created: \"2024-01-01T00:00:00Z\"\n"
                    "    digest: %s\n    name: c%s\n    urls:\n    - charts/c%s-1.0.0.tgz\n"
                    "    version: 1.0.0\n" % (name, hexd, name, name))
        out.append(("helm", name, rel, hexd))
    write(root, "helm/index.yaml",
          ("apiVersion: v1\nentries:\n" + "".join(helm)
           + "generated: \"2024-01-01T00:00:00Z\"\n").encode())
    for spec in big:
        name, size = spec.split("=")
        rel = "maven/org/v/s1-%s/1.0/s1-%s-1.0.jar" % (name, name)
        h1, h256 = sparse(root, rel, int(size))
        write(root, rel + ".sha1", h1.encode())
        out.append(("maven-sha1", name, rel, h256))
    for o in out:
        print(" ".join(o))


main()
