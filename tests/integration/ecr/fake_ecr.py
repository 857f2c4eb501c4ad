#!/usr/bin/python3
"""fake_ecr: a loopback stand-in for the ECR and ECR Public APIs and IMDSv2.

Contract (AWS GetAuthorizationToken, SigV4, ECR Public; include/upstreamfs/ecr_auth.h):
  * Listens on 127.0.0.1 only. With --port 0 the kernel picks the port; the
    port is always the first line of stdout, so a test can read it and go.
  * POST with X-Amz-Target answers, as AWS JSON 1.1:
      AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken (service ecr)
      SpencerFrontendService.GetAuthorizationToken (service ecr-public)
      SpencerFrontendService.DescribeRegistries (service ecr-public)
    Each request's SigV4 signature is VERIFIED: the canonical request is
    recomputed from what arrived, with --secret, and compared. A bad one
    gets 403 {"__type": "InvalidSignatureException", ...}; an unknown access
    key 403 UnrecognizedClientException; a request time off by more than
    --max-skew seconds 403 InvalidSignatureException (Signature expired).
    With --session-token, requests must carry that X-Amz-Security-Token,
    signed; without it, a request carrying one is refused.
  * The token is base64("AWS:" + --password), expiresAt is now + --ttl
    (a float, so tests can force refreshes), and the private answer's
    proxyEndpoint is --proxy-endpoint (default: this server).
  * GET /_counts returns the request counts as JSON; GET
    /_set?fail=STATUS&ttl=S changes behaviour at run time (fail=0 heals).
  * --imds adds IMDSv2: PUT /latest/api/token (needs
    X-aws-ec2-metadata-token-ttl-seconds), then, with the token in
    X-aws-ec2-metadata-token, GET /latest/meta-data/iam/security-credentials/
    and .../<role>, which hands out --access-key, --secret and
    --session-token. IMDSv1 (no token) gets 401.
  * It exits when its parent dies, so a crashed test leaves nothing behind.
  * --selftest checks this file's own signer against the AWS SigV4 suite
    vectors of tests/unit/test_sigv4.c and exits.
Python standard library only; run with /usr/bin/python3.
"""

import argparse
import base64
import calendar
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JSON_CT = "application/x-amz-json-1.1"
PRIVATE_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
PUBLIC_PREFIX = "SpencerFrontendService."
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,"
    r" SignedHeaders=([a-z0-9;._-]+), Signature=([0-9a-f]{64})$"
)
SIG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)


# ---- SigV4, written from the AWS documentation (independent of the C code) ----


def _enc(s):
    return urllib.parse.quote(s, safe="-_.~")


def canonical_uri(path):
    segs = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segs:
                segs.pop()
            continue
        segs.append(seg)
    last = path.rsplit("/", 1)[-1]
    trailing = path.endswith("/") or last in (".", "..")
    out = "/" + "/".join(_enc(s) for s in segs)
    if segs and trailing:
        out += "/"
    return out


def canonical_query(query):
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = urllib.parse.unquote(name, errors="surrogateescape")
        value = urllib.parse.unquote(value, errors="surrogateescape")
        pairs.append((_enc(name), _enc(value)))
    pairs.sort()
    return "&".join("%s=%s" % p for p in pairs)


def canonical_value(v):
    """Trimmed, inner runs of blanks collapsed to one space."""
    return " ".join(v.split())


def canonical_request(method, path, query, headers, signed, payload):
    """headers: list of (name, value) as received; signed: lower-case names."""
    lines = []
    for name in signed:
        vals = [canonical_value(v) for (n, v) in headers if n.lower() == name]
        lines.append("%s:%s\n" % (name, ",".join(vals)))
    return "\n".join(
        [
            method,
            canonical_uri(path),
            canonical_query(query),
            "".join(lines),
            ";".join(signed),
            hashlib.sha256(payload).hexdigest(),
        ]
    )


def signature(secret, amz_date, region, service, creq):
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    sts = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()]
    )
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


