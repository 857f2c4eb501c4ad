#!/usr/bin/python3
"""tests/integration/egress/forward_proxy.py -- a minimal HTTP forward proxy for egress_test.sh.

    /usr/bin/python3 forward_proxy.py --port-file FILE --log FILE

Listens on 127.0.0.1 (kernel-chosen port, written to --port-file). Takes absolute-URI requests
("GET http://127.0.0.1:PORT/path HTTP/1.1"), relays them to 127.0.0.1 targets only (anything
else is a 403), returns the answer as it is (a redirect is not followed), and appends every
request target to --log, one per line, before relaying it.
"""
import argparse
import http.client
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def relay(self):
        with LOCK, open(self.server.log_path, "a") as f:
            f.write(self.path + "\n")
        u = urllib.parse.urlsplit(self.path)
        if u.scheme != "http" or u.hostname != "127.0.0.1":
            body = b"only http://127.0.0.1 targets\n"
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        conn = http.client.HTTPConnection("127.0.0.1", u.port or 80, timeout=30)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "host")}
        headers["Host"] = u.netloc
        conn.request(self.command, u.path + ("?" + u.query if u.query else ""), headers=headers)
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                self.send_header(k, v)
        length = r.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = relay
    do_HEAD = relay


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.log_path = a.log
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
