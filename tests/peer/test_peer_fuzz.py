"""Bad input against the assembled reference peer (issue 4, item 6): every MIMI endpoint, and the
directory, is driven over real mutual TLS with hypothesis-generated bodies (random bytes, valid
encodings of the endpoint's request struct and mutations of them, and mutations of the bodies a
real exchange produced) and generated or mutated headers (From, Host, Content-Type, lying or
repeated Content-Length, chunked bodies, duplicates, junk headers).

Per example: the answer is an HTTP answer below 500; the server still serves a well-formed request
afterwards; and when the answer is a refusal (a 4xx, or an in-body refusal code) neither provider's
observable state (every table of its store, its rooms and clients in memory) changed. Read-only
endpoints must change nothing whatever they answer. Bodies over the configured limit get 413
before they are sent.

Derandomized and bounded (EXAMPLES_PER_ENDPOINT), so a CI failure reproduces locally.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fuzz_helpers import (
    FUZZ_MAX_BODY_BYTES,
    STATS,
    A,
    B,
    FuzzWorld,
    RawReply,
    describe_difference,
    endpoint_path,
    request_bytes,
)
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from reference_peer.wire.codec import DecodeError, EncodeError, Struct
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    AbuseReport,
    AbuseType,
    ConsentEntry,
    FanoutMessage,
    GroupInfoCode,
    GroupInfoRequest,
    GroupInfoResponse,
    IdentifierRequest,
    KeyMaterialRequest,
    KeyMaterialResponse,
    KeyMaterialUserCode,
    QueryElement,
    SearchIdentifierType,
    SubmitMessageRequest,
    SubmitMessageResponse,
    SubmitResponseCode,
    UpdateRequest,
    UpdateResponseCode,
    UpdateRoomResponse,
)
from reference_peer.wire.mls import AppDataDictionary
from reference_peer.wire.strategies import encodings_of, mutations_of, values_of

EXAMPLES_PER_ENDPOINT = 50
VALID_EXAMPLES = 2  # unmutated captured bodies per endpoint, as explicit examples
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


# -- what counts as a refusal ----------------------------------------------------------------


def _in_body_refusal(decode: Callable[[bytes], bool]) -> Callable[[RawReply], bool]:
    def refused(reply: RawReply) -> bool:
        if reply.status >= 400:
            return True
        if reply.status != 200:
            return False
        try:
            return decode(reply.body)
        except (DecodeError, EncodeError):
            return False  # not a refusal we can read; the state is then not compared

    return refused


def _http_refusal(reply: RawReply) -> bool:
    return reply.status >= 400


UPDATE_REFUSED = _in_body_refusal(lambda b: UpdateRoomResponse.decode(b).responseCode != UpdateResponseCode.success)
SUBMIT_REFUSED = _in_body_refusal(lambda b: SubmitMessageResponse.decode(b).statusCode != SubmitResponseCode.accepted)
GROUP_INFO_REFUSED = _in_body_refusal(lambda b: GroupInfoResponse.decode(b).status != GroupInfoCode.success)
KEY_MATERIAL_REFUSED = _in_body_refusal(
    lambda b: KeyMaterialResponse.decode(b).userStatus
    not in (KeyMaterialUserCode.success, KeyMaterialUserCode.partialSuccess)
)


# -- the endpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    endpoint: str | None  # None: the §5.1 directory
    sender: str
    server: str
    struct: type[Struct] | None  # the request body's wire struct, for generated valid encodings
    refused: Callable[[RawReply], bool] = _http_refusal
    read_only: bool = False  # must change nothing, refused or not

    @property
    def method(self) -> str:
        return "GET" if self.endpoint in (None, "proxyDownload") else "POST"


TARGETS = [
    Target("keyMaterial@hub", "keyMaterial", B, A, KeyMaterialRequest, KEY_MATERIAL_REFUSED),
    Target("keyMaterial@follower", "keyMaterial", A, B, KeyMaterialRequest, KEY_MATERIAL_REFUSED),
    # submitMessage before update: an accepted update (bob's self-leave, a commit) makes bob's
    # current-epoch messages stale or departing, and the submitMessage fuzzing would stay shallow.
    Target("submitMessage", "submitMessage", B, A, SubmitMessageRequest, SUBMIT_REFUSED),
    Target("update", "update", B, A, UpdateRequest, UPDATE_REFUSED),
    Target("notify", "notify", A, B, FanoutMessage),
    Target("groupInfo", "groupInfo", B, A, GroupInfoRequest, GROUP_INFO_REFUSED),
    Target("requestConsent", "requestConsent", B, A, ConsentEntry),
    Target("updateConsent", "updateConsent", A, B, ConsentEntry),
    Target("identifierQuery", "identifierQuery", B, A, IdentifierRequest, read_only=True),
    Target("reportAbuse", "reportAbuse", B, A, AbuseReport, read_only=True),
    Target("proxyDownload", "proxyDownload", B, A, None, read_only=True),
    Target("directory", None, B, A, None, read_only=True),
]


def seed_requests(fw: FuzzWorld, target: Target) -> tuple[str, list[bytes]]:
    """(path variable, valid bodies) for ``target``: made for the current epoch and captured from the
    setup exchange where the backends produce that traffic, built here for the endpoints they do not drive."""
    facts = fw.facts
    if target.endpoint is None:
        return "", [b""]
    if target.endpoint == "identifierQuery":
        query = IdentifierRequest(
            query_elements=[QueryElement(searchType=SearchIdentifierType.handle, searchValue=b"alice")],
            id_request_extensions=AppDataDictionary(component_data=[]),
        )
        return target.server, [query.encode()]
    if target.endpoint == "reportAbuse":
        report = AbuseReport(
            reportingUser=IdentifierUri(uri=facts["bob"].encode()),
            allegedAbuserUri=IdentifierUri(uri=facts["alice"].encode()),
            reasonCode=AbuseType.reserved,
            note=b"spam",
            messages=[],
            abuse_extensions=AppDataDictionary(component_data=[]),
        )
        return facts["room"], [report.encode()]
    if target.endpoint == "proxyDownload":
        return "https://assets.b.example/avatar.png", [b""]
    captured = [c for c in fw.captured[target.endpoint] if c.peer_domain == target.sender]
    assert captured, f"the setup exchange sent no {target.endpoint} from {target.sender} to {target.server}"
    return captured[0].value, [*fw.fresh.get(target.endpoint, []), *(c.body for c in captured)]


# -- bodies ------------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A captured valid body with one to four flips, insertions, deletions, truncations or splices."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice", "length"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "splice":  # a slice of another (or the same) valid body: plausible structure, wrong place
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : start + draw(st.integers(1, 64))]
        elif not data:
            continue
        elif op == "flip":
            data[at % len(data)] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del data[at % len(data) : at % len(data) + draw(st.integers(1, 8))]
        elif op == "length":  # a byte set to an extreme: breaks length prefixes and enum values
            data[at % len(data)] = draw(st.sampled_from([0x00, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xFF]))
        else:
            del data[at:]
    return bytes(data)


def _uri(value: str) -> IdentifierUri:
    return IdentifierUri(uri=value.encode())


def consistent(fw: FuzzWorld, target: Target, value: str) -> st.SearchStrategy[bytes] | None:
    """Valid encodings whose identifiers fit the path and the world (a real target user, real users of
    the right providers), so that random values reach past the first consistency checks."""
    users = st.sampled_from([fw.facts["alice"], fw.facts["amy"], fw.facts["bob"], "mimi://b.example/u/nobody"])
    if target.endpoint == "keyMaterial":
        return st.builds(
            lambda v, requester: v.replace(targetUser=_uri(value), requestingUser=_uri(requester),
                                           roomId=_uri(fw.facts["room"])).encode(),
            values_of(KeyMaterialRequest, max_depth=4), users,
        )
    if target.endpoint in ("requestConsent", "updateConsent"):
        return st.builds(
            lambda v, requester, consent_target: v.replace(requesterUri=_uri(requester), targetUri=_uri(consent_target)).encode(),
            values_of(ConsentEntry, max_depth=4), users, users,
        )
    return None


def bodies(fw: FuzzWorld, target: Target, value: str, seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    if target.method == "GET":
        return st.one_of(st.just(b""), st.binary(max_size=64))
    strategies = [mutated(seeds), mutated(seeds), mutated(seeds), st.sampled_from(seeds), st.binary(max_size=512)]
    if target.struct is not None:
        strategies += [encodings_of(target.struct, max_depth=4), mutations_of(target.struct)]
    fitting = consistent(fw, target, value)
    if fitting is not None:
        strategies += [fitting, fitting]
    return st.one_of(strategies)


# -- paths -------------------------------------------------------------------------------------


def paths(target: Target, value: str) -> st.SearchStrategy[str]:
    if target.endpoint is None:
        return st.sampled_from([endpoint_path(None), endpoint_path(None) + "?x=1"])
    good = endpoint_path(target.endpoint, value)
    prefix = f"/v1/{target.endpoint}/"
    other_values = [
        "mimi://a.example/r/nosuch", "mimi://b.example/r/elsewhere", "mimi://a.example/u/alice", "a.example",
        "b.example", "c.example", "not a uri", "https://a.example/x", "mimi://",
    ]
    if target.endpoint == "proxyDownload":
        other_values += ["http://assets.b.example/x", "https://127.0.0.1/x", "https://[::1]/x", "file:///etc/passwd"]
    raw = [prefix + "%zz", prefix + "%C3%28", prefix, good + "/extra", good + "?q=1", good.upper()]
    return st.one_of(
        st.just(good), st.just(good), st.just(good), st.just(good),
        st.sampled_from(other_values).map(lambda v: endpoint_path(target.endpoint, v)),
        st.text(PRINTABLE, min_size=1, max_size=40).map(lambda v: endpoint_path(target.endpoint, v)),
        st.sampled_from(raw),
    )


# -- headers -----------------------------------------------------------------------------------

HEADER_VALUES = st.text(PRINTABLE, max_size=40).map(str.strip)
HEADER_NAMES = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~"),
                       min_size=1, max_size=20)


def _replace(headers: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in headers if k.lower() != name.lower()]
    return kept if value is None else [(name, value), *kept]


def _chunked(body: bytes, size: int) -> bytes:
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


@st.composite
def requests(draw: st.DrawFn, fw: FuzzWorld, target: Target, value: str, seeds: list[bytes]):
    """(path, headers, wire body) with, half the time, one header mutation."""
    body = draw(bodies(fw, target, value, seeds))
    path = draw(paths(target, value))
    headers = fw.standard_headers(target.sender, target.server, body, method=target.method)
    if target.method == "GET" and body:
        headers = [*headers, ("Content-Length", str(len(body)))]
    wire_body = body
    sender, server, port = target.sender, target.server, fw.port
    other = B if server == A else A
    kind = draw(st.sampled_from(["none"] * 6 + ["from", "host", "content-type", "length", "duplicate", "extra"]))
    if kind == "from":
        replacement = draw(st.one_of(st.none(), HEADER_VALUES, st.sampled_from([
            f"mimi@{other}" if other != sender else "mimi@c.example", "mimi@c.example", f"MIMI@{sender.upper()}",
            f"mimi@{sender}.", f"bob@{sender}", "", "mimi@", f"<mimi@{sender}>", f"Mimi <mimi@{sender}>",
            f"mimi@{sender}, mimi@{sender}", f"mimi@{sender}:443", "mimi@127.0.0.1", f"mimi@@{sender}",
        ])))
        headers = _replace(headers, "From", replacement)
    elif kind == "host":
        replacement = draw(st.one_of(st.none(), HEADER_VALUES, st.sampled_from([
            server, server.upper(), f"{server}.:{port}", f"{other}:{port}", "c.example", "unknown.example", "",
            "127.0.0.1", f"{server}:notaport", f"{server}:99999", "[::1]", f"user@{server}", f"{server}:{port}:1",
        ])))
        headers = _replace(headers, "Host", replacement)
    elif kind == "content-type":
        replacement = draw(st.one_of(st.none(), HEADER_VALUES, st.sampled_from([
            "text/plain", "", "application/json", "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded", "application/octet-stream; charset=utf-8",
        ])))
        headers = _replace(headers, "Content-Type", replacement)
    elif kind == "length":
        n = len(body)
        variant = draw(st.sampled_from(["short", "long", "junk", "negative", "twice-same", "twice-different",
                                        "absent", "chunked", "chunked-raw", "chunked-and-length"]))
        if variant == "short":
            headers = _replace(headers, "Content-Length", str(max(n - draw(st.integers(1, 16)), 0)))
        elif variant == "long":  # the server waits for bytes that never come: 408 after the read timeout
            headers = _replace(headers, "Content-Length", str(n + draw(st.integers(1, 1000))))
        elif variant == "junk":
            headers = _replace(headers, "Content-Length", draw(st.sampled_from(["abc", "", f" {n} x", "0x10", "1e3"])))
        elif variant == "negative":
            headers = _replace(headers, "Content-Length", "-1")
        elif variant == "twice-same":
            headers = [*headers, ("Content-Length", str(n))]
        elif variant == "twice-different":
            headers = [*headers, ("Content-Length", str(n + 1))]
        elif variant == "absent":
            headers = _replace(headers, "Content-Length", None)
        else:
            headers = _replace(headers, "Content-Length", None if variant != "chunked-and-length" else str(n))
            headers = [*headers, ("Transfer-Encoding", "chunked")]
            wire_body = body if variant == "chunked-raw" else _chunked(body, draw(st.integers(1, 64)))
    elif kind == "duplicate":
        name = draw(st.sampled_from(["Host", "From", "Content-Type"]))
        replacement = dict((k, v) for k, v in headers).get(name, "x")
        headers = [*headers, (name, draw(st.sampled_from([replacement, replacement.upper(), "mimi@c.example", "c.example"])))]
    elif kind == "extra":
        headers = [*headers, (draw(HEADER_NAMES), draw(HEADER_VALUES))]
    return path, headers, wire_body


# -- the tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_world(pki):
    fw = FuzzWorld(pki).start()
    try:
        yield fw
    finally:
        fw.close()


def _status_class(reply: RawReply | None) -> str:
    return "none" if reply is None else f"{reply.status // 100}xx"


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_bad_input_gets_no_5xx_keeps_serving_and_a_refusal_changes_nothing(fuzz_world: FuzzWorld, target: Target):
    fw = fuzz_world
    value, seeds = seed_requests(fw, target)
    stats = STATS.fuzz[target.name]

    @settings(
        max_examples=EXAMPLES_PER_ENDPOINT,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: a CI failure reproduces locally
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(request=requests(fw, target, value, seeds))
    def check(request) -> None:
        path, headers, body = request
        before = fw.snapshot()
        reply = fw.request(target.sender, target.server, target.method, path, headers, body)
        after = fw.snapshot()
        stats.examples += 1
        stats.statuses[_status_class(reply)] += 1
        shown = f"{target.method} {path} {headers} body[{len(body)}]={body[:80]!r}"
        assert reply is not None, f"no HTTP answer (connection dropped): {shown}"
        assert reply.status < 500, f"{reply.status} {reply.body[:300]!r} for {shown}"
        refused = target.refused(reply)
        if refused:
            stats.refusals += 1
        if refused or target.read_only:
            assert before == after, f"state changed by {reply.status} to {shown}: {describe_difference(before, after)}"
            stats.refusals_unchanged += refused
        assert fw.alive(), f"the server stopped answering after {shown}"

    # The valid bodies as they were, first: the accepted path is exercised on every run, not by chance.
    path = endpoint_path(target.endpoint, value)
    for body in seeds[:VALID_EXAMPLES]:
        check = example(request=(path, fw.standard_headers(target.sender, target.server, body, method=target.method), body))(check)
    check()
    assert stats.examples >= EXAMPLES_PER_ENDPOINT


# -- oversized bodies --------------------------------------------------------------------------

OVERSIZED_CASES = [("hub: update", B, A, "update"), ("follower: notify", A, B, "notify")]


def _send_and_read(fw: FuzzWorld, sender: str, server: str, data: bytes, *, timeout: float) -> bytes:
    """Send ``data`` (a request head, perhaps part of a body) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", fw.port), timeout=timeout) as raw:
        with fw.contexts[sender].wrap_socket(raw, server_hostname=server) as tls:
            with contextlib.suppress(OSError):  # the server may refuse and close while we still send
                tls.sendall(data)
            answer = bytearray()
            try:
                while chunk := tls.recv(65536):
                    answer += chunk
            except TimeoutError:
                pytest.fail(f"no answer and no close within {timeout}s: the server is waiting for the body")
            except OSError:
                pass
    return bytes(answer)


