#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for retirement-guard's end-to-end fault tests.

Usage: faultproxy.py --upstream URL --rules FILE [--port N] [--timeout-sleep S]
                     [--max-lifetime S]

Listens on 127.0.0.1 (port 0 picks a free one), prints {"port": N} as the first
line on stdout, then forwards every request to the upstream (a moto server)
unless a rule says to fail it. Standard library only.

The rules file is JSON, re-read on every request (a missing or empty file means
no faults), either a list of rules or {"rules": [...]}. A rule:

  {"action": "DescribeInstances",   form `Action=` (query protocol) or the
                                    X-Amz-Target suffix (JSON protocol); "*" = any
   "fault": "throttle" | "5xx" | "timeout" | "reset" | "denied" | "error" | "delay",
   "times": N,                      fail the first N matching requests, then pass
                                    them through; -1 = always (default 1)
   "status": 503,                   optional: HTTP status of "5xx"/"error"
   "code": "...", "message": "..."} optional: error code/message of "error"
   "seconds": S}                    "delay" only: seconds to wait (max 120)

Counters of "times" start again whenever the file's content changes, so a test
can arm the same rule again between two runs.

Faults, each in the shape the service's protocol uses (EC2 query, other query
services such as Auto Scaling and SNS, DynamoDB JSON 1.0):
  throttle  HTTP 400 RequestLimitExceeded (EC2) / Throttling / ThrottlingException
  5xx       HTTP 500 (or "status") InternalError / InternalFailure / InternalServerError
  timeout   no answer for --timeout-sleep seconds, then the connection is closed
  reset     the connection is reset (RST) without any answer
  denied    UnauthorizedOperation (EC2, 403) / AccessDenied (403) /
            AccessDeniedException (DynamoDB, 400)
  error     any "code" with "status" (default 400), e.g. InsufficientInstanceCapacity
  delay     the request is forwarded after "seconds" (a slow page); a client that gave
            up meanwhile gets nothing

GET /__faults/stats answers locally with the counts:
  {"requests": {action: n}, "faults": {action: {fault: n}}, "passed": n, "total": n}

Ends on SIGTERM/SIGINT, when its parent process goes away, or after
--max-lifetime seconds, whichever comes first.
"""

import argparse
import hashlib
import http.client
import http.server
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid

FAULTS = ("throttle", "5xx", "timeout", "reset", "denied", "error", "delay")
# DynamoDB's error type prefix; the SDKs read the part after '#' for every JSON service.
JSON_ERROR_NAMESPACE = "com.amazonaws.dynamodb.v20120810"
MAX_BODY = 16 * 1024 * 1024  # bytes of one request body
MAX_CHUNKS = 100_000  # chunks of one chunked request body
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


class ProxyError(Exception):
    pass


# ---------------------------------------------------------------- rules and counters


class Faults:
    """The rules (re-read per request) and every counter, behind one lock."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.digest = None
        self.used = {}  # rule index -> faults injected since the rules last changed
        self.requests = {}
        self.faults = {}
        self.passed = 0
        self.total = 0

    def _load(self):
        try:
            with open(self.path, "rb") as f:
                raw = f.read(1024 * 1024)
        except FileNotFoundError:
            raw = b""
        digest = hashlib.sha256(raw).hexdigest()
        if digest != self.digest:
            self.digest = digest
            self.used = {}
        if not raw.strip():
            return []
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise ProxyError(f"rules file {self.path} is not JSON: {e}") from e
        rules = doc.get("rules", []) if isinstance(doc, dict) else doc
        if not isinstance(rules, list):
            raise ProxyError(f"rules file {self.path}: expected a list of rules")
        for r in rules:
            if not isinstance(r, dict) or r.get("fault") not in FAULTS or not r.get("action"):
                raise ProxyError(f"bad rule {r!r}: needs action and fault in {FAULTS}")
        return rules

    def decide(self, action):
        """The rule to apply to this request (or None), counting the request."""
        with self.lock:
            self.total += 1
            self.requests[action] = self.requests.get(action, 0) + 1
            rules = self._load()
            for i, rule in enumerate(rules):
                if rule["action"] not in ("*", action):
                    continue
                times = int(rule.get("times", 1))
                used = self.used.get(i, 0)
                if times >= 0 and used >= times:
                    continue
                self.used[i] = used + 1
                per = self.faults.setdefault(action, {})
                per[rule["fault"]] = per.get(rule["fault"], 0) + 1
                return rule
            self.passed += 1
            return None

    def stats(self):
        with self.lock:
            return {
                "requests": dict(self.requests),
                "faults": {k: dict(v) for k, v in self.faults.items()},
                "passed": self.passed,
                "total": self.total,
            }


# ---------------------------------------------------------------- protocols


def request_shape(headers, body):
    """(protocol, action): protocol is "ec2", "query" or "json"."""
    target = headers.get("X-Amz-Target")
    if target:
        # DynamoDB_20120810.PutItem; other JSON services (e.g. AmazonSQS.SendMessage) alike
        return "json", target.rsplit(".", 1)[-1]
    form = {}
    ctype = headers.get("Content-Type", "")
    if body and ("x-www-form-urlencoded" in ctype or b"Action=" in body):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    action = (form.get("Action") or ["?"])[0]
    service = ""
    auth = headers.get("Authorization", "")
    if "Credential=" in auth:
        # Credential=KEY/DATE/REGION/SERVICE/aws4_request
        parts = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(parts) >= 5:
            service = parts[3]
    if service == "ec2" or (form.get("Version") or [""])[0] == "2016-11-15":
        return "ec2", action
    return "query", action


