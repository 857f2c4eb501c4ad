#!/usr/bin/python3
"""tests/integration/lib/upstream.py -- a programmable, fault-injecting static HTTP/1.1 server.

Standard library only; run it with /usr/bin/python3. Listens on 127.0.0.1 only.

    /usr/bin/python3 upstream.py --root DIR [--port 0] [--port-file FILE] [--quiet]

With --port 0 (the default) the kernel picks a free port. The chosen port is printed as the first
line on stdout (flushed) and, with --port-file, written atomically to FILE. SIGTERM/SIGINT stop
the server and close every connection.

Serving DIR:
  * GET and HEAD; Content-Length on every response; keep-alive (HTTP/1.1).
  * Range: a single range "bytes=a-b", "bytes=a-" or "bytes=-n" -> 206 + Content-Range;
    unsatisfiable -> 416 + "Content-Range: bytes */SIZE"; several ranges or bad syntax -> 200, full
    body. If-Range (ETag or date) is honoured.
  * ETag ("<mtime hex>-<size hex>", like nginx) and Last-Modified; If-None-Match /
    If-Modified-Since -> 304.
  * A directory without a trailing slash -> 301 to "path/"; with a slash -> its index.html if
    present, else its index.json (application/json), else an nginx-style autoindex HTML page.
  * Paths are percent-decoded; anything that escapes DIR (.., symlinks out) -> 404; NUL -> 400.

Counting: every request except /_control/ ones is counted as "METHOD /decoded/path" (no query
string) when its request line has been read, i.e. before any response byte is sent.

Control API (JSON in and out; never counted, never faulted):
  GET  /_control/health                 -> {"ok": true}
  GET  /_control/counts                 -> {"GET /a/b": 2, "HEAD /a/b": 1, ...}
  GET  /_control/count?method=M&path=P  -> plain-text integer for exactly "M P" (method "*": sum)
  GET  /_control/requests               -> [{"method","path","target","range","headers",...}, ...]
  GET  /_control/faults                 -> the rules, with "hits" and "remaining"
  POST /_control/fault   RULE or [RULES] -> {"ids": [...]}   (also /_control/faults)
  POST /_control/clear_faults           -> remove all rules
  POST /_control/reset_counts           -> zero counts and the request log
  POST /_control/reset                  -> both of the above

A RULE is {"path": REGEX, "fault": TYPE, ...params}. Optional on every rule:
  "path"    Python regex, re.search'ed on the decoded path (default: match everything)
  "method"  only this method (e.g. "GET")
  "times"   apply to the first N matching requests only, then the rule is spent
  "headers" {name: value} extra response headers
Every active matching rule applies (each uses one of its "times"); the first terminal one
(status, retry_after, redirect, drop) decides the response. TYPES and their params:
  "status"       {"status": 503, "body": "..."}        answer with that status instead
  "retry_after"  {"seconds": 2, "status": 429}         429 + Retry-After: N
  "redirect"     {"location": URL, "status": 302}      Location may be absolute or relative;
                 {"loop": true}                        Location = the request's own URL (a loop)
  "drop"         {}                                    close the connection without answering
  "delay"        {"seconds": 1.5}                      sleep before sending the headers
  "stall"        {"bytes": N, "seconds": S}            send N body bytes (default 0), sleep S,
                                                       then send the rest
  "slow"         {"bps": 1000}                         throttle the body to N bytes/second
  "reset"        {"bytes": N}                          send N body bytes (default: half), then
                                                       abort with a TCP RST (SO_LINGER 0)
  "truncate"     {"bytes": N}                          full Content-Length, send N bytes (default:
                                                       half), then close cleanly (FIN)
  "wrong_bytes"  {"offset": O, "count": C}             XOR 0xFF into C bytes (default 1) at file
                                                       offset O; without offset the first body
                                                       byte of every response is flipped
  "ignore_range" {}                                    answer 200 with the full body despite Range
  "no_length"    {}                                    no Content-Length: the body ends when the
                                                       connection closes (a length nobody announced)
"""

import argparse
import email.utils
import html
import json
import mimetypes
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 256 * 1024
TERMINAL = ("status", "retry_after", "redirect", "drop")
KNOWN = TERMINAL + ("delay", "stall", "slow", "reset", "truncate", "wrong_bytes", "ignore_range",
                    "no_length")

mimetypes.add_type("text/yaml", ".yaml")
mimetypes.add_type("text/yaml", ".yml")
mimetypes.add_type("application/java-archive", ".jar")
mimetypes.add_type("text/xml", ".pom")
mimetypes.add_type("application/gzip", ".tgz")