@pytest.mark.parametrize(("role", "sender", "server", "endpoint"), OVERSIZED_CASES, ids=[c[0] for c in OVERSIZED_CASES])
@pytest.mark.parametrize("expect_continue", [False, True], ids=["plain", "expect-100-continue"])
def test_a_declared_oversized_body_is_refused_413_before_it_is_sent(
    fuzz_world: FuzzWorld, role: str, sender: str, server: str, endpoint: str, expect_continue: bool
):
    fw = fuzz_world
    value, _ = seed_requests(fw, next(t for t in TARGETS if t.endpoint == endpoint))
    headers = fw.standard_headers(sender, server, b"")
    headers = _replace(headers, "Content-Length", str(FUZZ_MAX_BODY_BYTES + 1))
    if expect_continue:
        headers = [*headers, ("Expect", "100-continue")]
    before = fw.snapshot()
    # Not one body byte is sent: an answer at all proves the refusal came before the body. The server's
    # body read timeout (0.3 s) would answer 408, so 413 also proves no read was attempted.
    answer = _send_and_read(fw, sender, server, request_bytes("POST", endpoint_path(endpoint, value), headers), timeout=5.0)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]  # and never a "100 Continue" first
    assert fw.snapshot() == before
    assert fw.alive()


@pytest.mark.parametrize(("role", "sender", "server", "endpoint"), OVERSIZED_CASES, ids=[c[0] for c in OVERSIZED_CASES])
def test_a_chunked_body_is_refused_413_once_it_passes_the_limit(
    fuzz_world: FuzzWorld, role: str, sender: str, server: str, endpoint: str
):
    fw = fuzz_world
    value, _ = seed_requests(fw, next(t for t in TARGETS if t.endpoint == endpoint))
    headers = _replace(fw.standard_headers(sender, server, b""), "Content-Length", None)
    headers = [*headers, ("Transfer-Encoding", "chunked")]
    chunk = b"\x00" * 8192
    over_the_limit = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(FUZZ_MAX_BODY_BYTES // len(chunk) + 1))
    before = fw.snapshot()
    # One chunk past the limit and no terminating chunk: the body never ends, so only a server that
    # counts while reading answers 413 (one that waits for the end answers 408 after its read timeout).
    head = request_bytes("POST", endpoint_path(endpoint, value), headers) + over_the_limit
    answer = _send_and_read(fw, sender, server, head, timeout=5.0)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert fw.snapshot() == before
    assert fw.alive()


@pytest.mark.parametrize(("role", "sender", "server", "endpoint"), OVERSIZED_CASES, ids=[c[0] for c in OVERSIZED_CASES])
def test_a_body_of_exactly_the_limit_is_read_and_judged(
    fuzz_world: FuzzWorld, role: str, sender: str, server: str, endpoint: str
):
    # The limit is inclusive: a body of exactly the limit reaches the handler (a refusal, not a 413).
    fw = fuzz_world
    value, _ = seed_requests(fw, next(t for t in TARGETS if t.endpoint == endpoint))
    body = b"\xff" * FUZZ_MAX_BODY_BYTES
    before = fw.snapshot()
    reply = fw.request(sender, server, "POST", endpoint_path(endpoint, value),
                       fw.standard_headers(sender, server, body), body)
    assert reply is not None and reply.status != 413 and reply.status < 500, reply
    assert fw.snapshot() == before


# -- regressions found by fuzzing ---------------------------------------------------------------

NO_PROVIDER_DOMAIN_TARGETS = ["mimi://0/u/0", "mimi://192.0.2.1/u/x", "mimi://a.123/u/x"]


@pytest.mark.parametrize("target_user", NO_PROVIDER_DOMAIN_TARGETS)
def test_key_material_for_a_user_of_no_provider_domain_is_refused_not_a_500(fuzz_world: FuzzWorld, target_user: str):
    # Found by the control API fuzzing: the hub relayed keyMaterial for mimi://0/u/0 to "0", and the
    # peer book's ValueError for a non-DNS name became a 500 (over MIMI and over the control API).
    fw = fuzz_world
    room = fw.facts["room"]
    seed = KeyMaterialRequest.decode(fw.captured["keyMaterial"][0].body)
    body = seed.replace(targetUser=_uri(target_user), roomId=_uri(room)).encode()
    before = fw.snapshot()
    reply = fw.request(B, A, "POST", endpoint_path("keyMaterial", target_user), fw.standard_headers(B, A, body), body)
    assert reply is not None and 400 <= reply.status < 500, reply
    assert fw.snapshot() == before
