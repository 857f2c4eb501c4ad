#!/usr/bin/python3
"""tests/integration/docker/regproxy.py -- a counting reverse proxy in front of docker-registry.

    /usr/bin/python3 regproxy.py --backend http://127.0.0.1:PORT [--port 0] [--port-file F]
                                 [--redirect-blobs-to BASE_URL]

Standard library only; listens on 127.0.0.1. Every request except /_control/ ones is forwarded
to the backend (method, path and query, headers, body; the Host header is kept so the registry
builds its URLs for this proxy) and the answer is streamed back. Each request is counted as
"METHOD /path" (no query) when its request line has been read.

--redirect-blobs-to BASE: a GET of /v2/<name>/blobs/<digest> is not forwarded but answered
"307 Temporary Redirect" to BASE + the same path (as object stores and CDNs do). Run a second
regproxy at BASE (another origin: another port, or "localhost" instead of "127.0.0.1") to serve
it; its request log shows whether an Authorization header followed the redirect (it must not).

Control API (JSON; never counted):
  GET  /_control/counts    -> {"GET /v2/...": 2, ...}
  GET  /_control/requests  -> [{"method", "path", "auth": "bearer"|"basic"|"", "status", "time",
                               "range": the Range header or ""}]
  POST /_control/reset     -> zero the counts and the log
  POST /_control/down      -> answer every request with 503 until /_control/up
  POST /_control/ratelimit?seconds=N
                           -> answer every manifest request with 429 and "Retry-After: N" (and
                              Docker Hub's body text) until /_control/up
  POST /_control/expire?n=N[&after=K][&once=1]
                           -> answer the next N requests that carry an Authorization header
                              with 403 DENIED "Your authorization token has expired", as ECR
                              does (counted, and logged with status 403); with after=K, the
                              next K such requests pass first (a token that dies mid-download);
                              with once=1, a request like one refused (method, path, Range) is
                              its retry with a renewed token: it passes, and so does every
                              request after it (the token died once)
  POST /_control/pad?bytes=N
                           -> answer every blob GET (status 200) with its bytes and N more, without
                              a Content-Length (the body ends when the connection closes), as a
                              lying or broken upstream would; each such answer's log entry says
                              how many body bytes could be sent ("sent") before the client hung up
  POST /_control/up
"""
import argparse
import http.client
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
       "transfer-encoding", "upgrade"}


class State:
    lock = threading.Lock()
    counts = {}
    log = []
    down = False
    ratelimit = 0
    expire = 0
    expire_after = 0
    expire_once = False
    expired_seen = set()
    pad = 0
    backend = None
    redirect = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _control(self):
        path = urllib.parse.urlsplit(self.path).path
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        with State.lock:
            if path == "/_control/counts":
                return self._json(200, State.counts)
            if path == "/_control/requests":
                return self._json(200, State.log)
            if path == "/_control/reset":
                State.counts = {}
                State.log = []
                return self._json(200, {"ok": True})
            if path == "/_control/down":
                State.down = True
                return self._json(200, {"ok": True})
            if path == "/_control/ratelimit":
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                State.ratelimit = int(q.get("seconds", ["60"])[0])
                return self._json(200, {"ok": True})
            if path == "/_control/expire":
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                State.expire = int(q.get("n", ["1"])[0])
                State.expire_after = int(q.get("after", ["0"])[0])
                State.expire_once = q.get("once", ["0"])[0] == "1"
                State.expired_seen = set()
                return self._json(200, {"ok": True})
            if path == "/_control/pad":
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                State.pad = int(q.get("bytes", ["0"])[0])
                return self._json(200, {"ok": True})
            if path == "/_control/up":
                State.down = False
                State.pad = 0
                State.ratelimit = 0
                State.expire = 0
                return self._json(200, {"ok": True})
        return self._json(404, {"error": "unknown control path"})

    def _record(self, status):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        auth = (self.headers.get("Authorization") or "").split(" ")[0].lower()
        entry = {"method": self.command, "path": path, "auth": auth, "status": status,
                 "time": time.time(), "range": self.headers.get("Range") or ""}
        with State.lock:
            State.log.append(entry)
        return entry

    def _count(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        key = "%s %s" % (self.command, path)
        with State.lock:
            State.counts[key] = State.counts.get(key, 0) + 1

    def _refuse(self, status, msg, ctype="application/json", extra=()):
        """Answers status with msg instead of forwarding (logged, not counted again)."""
        self._record(status)
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(msg)

    def _forward(self):
        if self.path.startswith("/_control/"):
            return self._control()
        self._count()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        if State.down:
            return self._refuse(503, b'{"errors":[{"code":"UNAVAILABLE","message":"down for the test"}]}')
        with State.lock:
            expired = State.expire > 0 and bool(self.headers.get("Authorization"))
            asked = (self.command, self.path, self.headers.get("Range") or "")
            if expired and State.expire_after > 0:
                State.expire_after -= 1
                expired = False
            elif expired and State.expire_once and asked in State.expired_seen:
                expired = False
                State.expire = 0  # the token was renewed: no request fails from now on
            if expired:
                State.expire -= 1
                State.expired_seen.add(asked)
        if expired:
            return self._refuse(403, b'{"errors":[{"code":"DENIED","message":"Your authorization '
                                     b'token has expired. Reauthenticate and try again."}]}')
        path = urllib.parse.urlsplit(self.path).path
        if State.ratelimit and "/manifests/" in path:
            return self._refuse(
                429, b"You have reached your pull rate limit. You may increase the limit by "
                b"authenticating and upgrading: https://www.docker.com/increase-rate-limits",
                "text/plain", [("Retry-After", str(State.ratelimit))])
        if State.redirect and self.command == "GET" and "/blobs/sha256:" in path and \
                path.startswith("/v2/"):
            self._record(307)
            self.send_response(307)
            self.send_header("Location", State.redirect.rstrip("/") + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        b = urllib.parse.urlsplit(State.backend)
        conn = http.client.HTTPConnection(b.hostname, b.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            if body is not None and "content-length" not in {k.lower() for k in headers}:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
        except OSError:
            self._record(502)
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        entry = self._record(r.status)
        if State.pad and self.command == "GET" and r.status == 200 and "/blobs/sha256:" in path:
            return self._padded(r, conn, entry)
        data = None
        length = r.getheader("Content-Length")
        if length is None and self.command != "HEAD" and r.status not in (204, 304):
            data = r.read()
            length = str(len(data))
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            if data is not None:
                self.wfile.write(data)
            else:
                while True:
                    chunk = r.read(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
        conn.close()

    def _padded(self, r, conn, entry):
        """The blob and State.pad more bytes, close-delimited; entry["sent"] counts the body."""
        self.send_response(200)
        for k, v in r.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent, extra = 0, State.pad
        try:
            while True:
                chunk = r.read(65536)
                if not chunk:
                    if extra <= 0:
                        break
                    chunk = b"\0" * min(65536, extra)
                    extra -= len(chunk)
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        finally:
            entry["sent"] = sent
            conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--redirect-blobs-to")
    a = ap.parse_args()
    State.backend = a.backend
    State.redirect = a.redirect_blobs_to
    srv = Server(("127.0.0.1", a.port), Handler)
    port = srv.server_address[1]
    print(port, flush=True)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