class State:
    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.lock = threading.Lock()
        self.counts = {}
        self.requests = []
        self.rules = []
        self.next_id = 1

    def count(self, method, path, info):
        with self.lock:
            key = "%s %s" % (method, path)
            self.counts[key] = self.counts.get(key, 0) + 1
            if len(self.requests) < 100000:
                self.requests.append(info)

    def add_rule(self, rule):
        if not isinstance(rule, dict):
            raise ValueError("a rule must be a JSON object")
        fault = rule.get("fault")
        if fault not in KNOWN:
            raise ValueError("unknown fault %r (known: %s)" % (fault, ", ".join(KNOWN)))
        r = dict(rule)
        r["_rx"] = re.compile(rule.get("path", ""))
        if "times" in r and r["times"] is not None:
            r["remaining"] = int(r["times"])
        else:
            r["remaining"] = None
        r["hits"] = 0
        with self.lock:
            r["id"] = self.next_id
            self.next_id += 1
            self.rules.append(r)
        return r["id"]

    def match(self, method, path):
        """Active rules matching this request; consumes one use of each."""
        out = []
        with self.lock:
            for r in self.rules:
                if r.get("method") and r["method"] != method:
                    continue
                if not r["_rx"].search(path):
                    continue
                if r["remaining"] is not None:
                    if r["remaining"] <= 0:
                        continue
                    r["remaining"] -= 1
                r["hits"] += 1
                out.append(r)
        return out

    def rules_json(self):
        with self.lock:
            return [{k: v for k, v in r.items() if k != "_rx"} for r in self.rules]


