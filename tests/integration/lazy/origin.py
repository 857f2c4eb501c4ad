#!/usr/bin/python3
"""tests/integration/lazy/origin.py -- upstreams that get Range wrong, for lazy_test.sh.

    origin.py PORTFILE LOG FILE_A FILE_B

Serves on 127.0.0.1 (a free port, written to PORTFILE) the bytes of FILE_A as
    /norange/big.bin  every GET answers 200 with the whole body (Range ignored)
    /r416/big.bin     any GET with Range answers 416; without, 200 with the whole body
    /swap/big.bin     honours Range, but from the second GET on serves FILE_B (another
                      ETag and Last-Modified): the file changed between requests
    /baddigest/big.bin  honours Range, and states (Repr-Digest) FILE_B's sha-256 for FILE_A
    /grown/big.bin    HEAD says FILE_A's length, but GETs serve FILE_A and 4096 more bytes
                      (the listing's size is stale), honouring Range
    /gone/big.bin     HEAD says FILE_A's length, every GET answers 404 (removed since listed)
    /busy/big.bin     honours Range, but its second GET answers 503 (once; no Retry-After)
HEAD answers the length and validators of what a GET would serve. LOG gets one line per GET:
"PATH STATUS BYTES RANGE".
"""
import base64
import hashlib
import http.server
import os
import re
import sys
import threading

PORTFILE, LOG, FILE_A, FILE_B = sys.argv[1:5]
LOCK = threading.Lock()
PATHS = r"^/(norange|r416|swap|baddigest|grown|gone|busy)/big\.bin$"
GROWN = b"x" * 4096
with open(FILE_B, "rb") as fb:
    B_DIGEST = base64.b64encode(hashlib.sha256(fb.read()).digest()).decode()
GETS = {}


def body_of(path, count):
    if path.startswith("/swap/") and count > 1:
        return FILE_B, '"b-version"', "Tue, 01 Dec 2026 00:00:00 GMT"
    return FILE_A, '"a-version"', "Mon, 30 Nov 2026 00:00:00 GMT"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def validators(self, etag, lm, length):
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", lm)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")

    def directory(self):
        """The modes' directories answer an HTML page (the generic driver's lookup asks)."""
        if not re.match(r"^/(norange|r416|swap|baddigest|grown|gone|busy)/$", self.path):
            return False
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_HEAD(self):
        if self.directory():
            return
        with LOCK:
            count = GETS.get(self.path, 0)
        f, etag, lm = body_of(self.path, max(count, 1))
        if not re.match(PATHS, self.path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.validators(etag, lm, os.path.getsize(f))
        self.end_headers()

    def do_GET(self):
        if self.path.startswith("/gone/"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.note(404, 0, self.headers.get("Range", ""))
            return
        if not re.match(PATHS, self.path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with LOCK:
            GETS[self.path] = GETS.get(self.path, 0) + 1
            count = GETS[self.path]
        f, etag, lm = body_of(self.path, count)
        if self.path.startswith("/busy/") and count == 2:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.note(503, 0, self.headers.get("Range", ""))
            return
        extra = GROWN if self.path.startswith("/grown/") else b""
        size = os.path.getsize(f) + len(extra)
        rng = self.headers.get("Range", "")
        m = re.match(r"^bytes=(\d+)-(\d*)$", rng)
        first, last, status = 0, size - 1, 200
        if rng and self.path.startswith("/r416/"):
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % size)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.note(416, 0, rng)
            return
        if m and self.path.startswith(("/swap/", "/baddigest/", "/grown/", "/busy/")):
            first = int(m.group(1))
            last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            status = 206
        self.send_response(status)
        self.validators(etag, lm, last - first + 1)
        if self.path.startswith("/baddigest/"):
            self.send_header("Repr-Digest", "sha-256=:%s:" % B_DIGEST)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, size))
        self.end_headers()
        sent = 0
        try:
            with open(f, "rb") as fp:
                data = fp.read() + extra if extra else None
                fp.seek(first)
                left = last - first + 1
                while left > 0:
                    if data is not None:
                        b = data[first + sent:first + sent + min(left, 1 << 20)]
                    else:
                        b = fp.read(min(left, 1 << 20))
                    if not b:
                        break
                    self.wfile.write(b)
                    sent += len(b)
                    left -= len(b)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.note(status, sent, rng)

    def note(self, status, sent, rng):
        with LOCK, open(LOG, "a") as lf:
            lf.write("%s %d %d %s\n" % (self.path, status, sent, rng or "-"))


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
with open(PORTFILE + ".tmp", "w") as pf:
    pf.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
