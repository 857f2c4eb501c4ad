#!/usr/bin/python3
"""tests/integration/npm/accept_proxy.py -- forwards npm's requests, asking for the corgi form.

    /usr/bin/python3 accept_proxy.py UPSTREAM_URL --port-file FILE

Listens on 127.0.0.1 (a kernel-chosen port written to FILE) and forwards every GET to
UPSTREAM_URL (http://127.0.0.1:PORT/prefix/) with the client's headers, except that a package
document request (a path without "/-/") asks for the abbreviated document npm's registry defines
(Accept: application/vnd.npm.install-v1+json): npm 11 asks for full documents when it installs,
and this lets a test install from the abbreviated ones. The Host header names the upstream, so
the URLs the upstream writes point at it directly. GET /_control/accepts lists the Accept headers
the documents were asked with.
"""

import json
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CORGI = "application/vnd.npm.install-v1+json"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        srv = self.server
        if self.path == "/_control/accepts":
            body = json.dumps(srv.accepts).encode()
            return self.send(200, body, [("Content-Type", "application/json")])
        url = srv.upstream + self.path.lstrip("/")
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection", "accept-encoding")}
        if "/-/" not in urllib.parse.unquote(self.path):
            headers = {k: v for k, v in headers.items() if k.lower() != "accept"}
            headers["Accept"] = CORGI
            with srv.lock:
                srv.accepts.append(self.headers.get("Accept", ""))
        req = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, body, hdrs = r.status, r.read(), r.getheaders()
        except urllib.error.HTTPError as e:
            status, body, hdrs = e.code, e.read(), e.headers.items()
        keep = [(k, v) for k, v in hdrs if k.lower() in ("content-type", "etag", "last-modified")]
        self.send(status, body, keep)

    def send(self, status, body, headers):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    if len(sys.argv) != 4 or sys.argv[2] != "--port-file":
        sys.exit(__doc__)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.upstream = sys.argv[1]
    srv.lock = threading.Lock()
    srv.accepts = []
    with open(sys.argv[3] + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(sys.argv[3] + ".tmp", sys.argv[3])
    srv.serve_forever()


if __name__ == "__main__":
    main()
