"""A file server that states a Repr-Digest (RFC 9530) for every file it serves: the true sha-256
for /true.bin, a false one for /lie.bin (tests/integration/tier_test.sh).

    python3 stating_server.py PORT
"""
import base64
import hashlib
import http.server
import sys

BODY = {"/true.bin": b"true bytes\n" * 1000, "/lie.bin": b"other bytes\n" * 1000}


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, with_body):
        body = BODY.get(self.path)
        if body is None:
            self.send_error(404)
            return
        stated = body if self.path == "/true.bin" else body + b"!"
        digest = base64.b64encode(hashlib.sha256(stated).digest()).decode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Repr-Digest", "sha-256=:%s:" % digest)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):
        self.answer(True)

    def do_HEAD(self):
        self.answer(False)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