def selftest():
    """The SigV4 suite vectors (as in tests/unit/test_sigv4.c), signed by this file's signer."""
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    date = "20150830T123600Z"
    host = ("host", "example.amazonaws.com")
    xdate = ("x-amz-date", date)
    token = (
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
    )
    cases = [
        ("GET", "/", "", [host, xdate], b"",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("GET", "/", "Param2=value2&Param1=value1", [host, xdate], b"",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("GET", "/", "", [host, ("My-Header1", " value1"), ("My-Header2", ' "a   b   c"'), xdate],
         b"", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        ("POST", "/", "", [host, xdate], b"",
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("POST", "/", "", [("Content-Type", "application/x-www-form-urlencoded"), host, xdate],
         b"Param1=value1", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
        ("POST", "/", "", [host, xdate, ("X-Amz-Security-Token", token)], b"",
         "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    ]
    bad = 0
    for method, path, query, headers, body, want in cases:
        signed = sorted({n.lower() for n, _ in headers})
        creq = canonical_request(method, path, query, headers, signed, body)
        got = signature(secret, date, "us-east-1", "service", creq)
        if got != want:
            bad += 1
            print("MISMATCH %s %s?%s: %s" % (method, path, query, got))
    ecr = [
        ("ecr", "us-east-1", "20261127T060750Z", PRIVATE_PREFIX + "GetAuthorizationToken", None,
         "1198e22e18507deabaa09cfceccb63311bbc6733fbf3971c3b800579e61fd1ad"),
        ("ecr", "eu-west-1", "20261127T060751Z", PRIVATE_PREFIX + "GetAuthorizationToken", None,
         "589b8d14116079c734b832dbd58ff0701f4530726201f2e7a49b092d85305f25"),
        ("ecr-public", "us-east-1", "20261127T060752Z", PUBLIC_PREFIX + "GetAuthorizationToken",
         "FAKESESSIONTOKEN", "d8e5673729023b892b1f02d03f8bf3d0fb1f5e9184aa995eff95617c0adcec71"),
    ]
    for service, region, d, target, tok, want in ecr:
        headers = [("content-type", JSON_CT), ("host", "127.0.0.1:18080"), ("x-amz-date", d),
                   ("x-amz-target", target)]
        if tok:
            headers.append(("x-amz-security-token", tok))
        signed = sorted(n for n, _ in headers)
        creq = canonical_request("POST", "/", "", headers, signed, b"{}")
        got = signature(secret, d, region, service, creq)
        if got != want:
            bad += 1
            print("MISMATCH %s %s: %s" % (service, region, got))
    print("selftest: %d mismatches" % bad)
    return 1 if bad else 0


# ---- the server ----


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.counts = {}
        self.fail = 0
        self.ttl = args.ttl
        self.imds_tokens = set()

    def count(self, name):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.counts["total"] = self.counts.get("total", 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake_ecr/1"

    def log_message(self, fmt, *a):  # quiet unless asked
        if self.server.state.args.verbose:
            sys.stderr.write("fake_ecr: " + (fmt % a) + "\n")

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > 1 << 20:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, ctype=JSON_CT):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", secrets.token_hex(8))
        self.end_headers()
        self.wfile.write(body)

    def _aws_error(self, status, typ, message):
        self.server.state.count("denied" if status in (401, 403) else "errors")
        self._send(status, {"__type": typ, "message": message})

    # -- IMDSv2 --

    def _imds_token_ok(self):
        return self.headers.get("X-aws-ec2-metadata-token") in self.server.state.imds_tokens

    def do_PUT(self):
        st = self.server.state
        self._body()
        if not st.args.imds or self.path != "/latest/api/token":
            return self._send(404, "not found", "text/plain")
        st.count("imds.token")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self._send(400, "bad ttl", "text/plain")
        tok = secrets.token_urlsafe(32)
        with st.lock:
            st.imds_tokens.add(tok)
        self._send(200, tok, "text/plain")

    def do_GET(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_counts":
            with st.lock:
                return self._send(200, dict(st.counts), "application/json")
        if url.path == "/_set":
            q = dict(urllib.parse.parse_qsl(url.query))
            with st.lock:
                if "fail" in q:
                    st.fail = int(q["fail"])
                if "ttl" in q:
                    st.ttl = float(q["ttl"])
            return self._send(200, {"ok": True}, "application/json")
        base = "/latest/meta-data/iam/security-credentials/"
        if st.args.imds and url.path.startswith(base):
            if not self._imds_token_ok():
                st.count("imds.unauthorized")
                return self._send(401, "", "text/plain")
            role = url.path[len(base):]
            if role == "":
                st.count("imds.role")
                return self._send(200, st.args.imds_role, "text/plain")
            if role != st.args.imds_role:
                return self._send(404, "not found", "text/plain")
            st.count("imds.credentials")
            exp = time.gmtime(time.time() + st.args.imds_ttl)
            doc = {
                "Code": "Success",
                "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "Type": "AWS-HMAC",
                "AccessKeyId": st.args.access_key,
                "SecretAccessKey": st.args.secret,
                "Token": st.args.session_token or "",
                "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", exp),
            }
            return self._send(200, doc, "text/plain")
        self._send(404, "not found", "text/plain")

    # -- the AWS JSON APIs --

    def _verify(self, service, body):
        """None if the signature is good, else (status, type, message)."""
        args = self.server.state.args
        auth = self.headers.get("Authorization")
        if not auth:
            return (403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        m = AUTH_RE.match(auth)
        if not m:
            return (400, "IncompleteSignatureException", "Authorization header is malformed")
        akid, date8, region, scope_service, signed_s, sig = m.groups()
        if akid != args.access_key:
            return (403, "UnrecognizedClientException",
                    "The security token included in the request is invalid.")
        if scope_service != service:
            return (403, "InvalidSignatureException",
                    "Credential should be scoped to correct service: '%s'." % service)
        amz_date = self.headers.get("X-Amz-Date", "")
        try:
            when = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return (400, "IncompleteSignatureException", "X-Amz-Date is malformed")
        if date8 != amz_date[:8]:
            return (403, "InvalidSignatureException", "Credential date does not match X-Amz-Date")
        if abs(time.time() - when) > args.max_skew:
            return (403, "InvalidSignatureException", "Signature expired: %s is now earlier "
                    "or later than the allowed window" % amz_date)
        signed = signed_s.split(";")
        if signed != sorted(set(signed)) or "host" not in signed or "x-amz-date" not in signed:
            return (403, "InvalidSignatureException", "SignedHeaders is not a sorted list "
                    "that includes host and x-amz-date")
        tok = self.headers.get("X-Amz-Security-Token")
        if tok is not None and "x-amz-security-token" not in signed:
            return (403, "InvalidSignatureException", "X-Amz-Security-Token must be signed")
        if (args.session_token or None) != tok:
            return (403, "UnrecognizedClientException",
                    "The security token included in the request is invalid.")
        url = urllib.parse.urlsplit(self.path)
        creq = canonical_request(self.command, url.path, url.query, list(self.headers.items()),
                                 signed, body)
        want = signature(args.secret, amz_date, region, service, creq)
        if not hmac.compare_digest(want, sig):
            return (403, "InvalidSignatureException", SIG_MISMATCH)
        return None

    def do_POST(self):
        st = self.server.state
        try:
            body = self._body()
        except ValueError:
            return self._send(413, {"__type": "SerializationException", "message": "too big"})
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith(PRIVATE_PREFIX):
            service, op = "ecr", target[len(PRIVATE_PREFIX):]
        elif target.startswith(PUBLIC_PREFIX):
            service, op = "ecr-public", target[len(PUBLIC_PREFIX):]
        else:
            return self._aws_error(400, "UnknownOperationException", "unknown target")
        st.count("%s.%s" % (service, op))
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != JSON_CT:
            return self._aws_error(400, "SerializationException", "wrong Content-Type")
        bad = self._verify(service, body)
        if bad:
            return self._aws_error(*bad)
        with st.lock:
            fail, ttl = st.fail, st.ttl
        if fail:
            return self._aws_error(fail, "ServerException", "injected failure")
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self._aws_error(400, "SerializationException", "body is not JSON")
        token = base64.b64encode(("AWS:" + st.args.password).encode()).decode()
        expires = time.time() + ttl
        if op == "GetAuthorizationToken" and service == "ecr":
            pe = st.args.proxy_endpoint or "http://127.0.0.1:%d" % self.server.server_port
            return self._send(200, {"authorizationData": [
                {"authorizationToken": token, "expiresAt": expires, "proxyEndpoint": pe}]})
        if op == "GetAuthorizationToken":
            return self._send(200, {"authorizationData": {
                "authorizationToken": token, "expiresAt": expires}})
        if op == "DescribeRegistries" and service == "ecr-public":
            return self._describe(req)
        return self._aws_error(400, "UnknownOperationException", "unknown operation " + op)

    def _describe(self, req):
        args = self.server.state.args
        ours = {
            "registryId": args.account,
            "registryArn": "arn:aws:ecr-public::%s:registry/%s" % (args.account, args.account),
            "verified": False,
            "aliases": [
                {"name": "zz-old", "status": "PENDING", "primaryRegistryAlias": False,
                 "defaultRegistryAlias": False},
                {"name": args.alias, "status": "ACTIVE", "primaryRegistryAlias": True,
                 "defaultRegistryAlias": True},
            ],
        }
        other = {"registryId": "999999999999", "verified": False,
                 "aliases": [{"name": "decoy", "status": "ACTIVE",
                              "primaryRegistryAlias": True, "defaultRegistryAlias": True}]}
        page = int(req.get("nextToken", "1")) if str(req.get("nextToken", "1")).isdigit() else 1
        if page < args.describe_pages:
            return self._send(200, {"registries": [other], "nextToken": str(page + 1)})
        return self._send(200, {"registries": [ours]})


def watch_parent(ppid):
    while True:
        if os.getppid() != ppid:
            os._exit(0)
        time.sleep(0.5)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--access-key", default="AKIDEXAMPLE")
    p.add_argument("--secret", default="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    p.add_argument("--session-token", default=None)
    p.add_argument("--password", default="fake-ecr-password")
    p.add_argument("--ttl", type=float, default=43200.0)
    p.add_argument("--proxy-endpoint", default=None)
    p.add_argument("--account", default="123456789012")
    p.add_argument("--alias", default="fakealias")
    p.add_argument("--describe-pages", type=int, default=1)
    p.add_argument("--max-skew", type=float, default=300.0)
    p.add_argument("--imds", action="store_true")
    p.add_argument("--imds-role", default="fake-role")
    p.add_argument("--imds-ttl", type=float, default=6 * 3600)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--selftest", action="store_true")
    args = p.parse_args()
    if args.selftest:
        return selftest()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    print(srv.server_port, flush=True)
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
