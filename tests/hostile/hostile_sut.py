"""A hostile SUT: a MIMI server (TLS) and a control API (plain HTTP) that misbehave on purpose.

Each side runs one *mode* (``MIMI_MODES``, ``CONTROL_MODES``). The control API's ``GET /v1/info``
answers correctly unless ``info_mode`` says otherwise, so a run can start and then meet the
misbehaviour in the checks; ``info_mode`` set to a misbehaviour breaks the run at startup.

Raw sockets and one thread per connection, so the server can do what no HTTP framework would:
stall a handshake, trickle a status line, reset mid-body, speak garbage. In-process use::

    sut = HostileSut(mimi="silent", control="silent", tls=TlsFiles(...)).start()
    ... sut.mimi_port, sut.control_port ...
    sut.stop()

As a script it is the SUT of the command connector (runs until killed)::

    python hostile_sut.py --mimi-port N --control-port M --cert C --key K [--mimi MODE] [--control MODE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import ssl
import struct
import sys
import threading
from pathlib import Path

DOMAIN = "sut.example"
MIB = 1024 * 1024

# What the MIMI side (port for sut.example) does with each connection.
MIMI_MODES = {
    "good": "serves a valid directory",
    "refuse": "nothing listens on the port",
    "stall-handshake": "accepts TCP, never says a word (TLS handshake never completes)",
    "plaintext": "answers in cleartext HTTP instead of TLS",
    "untrusted-cert": "presents a certificate from a CA nobody trusts",
    "wrong-name": "presents a CA-signed certificate for another name",
    "reject-client-cert": "demands a client certificate from another CA (rejects the suite's)",
    "silent": "completes TLS, reads the request, never answers",
    "trickle": "sends the status line and headers one byte every 0.3 s",
    "trickle-body": "sends headers, then the body one byte every 0.3 s",
    "endless-body": "chunked body that never ends",
    "endless-headers": "header lines that never end",
    "huge-declared": "a 10 MiB body with Content-Length",
    "huge-chunked": "a 10 MiB chunked body (no Content-Length)",
    "garbage": "random bytes instead of HTTP",
    "500": "HTTP 500 with an HTML body",
    "redirect": "302 to itself (a redirect loop)",
    "reset": "declares 100000 bytes, sends 1000, then a TCP reset",
    "close-mid-body": "declares 100000 bytes, sends 1000, then closes",
    "404": "no directory (404)",
    "not-json": "200 with a directory that is not JSON",
    "crash": "the whole process exits (code 7) when the first MIMI connection arrives",
}

# What the control API does with operations (and with getInfo too, via ``info_mode``).
CONTROL_MODES = {
    "good": "a minimal, correct control API",
    "down": "nothing listens on the port",
    "silent": "reads the request, never answers",
    "trickle": "sends the status line and headers one byte every 0.3 s",
    "trickle-body": "sends headers, then the body one byte every 0.3 s",
    "endless-body": "chunked body that never ends",
    "huge-declared": "a 10 MiB body with Content-Length",
    "huge-chunked": "a 10 MiB chunked body (no Content-Length)",
    "garbage": "random bytes instead of HTTP",
    "not-json": "200 with a body that is not JSON",
    "wrong-shape": "200 with JSON of the wrong shape",
    "500": "HTTP 500 with an HTML body",
    "redirect": "302 to itself",
    "reset": "declares 100000 bytes, sends 1000, then a TCP reset",
    "close-mid-body": "declares 100000 bytes, sends 1000, then closes",
    "endless-headers": "header lines that never end",
    "501": "501 not implemented (a problem document)",
}

# Every operation requiredFor hub and follower (or the suite refuses the SUT before any check); the
# two checks call only the first four.
OPERATIONS = ["getInfo", "createUser", "createRoom", "getRoom", "addParticipant", "sendMessage", "listReceivedMessages"]
GARBAGE = bytes(range(256)) * 4  # no CR LF pair at the start: not a status line


def directory_document(port: int) -> dict[str, str]:
    base = f"https://{DOMAIN}:{port}/v1"
    variable = {"keyMaterial": "targetUser", "requestConsent": "targetDomain", "updateConsent": "requesterDomain",
                "identifierQuery": "domain", "proxyDownload": "downloadUrl"}
    names = ["keyMaterial", "update", "notify", "submitMessage", "groupInfo", "requestConsent", "updateConsent",
             "identifierQuery", "reportAbuse", "proxyDownload"]
    return {name: f"{base}/{name}/{{{variable.get(name, 'roomId')}}}" for name in names}


def info_document() -> dict:
    return {"contractVersion": "1.0.0", "providerDomains": [DOMAIN], "roles": ["hub", "follower"],
            "supportedOperations": OPERATIONS}


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """Certificates for the MIMI side: the good one, and the deliberately wrong ones."""

    cert: Path
    key: Path
    untrusted_cert: Path | None = None  # from a CA the suite is not told about
    untrusted_key: Path | None = None
    wrong_name_cert: Path | None = None  # CA-signed, for another name
    wrong_name_key: Path | None = None
    other_ca: Path | None = None  # a CA the server demands client certificates from (not the suite's)


def make_tls_files(directory: Path) -> tuple[Path, TlsFiles]:
    """(the CA to declare in the manifest, every certificate the modes need)."""
    from reference_peer.pki import CertificateAuthority, make_unknown_ca_cert, write_test_pki

    ca, files = write_test_pki(directory, [DOMAIN])
    untrusted = make_unknown_ca_cert(DOMAIN).write(directory, "untrusted")
    wrong = ca.issue_wrong_name(DOMAIN, "other.example").write(directory, "wrong-name")
    other_ca, _ = CertificateAuthority.create("some other CA").write(directory, "other-ca")
    return files.ca_cert, TlsFiles(files[DOMAIN].cert, files[DOMAIN].key, *untrusted, *wrong, other_ca)


# --------------------------------------------------------------------------------------------


class _Stopped(Exception):
    pass


class HostileSut:
    def __init__(
        self, *, mimi: str = "good", control: str = "good", info_mode: str = "good", tls: TlsFiles,
        mimi_port: int = 0, control_port: int = 0,
    ) -> None:
        if mimi not in MIMI_MODES or control not in CONTROL_MODES or info_mode not in CONTROL_MODES:
            raise ValueError(f"unknown mode: mimi={mimi!r} control={control!r} info={info_mode!r}")
        self.mimi_mode, self.control_mode, self.info_mode = mimi, control, info_mode
        self.tls = tls
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._reserved: list[socket.socket] = []
        self._mimi_listener, self.mimi_port = self._listen(mimi_port, serve=mimi != "refuse")
        self._control_listener, self.control_port = self._listen(control_port, serve=control != "down")

    # --- lifecycle ------------------------------------------------------------------------------

    def _listen(self, port: int, *, serve: bool) -> tuple[socket.socket | None, int]:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        if not serve:
            # Keep the port bound but not listening: connecting to it is refused, and no other
            # process of a parallel run can take it meanwhile.
            self._reserved.append(sock)
            return None, sock.getsockname()[1]
        sock.listen(64)
        sock.settimeout(0.1)
        return sock, sock.getsockname()[1]

    def start(self) -> HostileSut:
        for listener, handler in ((self._mimi_listener, self._mimi), (self._control_listener, self._control)):
            if listener is not None:
                self._spawn(self._accept_loop, listener, handler)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            sockets = list(self._sockets) + [s for s in (self._mimi_listener, self._control_listener) if s]
        for sock in sockets + self._reserved:
            _close_quietly(sock)
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> HostileSut:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket, handler) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._sockets.add(conn)
            self._spawn(self._guarded, handler, conn)

    def _guarded(self, handler, conn: socket.socket) -> None:
        try:
            handler(conn)
        except (OSError, ssl.SSLError, _Stopped, ValueError):
            pass  # the client gave up or we were stopped: both are expected here
        finally:
            with self._lock:
                self._sockets.discard(conn)
            _close_quietly(conn)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    # --- MIMI side ------------------------------------------------------------------------------

    def _mimi_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert, key = self.tls.cert, self.tls.key
        if self.mimi_mode == "untrusted-cert":
            cert, key = self.tls.untrusted_cert, self.tls.untrusted_key
        elif self.mimi_mode == "wrong-name":
            cert, key = self.tls.wrong_name_cert, self.tls.wrong_name_key
        ctx.load_cert_chain(str(cert), str(key))
        if self.mimi_mode == "reject-client-cert":
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(str(self.tls.other_ca))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _mimi(self, conn: socket.socket) -> None:
        mode = self.mimi_mode
        if mode == "crash":
            print("hostile SUT: crashing on purpose", file=sys.stderr, flush=True)
            os._exit(7)
        if mode == "stall-handshake":
            self._hold(conn)
            return
        conn.settimeout(10)
        if mode == "plaintext":
            conn.recv(65536)  # the client's TLS ClientHello, answered in cleartext HTTP
            _send_response(conn, 400, b"<html>this is plain HTTP</html>", "text/html")
            return
        tls = self._mimi_context().wrap_socket(conn, server_side=True)
        with self._lock:
            self._sockets.add(tls)
        try:
            head = _read_head(tls)
            _read_exactly(tls, head, _content_length(head))  # unread bytes would make close() a reset
            if mode == "good":
                if head.startswith(b"GET /.well-known/mimi-protocol-directory "):
                    body = json.dumps(directory_document(self.mimi_port)).encode()
                    _send_response(tls, 200, body, "application/json")
                else:
                    _send_response(tls, 404, b"not found", "text/plain")
            elif mode == "404":
                _send_response(tls, 404, b"not found", "text/plain")
            elif mode == "not-json":
                _send_response(tls, 200, b"<html>directory? what directory?</html>", "application/json")
            else:
                self._misbehave(tls, mode, head)
        finally:
            with self._lock:
                self._sockets.discard(tls)

    # --- control side ---------------------------------------------------------------------------

    def _control(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        head = _read_head(conn)
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, target = request_line.split(" ")[:2]
        path = target.split("?", 1)[0]
        length = _content_length(head)
        body = _read_exactly(conn, head, length)
        mode = self.info_mode if path == "/v1/info" else self.control_mode
        if mode == "good":
            status, document = self._good_control(method, path, body)
            _send_response(conn, status, json.dumps(document).encode(), "application/json")
        elif mode == "not-json":
            _send_response(conn, 200, b"OK, sure thing!", "text/plain")
        elif mode == "wrong-shape":
            _send_response(conn, 200, json.dumps(["this", "is", "not", "a", "user"]).encode(), "application/json")
        elif mode == "501":
            problem = {"type": "https://mimi-conformance.invalid/problems/not-implemented", "title": "no", "status": 501}
            _send_response(conn, 501, json.dumps(problem).encode(), "application/problem+json")
        else:
            self._misbehave(conn, mode, head)

    def _good_control(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        request = json.loads(body) if body else {}
        if path == "/v1/info":
            return 200, info_document()
        if method == "POST" and path == "/v1/users":
            name = request["user"]
            clients = [f"mimi://{DOMAIN}/d/{name}/c{i}" for i in range(request.get("clients", 1))]
            return 201, {"user": f"mimi://{DOMAIN}/u/{name}", "clients": clients}
        if method == "POST" and path == "/v1/rooms":
            return 201, self._room(f"mimi://{DOMAIN}/r/{request['room']}", request["creator"])
        if method == "GET" and path.startswith("/v1/rooms/"):
            from urllib.parse import unquote

            return 200, self._room(unquote(path.removeprefix("/v1/rooms/")), f"mimi://{DOMAIN}/u/someone")
        return 404, {"type": "https://mimi-conformance.invalid/problems/not-found", "title": "not found",
                     "status": 404}

    @staticmethod
    def _room(room: str, creator: str) -> dict:
        return {"room": room, "hubDomain": DOMAIN, "hostedHere": True, "epoch": 0,
                "participants": [{"user": creator, "role": 3, "clients": []}], "externalSenders": [DOMAIN],
                "policy": {}}

    # --- shared misbehaviours -------------------------------------------------------------------

    def _hold(self, conn: socket.socket) -> None:
        """Keep the connection open and silent until the client gives up or we stop."""
        conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if conn.recv(65536) == b"":
                    return
            except TimeoutError:
                continue

    def _misbehave(self, conn: socket.socket, mode: str, head: bytes) -> None:
        if mode == "silent":
            self._hold(conn)
        elif mode == "trickle":
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}":
                conn.sendall(bytes([byte]))
                self._sleep(0.3)
        elif mode == "trickle-body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(100000):
                conn.sendall(b" ")
                self._sleep(0.3)
        elif mode == "endless-body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
            while not self._stop.is_set():
                conn.sendall(chunk)
        elif mode == "endless-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            number = 0
            while not self._stop.is_set():
                number += 1
                conn.sendall(b"X-Padding-%d: %s\r\n" % (number, b"x" * 1000))
        elif mode == "huge-declared":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (10 * MIB))
            _send_blob(conn, 10 * MIB)
        elif mode == "huge-chunked":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(10 * 16):
                conn.sendall(b"%x\r\n%s\r\n" % (65536, b" " * 65536))
            conn.sendall(b"0\r\n\r\n")
        elif mode == "garbage":
            conn.sendall(GARBAGE)
        elif mode == "500":
            _send_response(conn, 500, b"<html><h1>Internal Server Error</h1></html>", "text/html")
        elif mode == "redirect":
            target = head.split(b"\r\n", 1)[0].split(b" ")[1]
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % target)
        elif mode in ("reset", "close-mid-body"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            conn.sendall(b" " * 1000)
            self._sleep(0.2)  # let the bytes reach the client before the reset discards them
            if mode == "reset":
                # SO_LINGER 0: close() sends a TCP RST at once (and no TLS close_notify).
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        else:  # pragma: no cover - the constructor refuses unknown modes
            raise ValueError(mode)


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _read_head(conn: socket.socket, limit: int = 65536) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ValueError("client closed before a complete request head")
        data += chunk
        if len(data) > limit:
            raise ValueError("request head too large")
    return data


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _read_exactly(conn: socket.socket, head: bytes, length: int) -> bytes:
    body = head.split(b"\r\n\r\n", 1)[1]
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return body[:length]


def _send_response(conn: socket.socket, status: int, body: bytes, content_type: str) -> None:
    reason = {200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error",
              501: "Not Implemented"}.get(status, "Whatever")
    conn.sendall(
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (status, reason.encode(), content_type.encode(), len(body)) + body
    )


def _send_blob(conn: socket.socket, size: int) -> None:
    block = b" " * 65536
    while size > 0:
        conn.sendall(block[: min(size, len(block))])
        size -= len(block)


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mimi-port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--mimi", choices=sorted(MIMI_MODES), default="good")
    parser.add_argument("--control", choices=sorted(CONTROL_MODES), default="good")
    parser.add_argument("--info", choices=sorted(CONTROL_MODES), default="good")
    args = parser.parse_args(argv)
    sut = HostileSut(mimi=args.mimi, control=args.control, info_mode=args.info,
                     tls=TlsFiles(args.cert, args.key), mimi_port=args.mimi_port, control_port=args.control_port)
    sut.start()
    print(f"hostile SUT: MIMI {args.mimi} on {sut.mimi_port}, control {args.control} on {sut.control_port}",
          flush=True)
    threading.Event().wait()  # until killed: the command connector ends the process group
    return 0

if __name__ == "__main__":
    sys.exit(main())
