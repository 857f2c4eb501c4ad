#!/usr/bin/python3
"""A file listed by one parent upstreamfs, fetched from another (tests/integration/tier_test.sh).

    python3 cross_fetch.py KIND ROUTE1 ROUTE2 NAME...

ROUTE1 and ROUTE2 are two parents' shim routes of the same proxy (http://127.0.0.1:P/KEY/).
The document KIND names is read from ROUTE1 as a client reads it; every file URL it gives for
NAME... must lie below ROUTE1 (relative to the route, so another parent can serve it), is
fetched with ROUTE2 in place of ROUTE1, and must match the digest the document states:

    npm    ROUTE1<NAME> (the abbreviated packument): each version's dist.tarball, its
           dist.integrity (SRI sha512)
    pypi   ROUTE1simple/<NAME>/ (the HTML page): each link, its #sha256= fragment
    helm   ROUTE1index.yaml: each version of chart NAME, its urls[0] (resolved against the
           index's URL), its digest (sha256)
    maven  NAME is a path below the route (g/a/v/a-v.jar): the file, its .sha1 read from ROUTE1

Prints one line per file verified; exits 1 on the first failure, saying why.
"""
import base64
import hashlib
import json
import re
import sys
import urllib.parse
import urllib.request

import yaml

NPM_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def fail(msg):
    print("cross_fetch: " + msg, file=sys.stderr)
    sys.exit(1)


def files(kind, route, name):
    """(url, algo, expected digest) of the files the document of NAME at ROUTE names."""
    if kind == "npm":
        doc = json.loads(get(route + name, NPM_ACCEPT))
        for v in doc["versions"].values():
            sri = v["dist"]["integrity"]
            yield v["dist"]["tarball"], "sha512", base64.b64decode(sri.split("-", 1)[1]).hex()
    elif kind == "pypi":
        page = get(route + "simple/%s/" % name).decode()
        for href in re.findall(r'href="([^"]+)"', page):
            url, _, frag = href.partition("#sha256=")
            yield urllib.parse.urljoin(route + "simple/%s/" % name, url), "sha256", frag
    elif kind == "helm":
        index = yaml.safe_load(get(route + "index.yaml"))
        for v in index["entries"][name]:
            yield urllib.parse.urljoin(route + "index.yaml", v["urls"][0]), "sha256", v["digest"]
    elif kind == "maven":
        yield route + name, "sha1", get(route + name + ".sha1").decode().split()[0]
    else:
        fail("unknown kind " + kind)


def main():
    kind, route1, route2, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    n = 0
    for name in names:
        for url, algo, want in files(kind, route1, name):
            if not url.startswith(route1):
                fail("%s names %s, outside the parent's route %s" % (name, url, route1))
            other = route2 + url[len(route1):]
            got = hashlib.new(algo, get(other)).hexdigest()
            if got != want:
                fail("%s from %s: %s %s, the document says %s" % (name, other, algo, got, want))
            print("%s %s:%s" % (other, algo, got))
            n += 1
    if n == 0:
        fail("no file named for " + " ".join(names))


main()
