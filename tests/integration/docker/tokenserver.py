#!/usr/bin/python3
"""tests/integration/docker/tokenserver.py -- a registry token server for distribution's token auth.

    /usr/bin/python3 tokenserver.py --key KEY.pem --cert CERT.pem --issuer ISS --service SVC
                                    --user NAME:PASSWORD [--expires-in 60] [--anonymous-pull]
                                    [--port 0] [--port-file F]

Uses /usr/bin/python3 with Debian's python3-cryptography. KEY/CERT are a P-256 key and its
self-signed certificate (openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1);
docker-registry trusts CERT as auth.token.rootcertbundle.

GET /token?service=SVC&scope=repository:NAME:ACTIONS[&scope=...]: with the right Basic
credentials every requested action is granted (push for skopeo, registry:catalog:*); without
credentials, repository pull only with --anonymous-pull, nothing otherwise; wrong credentials
get 401. The JWT is ES256 with an x5c header (the signature raw r||s, base64url), claims iss,
sub, aud, exp, nbf, iat, jti, access. The answer is {"token", "access_token", "expires_in",
"issued_at"}. Control (never counted): GET /_control/counts -> {"GET /token": n, "GET /token basic": n,
"GET /token anonymous": n, "scopes": {scope: n}}, POST /_control/reset.
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class State:
    lock = threading.Lock()
    counts = {}
    scopes = {}
    key = None
    x5c = None
    args = None


def sign(claims):
    header = {"typ": "JWT", "alg": "ES256", "x5c": [State.x5c]}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    der = State.key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input.decode() + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path == "/_control/reset":
            with State.lock:
                State.counts = {}
                State.scopes = {}
            return self._json(200, {"ok": True})
        self._json(404, {})

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/_control/counts":
            with State.lock:
                return self._json(200, dict(State.counts, scopes=State.scopes))
        kind = "basic" if (self.headers.get("Authorization") or "").lower().startswith("basic ") \
            else "anonymous"
        with State.lock:
            for key in ("GET " + u.path, "GET %s %s" % (u.path, kind)):
                State.counts[key] = State.counts.get(key, 0) + 1
        if u.path != "/token":
            return self._json(404, {})
        q = urllib.parse.parse_qs(u.query)
        a = State.args
        user = None
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                return self._json(400, {"error": "bad basic"})
            want_name, _, want_pw = a.user.partition(":")
            if name != want_name or pw != want_pw:
                return self._json(401, {"details": "wrong credentials"},
                                  {"WWW-Authenticate": 'Basic realm="token"'})
            user = name
        if q.get("service", [""])[0] != a.service:
            return self._json(400, {"error": "unknown service"})
        access = []
        for scope in q.get("scope", []):
            with State.lock:
                State.scopes[scope] = State.scopes.get(scope, 0) + 1
            typ, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            acts = [x for x in actions.split(",") if x]
            if user is None:
                acts = [x for x in acts if x == "pull"] if (a.anonymous_pull and
                                                           typ == "repository") else []
            access.append({"type": typ, "name": name, "actions": acts})
        now = int(time.time())
        claims = {"iss": a.issuer, "sub": user or "", "aud": a.service, "exp": now + a.expires_in,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        tok = sign(claims)
        issued = datetime.datetime.utcfromtimestamp(now).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._json(200, {"token": tok, "access_token": tok, "expires_in": a.expires_in,
                         "issued_at": issued})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--expires-in", type=int, default=60)
    ap.add_argument("--anonymous-pull", action="store_true")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    State.args = a
    with open(a.key, "rb") as f:
        State.key = serialization.load_pem_private_key(f.read(), password=None)
    with open(a.cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    State.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
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