class Plan:
    """What the matching fault rules do to one response."""

    def __init__(self, rules):
        self.terminal = None
        self.delay = 0.0
        self.stall = None          # (after_bytes, seconds)
        self.bps = None
        self.cut = None            # ("reset"|"truncate", bytes or None)
        self.flip = []             # [(offset or None, count)]
        self.ignore_range = False
        self.no_length = False
        self.headers = {}
        for r in rules:
            f = r["fault"]
            self.headers.update(r.get("headers") or {})
            if f in TERMINAL:
                if self.terminal is None:
                    self.terminal = r
            elif f == "delay":
                self.delay += float(r.get("seconds", 1))
            elif f == "stall":
                self.stall = (int(r.get("bytes", 0)), float(r.get("seconds", 5)))
            elif f == "slow":
                self.bps = max(1, int(r.get("bps", 1024)))
            elif f in ("reset", "truncate"):
                if self.cut is None:
                    self.cut = (f, r.get("bytes"))
            elif f == "no_length":
                self.no_length = True
            elif f == "wrong_bytes":
                self.flip.append((r.get("offset"), int(r.get("count", 1))))
            elif f == "ignore_range":
                self.ignore_range = True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upstream.py"
    sys_version = ""
    timeout = 120  # idle keep-alive connections and stuck writes

    # ---- plumbing ------------------------------------------------------------------------------
    def version_string(self):
        return self.server_version

    @property
    def state(self):
        return self.server.state

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, BrokenPipeError, socket.timeout, TimeoutError, OSError):
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def send_json(self, obj, status=200):
        body = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_small(self, status, body=b"", ctype="text/plain; charset=utf-8", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if status not in (204, 304):
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def abort_rst(self):
        """Abort the connection with a TCP RST."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    # ---- dispatch ------------------------------------------------------------------------------
    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_OPTIONS(self):
        self.dispatch()

    def dispatch(self):
        target = self.path
        raw_path = target.split("?", 1)[0]
        if "://" in raw_path[:10]:  # absolute-form request target
            raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
        path = urllib.parse.unquote(raw_path, errors="surrogateescape")
        if path.startswith("/_control/"):
            return self.control(path, target)
        # drain a request body so keep-alive stays in sync
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0:
            self.rfile.read(n)
        self.state.count(self.command, path, {
            "method": self.command,
            "path": path,
            "target": target,
            "range": self.headers.get("Range"),
            "headers": {k: v for k, v in self.headers.items()},
            "time": time.time(),
        })
        plan = Plan(self.state.match(self.command, path))
        if plan.delay > 0:
            time.sleep(plan.delay)
        if plan.terminal is not None:
            return self.terminal(plan, target, path)
        if self.command not in ("GET", "HEAD"):
            return self.send_small(405, "method not allowed\n", headers={"Allow": "GET, HEAD"})
        return self.serve(path, plan)

    def terminal(self, plan, target, path):
        r = plan.terminal
        f = r["fault"]
        hdrs = dict(plan.headers)
        if f == "drop":
            return self.abort_rst()
        if f == "status":
            status = int(r.get("status", 503))
            body = r.get("body", "%d injected by upstream.py\n" % status)
            return self.send_small(status, body, headers=hdrs)
        if f == "retry_after":
            hdrs["Retry-After"] = str(r.get("seconds", 1))
            status = int(r.get("status", 429))
            return self.send_small(status, r.get("body", "slow down\n"), headers=hdrs)
        if f == "redirect":
            if r.get("loop"):
                loc = target
            else:
                loc = r.get("location") or target
            hdrs["Location"] = loc
            return self.send_small(int(r.get("status", 302)), "redirect to %s\n" % loc, headers=hdrs)
        raise AssertionError(f)

    # ---- static files --------------------------------------------------------------------------
    def resolve(self, path):
        """Map a decoded URL path to a file system path inside root, or None."""
        if "\x00" in path:
            return None, 400
        parts = []
        for seg in path.split("/"):
            if seg in ("", "."):
                continue
            if seg == "..":
                return None, 404
            parts.append(seg)
        fs = os.path.join(self.state.root, *parts)
        real = os.path.realpath(fs)
        if real != self.state.root and not real.startswith(self.state.root + os.sep):
            return None, 404
        return real, 200

    def serve(self, path, plan):
        fs, st = self.resolve(path)
        hdrs = dict(plan.headers)
        if fs is None:
            return self.send_small(st, "%d\n" % st, headers=hdrs)
        if os.path.isdir(fs):
            if not path.endswith("/"):
                q = self.path.split("?", 1)
                loc = q[0] + "/" + ("?" + q[1] if len(q) > 1 else "")
                hdrs["Location"] = loc
                return self.send_small(301, "moved to %s\n" % loc, ctype="text/html", headers=hdrs)
            idx = os.path.join(fs, "index.html")
            if not os.path.isfile(idx):
                idx = os.path.join(fs, "index.json")  # a JSON page (PyPI's PEP 691 API)
            if os.path.isfile(idx):
                fs = idx
            else:
                return self.send_small(200, self.autoindex(path, fs), ctype="text/html", headers=hdrs)
        try:
            f = open(fs, "rb")
        except OSError:
            return self.send_small(404, "404\n", headers=hdrs)
        with f:
            stt = os.fstat(f.fileno())
            size = stt.st_size
            mtime = int(stt.st_mtime)
            etag = '"%x-%x"' % (mtime, size)
            lastmod = email.utils.formatdate(mtime, usegmt=True)
            base = {"ETag": etag, "Last-Modified": lastmod, "Accept-Ranges": "bytes"}
            base.update(hdrs)

            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            if inm is not None:
                tags = [t.strip() for t in inm.split(",")]
                if "*" in tags or etag in tags or ("W/" + etag) in tags:
                    return self.send_small(304, headers=base)
            elif ims is not None:
                try:
                    t = email.utils.parsedate_to_datetime(ims).timestamp()
                    if mtime <= t:
                        return self.send_small(304, headers=base)
                except (TypeError, ValueError, IndexError, OverflowError):
                    pass

            start, end, status = 0, size - 1, 200
            rng = self.headers.get("Range")
            if rng is not None and not plan.ignore_range and self.if_range_ok(etag, mtime):
                parsed = parse_range(rng, size)
                if parsed == "unsatisfiable":
                    base["Content-Range"] = "bytes */%d" % size
                    return self.send_small(416, "range not satisfiable\n", headers=base)
                if parsed is not None:
                    start, end = parsed
                    status = 206
                    base["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
            length = end - start + 1 if size > 0 else 0

            self.send_response(status)
            ctype = mimetypes.guess_type(fs)[0] or "application/octet-stream"
            self.send_header("Content-Type", ctype)
            if plan.no_length:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(length))
            for k, v in base.items():
                self.send_header(k, str(v))
            self.end_headers()
            if self.command == "HEAD" or length == 0:
                return
            f.seek(start)
            self.send_body(f, start, length, plan)

    def if_range_ok(self, etag, mtime):
        ir = self.headers.get("If-Range")
        if ir is None:
            return True
        ir = ir.strip()
        if ir.startswith('"') or ir.startswith("W/"):
            return ir == etag
        try:
            return int(email.utils.parsedate_to_datetime(ir).timestamp()) == mtime
        except (TypeError, ValueError, IndexError, OverflowError):
            return False

    def send_body(self, f, start, length, plan):
        cut_at = None
        if plan.cut is not None:
            kind, nbytes = plan.cut
            cut_at = length // 2 if nbytes is None else min(int(nbytes), length)
        stall_at = plan.stall[0] if plan.stall else None
        limit = length if cut_at is None else cut_at
        chunk = CHUNK
        if plan.bps:
            chunk = max(1, min(CHUNK, plan.bps // 10))
        sent = 0
        t0 = time.monotonic()
        while True:
            # a body sent whole is never held: its client may reuse the connection at once
            if stall_at is not None and sent >= min(stall_at, limit) and sent < length:
                self.wfile.flush()
                time.sleep(plan.stall[1])
                stall_at = None
                if plan.bps:
                    t0 = time.monotonic() - sent / plan.bps
            if sent >= limit:
                break
            n = min(chunk, limit - sent)
            if stall_at is not None:
                n = min(n, stall_at - sent)
            data = f.read(n)
            if not data:
                break  # the file shrank under us
            if plan.flip:
                data = self.flip(data, start + sent, sent == 0, plan)
            self.wfile.write(data)
            sent += len(data)
            if plan.bps:
                ahead = sent / plan.bps - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        if cut_at is not None:
            kind = plan.cut[0]
            try:
                self.wfile.flush()
            except OSError:
                pass
            if kind == "reset":
                time.sleep(0.05)  # let the bytes already written leave before the RST
                self.abort_rst()
            else:
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.close_connection = True

    @staticmethod
    def flip(data, off, first, plan):
        b = bytearray(data)
        for o, c in plan.flip:
            if o is None:
                if first:
                    for i in range(min(c, len(b))):
                        b[i] ^= 0xFF
                continue
            for abs_off in range(int(o), int(o) + c):
                i = abs_off - off
                if 0 <= i < len(b):
                    b[i] ^= 0xFF
        return bytes(b)

    def autoindex(self, path, fs):
        try:
            names = sorted(os.listdir(fs))
        except OSError:
            names = []
        title = html.escape(path)
        lines = ['<html>\n<head><title>Index of %s</title></head>\n<body>\n' % title,
                 '<h1>Index of %s</h1><hr><pre><a href="../">../</a>\n' % title]
        for n in names:
            p = os.path.join(fs, n)
            try:
                st = os.stat(p)
            except OSError:
                continue
            isdir = os.path.isdir(p)
            disp = n + ("/" if isdir else "")
            href = urllib.parse.quote(n, safe="") + ("/" if isdir else "")
            date = time.strftime("%d-%b-%Y %H:%M", time.gmtime(st.st_mtime))
            size = "-" if isdir else str(st.st_size)
            lines.append('<a href="%s">%s</a>%s %s %19s\n'
                         % (href, html.escape(disp), " " * max(1, 51 - len(disp)), date, size))
        lines.append("</pre><hr></body>\n</html>\n")
        return "".join(lines)

    # ---- control API ---------------------------------------------------------------------------
    def control(self, path, target):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        cmd = path[len("/_control/"):].strip("/")
        query = urllib.parse.parse_qs(target.split("?", 1)[1] if "?" in target else "")
        st = self.state
        try:
            if self.command in ("GET", "HEAD"):
                if cmd == "health":
                    return self.send_json({"ok": True, "root": st.root})
                if cmd == "counts":
                    with st.lock:
                        return self.send_json(dict(st.counts))
                if cmd == "count":
                    method = query.get("method", ["*"])[0]
                    p = query.get("path", [""])[0]
                    with st.lock:
                        if method == "*":
                            v = sum(c for k, c in st.counts.items() if k.split(" ", 1)[1] == p)
                        else:
                            v = st.counts.get("%s %s" % (method, p), 0)
                    return self.send_small(200, "%d\n" % v)
                if cmd == "requests":
                    with st.lock:
                        return self.send_json(list(st.requests))
                if cmd == "faults":
                    return self.send_json(st.rules_json())
            elif self.command == "POST":
                if cmd in ("fault", "faults"):
                    body = json.loads(raw.decode() or "null")
                    rules = body if isinstance(body, list) else [body]
                    ids = [st.add_rule(r) for r in rules]
                    return self.send_json({"ids": ids})
                if cmd in ("clear_faults", "reset", "reset_counts"):
                    with st.lock:
                        if cmd in ("clear_faults", "reset"):
                            st.rules = []
                        if cmd in ("reset_counts", "reset"):
                            st.counts = {}
                            st.requests = []
                    return self.send_json({"ok": True})
            return self.send_json({"error": "unknown control request %s %s" % (self.command, path)}, 404)
        except (ValueError, re.error, TypeError) as e:
            return self.send_json({"error": str(e)}, 400)


def parse_range(header, size):
    """(start, end) for one satisfiable range, 'unsatisfiable', or None (ignore the header)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m:
        return None  # multiple ranges or bad syntax: serve the whole file
    a, b = m.group(1), m.group(2)
    if a == "" and b == "":
        return None
    if a == "":
        n = int(b)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(a)
    end = int(b) if b != "" else size - 1
    if b != "" and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if not os.path.isdir(args.root):
        ap.error("--root %s is not a directory" % args.root)

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args.root)
    srv.quiet = args.quiet
    port = srv.server_address[1]

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
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
