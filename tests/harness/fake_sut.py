"""A tiny fake SUT for the harness tests: a control API (plain HTTP) and, optionally, a MIMI
directory over TLS. Run as a script it is the "SUT" of the command connector:

    python fake_sut.py --control-port N [--mode healthy|never|exit] [--roles hub,follower]

``healthy`` serves GET /v1/info; ``never`` listens but answers every request 503 (never healthy);
``exit`` prints to stderr and exits 3 at once.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What the contract's requiredFor demands of a hub and a follower: a fake SUT claiming less is refused
# before any check runs (conformance/harness/sut_contract.py).
ROLE_OPERATIONS = ["getInfo", "createUser", "createRoom", "getRoom", "addParticipant", "sendMessage",
                   "listReceivedMessages"]


def info_document(domains: list[str], roles: list[str], operations: list[str]) -> dict:
    return {
        "contractVersion": "1.0.0",
        "providerDomains": domains,
        "roles": roles,
        "supportedOperations": operations,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            problem = {
                "type": "https://mimi-conformance.invalid/problems/not-found",
                "title": "not found",
                "status": 404,
            }
            self._send(404, json.dumps(problem).encode(), "application/problem+json")
            return
        status, body, content_type = route
        self._send(status, body, content_type)

    do_POST = do_GET  # noqa: N815


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, tuple[int, bytes, str]], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.routes = routes


class FakeServer:
    """A threaded HTTP(S) server answering fixed routes; ``stop()`` shuts it down."""

    def __init__(self, routes: dict[str, tuple[int, bytes, str]], *, tls: ssl.SSLContext | None = None) -> None:
        self.httpd = _FakeServer(routes)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def tls_server_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    context.verify_mode = ssl.CERT_NONE  # the fake does not judge who calls it
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--mode", choices=("healthy", "never", "exit"), default="healthy")
    parser.add_argument("--domain", default="sut.example")
    parser.add_argument("--roles", default="hub,follower")
    args = parser.parse_args(argv)
    if args.mode == "exit":
        print("fake SUT: refusing to start (mode exit)", file=sys.stderr, flush=True)
        return 3
    info = info_document([args.domain], args.roles.split(","), ROLE_OPERATIONS)
    status = 200 if args.mode == "healthy" else 503
    body = json.dumps(info if status == 200 else {"type": "about:blank", "title": "starting", "status": 503}).encode()
    content_type = "application/json" if status == 200 else "application/problem+json"
    httpd = _FakeServer({"/v1/info": (status, body, content_type)}, port=args.control_port)
    print(f"fake SUT listening on {args.control_port} ({args.mode})", flush=True)
    httpd.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
