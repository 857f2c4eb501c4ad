#!/usr/bin/python3
"""tests/integration/fault/auth_upstream.py -- upstream.py behind HTTP Basic authentication.

    /usr/bin/python3 auth_upstream.py --root DIR --users FILE [--port 0] [--port-file F] [--quiet]

FILE holds "user:password" lines (read once at start, so no secret is ever on a command line).
Every request outside /_control/ must carry "Authorization: Basic base64(user:password)" for one
of those users; otherwise the answer is 401 with WWW-Authenticate: Basic realm="upstreamfs-test".
Authenticated requests are served exactly as upstream.py serves them (faults, counts, control
API). Extra control route (never counted, never authenticated):

    GET /_control/auth -> {"ok": {"user": n, ...}, "missing": n, "wrong": n}

The server never logs or returns a password or an Authorization header value.
"""

import argparse
import base64
import binascii
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import upstream as up  # noqa: E402


class AuthHandler(up.Handler):
    def dispatch(self):
        path = self.path.split("?", 1)[0]
        if path == "/_control/auth":
            with self.server.auth_lock:
                return self.send_json(dict(self.server.auth_counts))
        if path.startswith("/_control/"):
            return super().dispatch()
        hdr = self.headers.get("Authorization") or ""
        user = None
        if hdr[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(hdr[6:].strip(), validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                raw = ""
            name, _, pw = raw.partition(":")
            if self.server.users.get(name) == pw:
                user = name
        with self.server.auth_lock:
            c = self.server.auth_counts
            if user is not None:
                c["ok"][user] = c["ok"].get(user, 0) + 1
            elif hdr:
                c["wrong"] += 1
            else:
                c["missing"] += 1
        if user is None:
            n = int(self.headers.get("Content-Length") or 0)
            if n > 0:
                self.rfile.read(n)
            return self.send_small(401, "authentication required\n",
                                   headers={"WWW-Authenticate": 'Basic realm="upstreamfs-test"'})
        return super().dispatch()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--users", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    users = {}
    with open(args.users, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if ":" in line:
                u, _, p = line.partition(":")
                users[u] = p
    srv = up.Server(("127.0.0.1", args.port), AuthHandler)
    srv.state = up.State(args.root)
    srv.quiet = args.quiet
    srv.users = users
    srv.auth_lock = threading.Lock()
    srv.auth_counts = {"ok": {}, "missing": 0, "wrong": 0}

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    port = srv.server_address[1]
    print(port, flush=True)
    if args.port_file:
        tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
