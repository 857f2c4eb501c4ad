#!/usr/bin/python3
"""fake_public: an ECR-Public-shaped registry on 127.0.0.1, reached as https://HOST/ (docs/ecr.md).

    /usr/bin/python3 fake_public.py --backend http://127.0.0.1:PORT --cert CERT --key KEY
                                    [--host public.ecr.aws] [--ecr-password PW]
                                    [--expires-in S] [--port 0]

The port is the first line of stdout. The process is an HTTP forward proxy (what a proxy's
--http-proxy names), so that a client can keep the real registry URL https://HOST/:
  * CONNECT HOST:443 is answered by this process itself: TLS with CERT/KEY (a self-signed
    certificate for HOST: the client's --ca-file), then the registry below. CONNECT to any other
    place: 403.
  * Absolute-form requests to http://127.0.0.1:PORT/... (the ECR API mock, fake_ecr.py) are
    forwarded as they are (headers and body unchanged, so SigV4 signatures still verify).
  * Origin-form requests are control (never counted): GET /_counts, POST /_control/reset,
    POST /_control/deny?n=N.
The registry behaves as ECR Public does:
  * /v2/... without Authorization: 401, WWW-Authenticate: Bearer realm="https://HOST/token/",
    service="HOST" (and scope="repository:NAME:pull" on repository routes);
  * GET /token/?service=HOST&scope=...: {"token": <random>, "expires_in": S}, anonymously;
  * Authorization: Bearer T, where T is a token issued here and not expired, or
    base64("AWS:" + PW) (the ecr-public GetAuthorizationToken token of fake_ecr.py --password
    PW): forwarded to BACKEND (an open docker-registry) and streamed back;
  * any other Authorization (an expired or unknown token, Basic), and the next N authorised
    requests after /_control/deny?n=N: 400 {"errors":[{"code":"DENIED",...}]} -- ECR Public
    answers an expired token with 400, not 401.
Counts: "connect", "api" (forwarded API calls), "token", "challenged" (401), "denied" (400),
"v2" (forwarded to the backend), "bearer.anon" and "bearer.ecr" (which token authorised it),
"basic" (requests that carried Basic credentials), and "v2 <METHOD> <path>" per request.
Exits when its parent dies. Standard library only; run with /usr/bin/python3.
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
       "te", "trailers", "transfer-encoding", "upgrade"}
DENIED = {"errors": [{"code": "DENIED", "message": "Your Authorization Token is invalid."}]}


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.counts = {}
        self.tokens = {}  # token -> expiry (epoch s)
        self.deny = 0
        self.ecr_token = base64.b64encode(("AWS:" + args.ecr_password).encode()).decode()

    def count(self, name):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1


def copy_body(src, dst, n):
    while n > 0:
        chunk = src.read(min(n, 65536))
        if not chunk:
            raise OSError("short body")
        dst.write(chunk)
        n -= len(chunk)


def relay(handler, resp, head):
    """Sends an http.client response back through handler."""
    body = None
    length = resp.getheader("Content-Length")
    if not head and length is None:
        body = resp.read()
        length = str(len(body))
    handler.send_response(resp.status, resp.reason)
    for k, v in resp.getheaders():
        if k.lower() not in HOP and k.lower() != "content-length":
            handler.send_header(k, v)
    if length is not None:
        handler.send_header("Content-Length", length)
    handler.end_headers()
    if head:
        return
    if body is not None:
        handler.wfile.write(body)
    else:
        copy_body(resp, handler.wfile, int(length))


class Registry(BaseHTTPRequestHandler):
    """The registry, spoken over the TLS connection of a CONNECT."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def _json(self, status, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _name(self, path):
        rest = path[len("/v2/"):]
        for sep in ("/manifests/", "/blobs/", "/tags/list"):
            i = rest.rfind(sep)
            if i > 0:
                return rest[:i]
        return None

    def _token(self, url):
        st = self.server.state
        st.count("token")
        q = urllib.parse.parse_qs(url.query)
        if q.get("service", [""])[0] != st.args.host:
            return self._json(400, {"errors": [{"code": "UNSUPPORTED", "message": "service"}]})
        tok = secrets.token_urlsafe(24)
        with st.lock:
            st.tokens[tok] = time.time() + st.args.expires_in
        self._json(200, {"token": tok, "expires_in": st.args.expires_in})

    def _v2(self, url):
        st = self.server.state
        host = st.args.host
        auth = self.headers.get("Authorization") or ""
        if not auth:
            st.count("challenged")
            name = self._name(url.path)
            ch = 'Bearer realm="https://%s/token/",service="%s"' % (host, host)
            if name:
                ch += ',scope="repository:%s:pull"' % name
            return self._json(401, {"errors": [{"code": "UNAUTHORIZED",
                                                "message": "authentication required"}]},
                              [("WWW-Authenticate", ch)])
        which = None
        if auth.startswith("Bearer "):
            tok = auth[len("Bearer "):]
            with st.lock:
                if tok == st.ecr_token:
                    which = "bearer.ecr"
                elif st.tokens.get(tok, 0) > time.time():
                    which = "bearer.anon"
                if which and st.deny > 0:
                    st.deny -= 1
                    which = None
        elif auth.startswith("Basic "):
            st.count("basic")
        if not which:
            st.count("denied")
            return self._json(400, DENIED)
        st.count(which)
        st.count("v2")
        st.count("v2 %s %s" % (self.command, url.path))
        b = urllib.parse.urlsplit(st.args.backend)
        conn = http.client.HTTPConnection(b.hostname, b.port, timeout=30)
        try:
            hdrs = {k: v for k, v in self.headers.items()
                    if k.lower() not in HOP and k.lower() not in ("host", "authorization")}
            conn.request(self.command, self.path, headers=hdrs)
            relay(self, conn.getresponse(), self.command == "HEAD")
        finally:
            conn.close()

    def _route(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/token"):
            return self._token(url)
        if url.path == "/v2" or url.path.startswith("/v2/"):
            return self._v2(url)
        self._json(404, {"errors": [{"code": "NOT_FOUND", "message": "no route"}]})

    do_GET = _route
    do_HEAD = _route


class Front(BaseHTTPRequestHandler):
    """The forward proxy and the control API."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if self.server.state.args.verbose:
            sys.stderr.write("fake_public: " + (fmt % a) + "\n")

    def _plain(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self):
        st = self.server.state
        host, _, port = self.path.rpartition(":")
        if host != st.args.host or port != "443":
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        st.count("connect")
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            tls = self.server.ctx.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            Registry(tls, self.client_address, self.server)
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def _forward(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        if url.hostname != "127.0.0.1" or url.scheme != "http":
            return self._plain(403, {"error": "only http://127.0.0.1 is forwarded"})
        st.count("api")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            path = url.path or "/"
            if url.query:
                path += "?" + url.query
            conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            relay(self, conn.getresponse(), self.command == "HEAD")
        finally:
            conn.close()

    def _control(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if self.command == "GET" and url.path == "/_counts":
            with st.lock:
                return self._plain(200, dict(st.counts))
        if self.command == "POST" and url.path == "/_control/reset":
            with st.lock:
                st.counts = {}
            return self._plain(200, {"ok": True})
        if self.command == "POST" and url.path == "/_control/deny":
            with st.lock:
                st.deny = int(q.get("n", "1"))
            return self._plain(200, {"ok": True})
        self._plain(404, {"error": "no such control"})

    def _any(self):
        if self.path.startswith("http://") or self.path.startswith("https://"):
            return self._forward()
        return self._control()

    do_GET = _any
    do_HEAD = _any
    do_POST = _any


def watch_parent(ppid):
    while True:
        if os.getppid() != ppid:
            os._exit(0)
        time.sleep(0.5)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--backend", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--host", default="public.ecr.aws")
    p.add_argument("--ecr-password", default="fake-ecr-password")
    p.add_argument("--expires-in", type=int, default=300)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Front)
    srv.daemon_threads = True
    srv.state = State(args)
    srv.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.ctx.load_cert_chain(args.cert, args.key)
    print(srv.server_port, flush=True)
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
