"""A file server that states a Repr-Digest (RFC 9530) for every file it serves: the true sha-256
for /true.bin, a false one for /lie.bin (tests/integration/tier_test.sh). /trailed-true.bin and
/trailed-lie.bin state it as a parent upstreamfs streaming a file it does not have yet does: a
chunked body, announced by "Trailer: Repr-Digest", with the digest in the trailer after it.

    python3 stating_server.py PORT
"""
import base64
import hashlib
import http.server
import sys

BODY = {"/true.bin": b"true bytes\n" * 1000, "/lie.bin": b"other bytes\n" * 1000,
        "/trailed-true.bin": b"trailed true\n" * 200000,
        "/trailed-lie.bin": b"trailed other\n" * 200000}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, with_body):
        body = BODY.get(self.path)
        if body is None:
            self.send_error(404)
            return
        stated = body if "true" in self.path else body + b"!"
        digest = "sha-256=:%s:" % base64.b64encode(hashlib.sha256(stated).digest()).decode()
        trailed = self.path.startswith("/trailed-")
        self.send_response(200)
        if trailed and with_body:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "Repr-Digest")
        else:
            self.send_header("Content-Length", str(len(body)))
            if not trailed:
                self.send_header("Repr-Digest", digest)
        self.end_headers()
        if not with_body:
            return
        if not trailed:
            self.wfile.write(body)
            return
        for i in range(0, len(body), 65536):
            part = body[i:i + 65536]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\nRepr-Digest: %s\r\n\r\n" % digest.encode())

    def do_GET(self):
        self.answer(True)

    def do_HEAD(self):
        self.answer(False)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