def xml_escape(text):
    return (
        str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def error_response(protocol, status, code, message, sender=True):
    """(status, headers, body) of an AWS error in the protocol's shape."""
    rid = str(uuid.uuid4())
    if protocol == "json":
        body = json.dumps({"__type": f"{JSON_ERROR_NAMESPACE}#{code}", "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": rid}
        return status, headers, body
    if protocol == "ec2":
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        )
    else:
        kind = "Sender" if sender else "Receiver"
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<Error><Type>{kind}</Type><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>"
        )
    return status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, text.encode()


def fault_response(protocol, rule):
    fault = rule["fault"]
    if fault == "throttle":
        code = {
            "ec2": "RequestLimitExceeded",
            "query": "Throttling",
            "json": "ThrottlingException",
        }[protocol]
        return error_response(protocol, 400, code, "Rate exceeded")
    if fault == "5xx":
        status = int(rule.get("status", 500))
        if status == 503:
            code = {"ec2": "Unavailable", "query": "ServiceUnavailable", "json": "ServiceUnavailable"}
        else:
            code = {"ec2": "InternalError", "query": "InternalFailure", "json": "InternalServerError"}
        message = "injected server error"
        return error_response(protocol, status, code[protocol], message, sender=False)
    if fault == "denied":
        if protocol == "ec2":
            return error_response(protocol, 403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
        if protocol == "json":
            return error_response(protocol, 400, "AccessDeniedException", "User is not authorized (injected)")
        return error_response(protocol, 403, "AccessDenied", "User is not authorized (injected)")
    if fault == "error":
        status = int(rule.get("status", 400))
        code = str(rule.get("code", "InjectedError"))
        message = str(rule.get("message", f"injected {code}"))
        return error_response(protocol, status, code, message, sender=status < 500)
    raise ProxyError(f"no response for fault {fault}")


# ---------------------------------------------------------------- the server


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK hold every answer about 40 ms.
    disable_nagle_algorithm = True
    server_version = "faultproxy"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.verbose:
            sys.stderr.write("faultproxy: " + (format % args) + "\n")

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if length is not None:
            n = int(length)
            if n < 0 or n > MAX_BODY:
                raise ProxyError(f"request body of {n} bytes")
            return self.rfile.read(n)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            for _ in range(MAX_CHUNKS):
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    for _ in range(100):  # trailers, up to the empty line
                        if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    raise ProxyError("chunked request body too large")
                out += self.rfile.read(size)
                self.rfile.readline(1024)
            raise ProxyError("too many chunks")
        return b""

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _reset(self):
        """Close the connection with an RST and no answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def _stall(self):
        """Answer nothing for --timeout-sleep seconds (less on shutdown), then close."""
        self.server.stopping.wait(self.server.timeout_sleep)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _forward(self, body):
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=self.server.upstream_timeout)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP}
            return resp.status, out, data
        finally:
            conn.close()

    def _handle(self):
        try:
            body = self._read_body()
        except (ProxyError, ValueError) as e:
            self.close_connection = True
            self._send(400, {"Content-Type": "text/plain"}, f"faultproxy: {e}\n".encode())
            return
        if self.path.split("?", 1)[0] == "/__faults/stats":
            data = json.dumps(self.server.faults.stats()).encode()
            self._send(200, {"Content-Type": "application/json"}, data)
            return
        protocol, action = request_shape(self.headers, body)
        try:
            rule = self.server.faults.decide(action)
        except ProxyError as e:
            self._send(500, {"Content-Type": "text/plain"}, f"faultproxy: {e}\n".encode())
            return
        if rule is not None:
            if self.server.verbose:
                sys.stderr.write(f"faultproxy: {rule['fault']} for {action}\n")
            if rule["fault"] == "reset":
                self._reset()
                return
            if rule["fault"] == "timeout":
                self._stall()
                return
            if rule["fault"] == "delay":
                self.server.stopping.wait(max(0.0, min(float(rule.get("seconds", 1.0)), 120.0)))
            else:
                self._send(*fault_response(protocol, rule))
                return
        try:
            status, headers, data = self._forward(body)
        except (OSError, http.client.HTTPException) as e:
            self.close_connection = True
            self._send(502, {"Content-Type": "text/plain"}, f"faultproxy: upstream failed: {e}\n".encode())
            return
        self._send(status, headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def watchdog(server, parent, lifetime):
    """Stops the server on a signal, when the parent is gone, or at the lifetime."""
    deadline = time.monotonic() + lifetime
    while not server.stopping.wait(0.5):
        if time.monotonic() >= deadline or os.getppid() != parent:
            break
    server.stopping.set()
    server.shutdown()


def build_parser():
    p = argparse.ArgumentParser(prog="faultproxy.py", description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5123")
    p.add_argument("--rules", required=True, help="JSON rules file, re-read per request")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    p.add_argument("--timeout-sleep", type=float, default=15.0, help="seconds a 'timeout' stalls (max 120)")
    p.add_argument("--upstream-timeout", type=float, default=30.0, help="seconds for the upstream's answer")
    p.add_argument("--max-lifetime", type=float, default=900.0, help="exit after this many seconds")
    p.add_argument("--verbose", action="store_true", help="log requests and faults to stderr")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.scheme != "http" or not upstream.hostname:
        print(f"faultproxy.py: --upstream must be an http:// URL, not {args.upstream!r}", file=sys.stderr)
        return 2
    server = Server(("127.0.0.1", args.port), Handler)
    server.upstream = upstream
    server.upstream_timeout = args.upstream_timeout
    server.timeout_sleep = max(0.0, min(args.timeout_sleep, 120.0))
    server.verbose = args.verbose
    server.faults = Faults(args.rules)
    server.stopping = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        server.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    dog = threading.Thread(
        target=watchdog, args=(server, os.getppid(), args.max_lifetime), daemon=True
    )
    dog.start()

    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.stopping.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
