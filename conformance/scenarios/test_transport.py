"""Transport and authentication: HTTPS with mutual TLS, Host, From (draft-ietf-mimi-protocol-06 §4.1, §5).

Incoming side: the suite probes the SUT's MIMI listener with its own TLS client (no client
certificate, one from a CA the SUT does not trust, one that does not name the From domain, cleartext)
and a real request: a well-formed requestConsent that the SUT would act
on if it admitted it. A refusal is a failed handshake or a non-2xx answer; the SUT's user must then
show no consent entry from the forged requester. These probes do not verify the SUT's server
certificate (they judge its client authentication; the server certificate has its own check).

Outgoing side (SUT as hub and as follower): the suite's reference peer logs only requests it
admitted: over TLS with a certificate of the run's CA naming the From domain, From exactly
``<local part containing mimi>@<domain>``, Host one of its domains. A request from the SUT refused at
that layer never reaches the log, so the check waits for the SUT's request to appear there, attributed
to the SUT.

What a check judges is the draft's sentence, no more (issue 15). §4.1 "The target provider is indicated
using a Host header" binds the requester: the SUT's own requests must carry a Host naming the target.
Whether the SUT refuses a request whose Host it does not serve is RFC 9110 hygiene (a MAY 421), not
-06, and is not judged (allowed variant serve-any-host). §4.1 "the local-part of the address MUST
contain the fixed string mimi": a local part containing ``mimi`` passes (AMB-FROM-LOCALPART-CONTAINS,
allowed variant from-localpart-contains-mimi).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conformance.harness.attribution import DIRECTORY_RULE, OPTIONAL_ENDPOINTS, blockers
from conformance.harness.polling import PollTimeout
from conformance.harness.reference_names import REFERENCE_ZONE, current
from conformance.scenarios.roles import both_roles
from conformance.verdicts import (
    HarnessError,
    SutMisbehaviour,
    ambiguous,
    blocked,
    fail,
    judging,
    miss,
    not_applicable,
    observed,
)
from reference_peer.pki import CertificateAuthority
from reference_peer.server.endpoints import DIRECTORY_PATH, expand_template
from reference_peer.wire.codec import DecodeError
from reference_peer.wire.identity import IdentifierUri
from reference_peer.wire.mimi import (
    AbuseReport,
    ConsentEntry,
    ConsentOperation,
    FanoutMessage,
    GroupInfoRequest,
    IdentifierRequest,
    KeyMaterialRequest,
    KeyMaterialUserCode,
    Protocol,
    SubmitMessageRequest,
    UpdateRequest,
    decode_fanout_sequence_tolerant,
)
from reference_peer.wire.mls import AppDataDictionary

HTTPS_ONLY = "PROTO-TRANSPORT-HTTPS-ONLY"
IDENTIFY = "PROTO-TRANSPORT-IDENTIFY-PROVIDERS"
HOST_TARGET = "PROTO-TRANSPORT-HOST-TARGET"
FROM_ADDR_SPEC = "PROTO-TRANSPORT-FROM-ADDR-SPEC"
FROM_LOCALPART = "PROTO-TRANSPORT-FROM-LOCALPART-MIMI"
MTLS = "PROTO-TRANSPORT-MTLS"
CERT_SOURCE = "PROTO-TRANSPORT-CERT-SOURCE-DOMAIN"
CERT_TARGET = "PROTO-TRANSPORT-CERT-TARGET-DOMAIN"
BODY_ENCODING = "PROTO-TRANSPORT-BODY-ENCODING"
PEERING = "PROTO-TRANSPORT-PEERING-REQUIRED"
HTTPS_URLS = "PROTO-DIRECTORY-HTTPS-URLS"

# This worker's reference domains (hub-k.ref.test on worker k): the plugin fixes them before import.
HUB_DOMAIN, FOLLOWER_DOMAIN = current()

PROBE_TIMEOUT = 5.0
MAX_ANSWER = 256 * 1024
MLS10 = {"protocol": Protocol.mls10}


# --------------------------------------------------------------------------------------------
# A raw HTTPS (or cleartext) client with full control of the certificate, SNI, Host and From


@dataclasses.dataclass(frozen=True)
class _Answer:
    status: int | None  # None: no HTTP answer (handshake refused, connection closed or reset)
    body: bytes
    error: str | None
    raw: bytes = b""

    @property
    def admitted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.status is None:
            return f"no HTTP answer ({self.error})"
        return f"HTTP {self.status} {self.body[:160]!r}"


def _target(sut, domain: str) -> tuple[str, int, str]:
    """(connect address, port, authority) of the SUT's MIMI server for ``domain``."""
    parts = urlsplit(sut.base_urls[domain])
    address = sut.resolve().get(domain) or parts.hostname
    return address, parts.port or 443, parts.netloc


def _probe(
    sut, recorder, domain: str, *, method: str = "GET", path: str = DIRECTORY_PATH, body: bytes = b"",
    cert: tuple[Path, Path] | None = None, host: str | None = None, from_domain: str | None = HUB_DOMAIN,
    tls: bool = True, verify: Path | None = None, what: str = "", chunked: bool = False,
) -> _Answer:
    """One HTTP/1.1 exchange with the SUT's MIMI listener for ``domain`` on a fresh connection.

    ``chunked``: the body is framed with Transfer-Encoding: chunked (RFC 9112 §7.1, in two chunks and
    the last chunk) instead of Content-Length."""
    address, port, authority = _target(sut, domain)
    headers = {"Host": host if host is not None else authority}
    if from_domain is not None:
        headers["From"] = f"mimi@{from_domain}"
    if body or method != "GET":
        headers["Content-Type"] = "application/octet-stream"
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    framed = _chunked(body) if chunked else body
    request = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in headers.items()
    ) + b"\r\n" + framed
    recorder.note(
        f"probe {what or method + ' ' + path}: {'TLS' if tls else 'cleartext'} to {address}:{port} (SNI {domain}), "
        f"client certificate {cert[0].name if cert else 'none'}, headers {headers}"
    )
    raw = bytearray()
    error = None
    try:
        with socket.create_connection((address, port), timeout=PROBE_TIMEOUT) as plain:
            plain.settimeout(PROBE_TIMEOUT)
            conn: socket.socket = plain
            if tls:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                if verify is None:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                else:
                    ctx.load_verify_locations(cafile=str(verify))
                if cert is not None:
                    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
                ctx.set_alpn_protocols(["http/1.1"])
                conn = ctx.wrap_socket(plain, server_hostname=domain)
            conn.sendall(request)
            while len(raw) < MAX_ANSWER:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                raw += chunk
    except (OSError, ssl.SSLError) as exc:  # a refused handshake, a reset, a timeout: no HTTP answer
        error = f"{type(exc).__name__}: {exc}"
    answer = _parse_answer(bytes(raw), error)
    recorder.note(f"probe answer: {answer.describe()}")
    return answer


def _chunked(body: bytes) -> bytes:
    """``body`` in the chunked transfer coding (RFC 9112 §7.1): two chunks, then the last chunk."""
    half = max(1, len(body) // 2)
    chunks = [part for part in (body[:half], body[half:]) if part]
    return b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in chunks) + b"0\r\n\r\n"


def _parse_answer(raw: bytes, error: str | None) -> _Answer:
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return _Answer(None, b"", error or f"not an HTTP answer: {raw[:80]!r}", raw)
    return _Answer(int(parts[1]), body, error, raw)


# --------------------------------------------------------------------------------------------
# The probe request: a requestConsent the SUT would act on if it admitted the sender


def _directory_document(sut, recorder, run_env, domain: str) -> dict:
    """``domain``'s directory, read with the suite hub's own certificate; one that cannot be read
    blocks the check (the directory rule judges it, in test_discovery.py)."""
    answer = _probe(sut, recorder, domain, cert=run_env.pki.issue(HUB_DOMAIN), what="directory")
    if answer.status != 200:
        blocked(DIRECTORY_RULE, f"the directory of {domain} is needed for this check and answered {answer.describe()}")
    try:
        document = json.loads(answer.body)
    except (UnicodeDecodeError, ValueError) as exc:
        blocked(DIRECTORY_RULE, f"the directory of {domain} is needed for this check and is not JSON: {exc}")
    if not isinstance(document, dict):
        blocked(DIRECTORY_RULE, f"the directory of {domain} is needed for this check and is not a JSON object")
    return document


def _endpoint_path(sut, recorder, run_env, domain: str, endpoint: str, value: str) -> str:
    """The path of ``endpoint`` from the SUT's directory, read with the suite hub's own certificate.

    The check needs it but does not judge the directory: a directory that cannot be read, or names
    no usable template for the endpoint, blocks the check (the directory rule); an optional endpoint
    the directory does not list means the SUT does not offer it (NOT_APPLICABLE). Members that are not
    endpoint names (an ACME-style ``meta``) are ignored."""
    document = _directory_document(sut, recorder, run_env, domain)
    if endpoint not in document:
        if endpoint in OPTIONAL_ENDPOINTS:
            not_applicable(f"the directory of {domain} does not list {endpoint}, which -06 leaves optional: the "
                           "SUT does not offer it, and this check sends one")
        blocked(DIRECTORY_RULE, f"the directory of {domain} has no {endpoint!r} entry, which this check needs")
    template = document[endpoint]
    try:
        if not isinstance(template, str):
            raise TypeError(f"the template is not a string: {json.dumps(template)[:60]}")
        url = expand_template(template, value)
    except (ValueError, TypeError) as exc:
        blocked(DIRECTORY_RULE, f"the directory of {domain} names no usable {endpoint} URL template: {exc}")
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _consent_request(requester: str, target: str) -> bytes:
    return ConsentEntry(
        consentOperation=ConsentOperation.request,
        requesterUri=IdentifierUri(uri=requester.encode()),
        targetUri=IdentifierUri(uri=target.encode()),
        roomId=None,
        clientKeyPackages=None,
        consent_extensions=AppDataDictionary(component_data=[]),
    ).encode()


@dataclasses.dataclass
class _ConsentProbe:
    path: str
    requester: str
    target: str
    body: bytes


def _prepare_consent_probe(sut, sut_party, recorder, run_env, names, requester_domain: str) -> _ConsentProbe:
    target = sut_party.create_user("target")
    requester = f"mimi://{requester_domain}/u/{names('forger')}"
    path = _endpoint_path(sut, recorder, run_env, sut_party.domain, "requestConsent", sut_party.domain)
    return _ConsentProbe(path, requester, target.uri, _consent_request(requester, target.uri))


def _refusal_problem(answer: _Answer, probe: _ConsentProbe, sut_party, how: str) -> tuple[str | None, str]:
    """(why the SUT did not refuse the probe, or None; the evidence that it did)."""
    if answer.admitted:
        return (f"{how}: the SUT admitted a requestConsent for {probe.target} from {probe.requester} "
                f"({answer.describe()}); it must refuse it"), ""
    if answer.status is not None and answer.status >= 500:
        return f"{how}: the SUT answered {answer.describe()}, a server error rather than a refusal", ""
    evidence = f"{how}: refused ({answer.describe()[:120]})"
    if sut_party.supports("getConsentState"):
        entries = sut_party.consent_state(probe.target)
        if any(probe.requester in json.dumps(entry) for entry in entries):
            return (f"{how}: the SUT answered {answer.describe()} but recorded consent state from {probe.requester}: "
                    f"{entries}"), ""
        evidence += ", and no consent state recorded from the requester"
    return None, evidence


def _assert_refused(answer: _Answer, probe: _ConsentProbe, sut_party, how: str, *, requirement: str) -> None:
    problem, evidence = _refusal_problem(answer, probe, sut_party, how)
    if problem:
        fail(problem, requirement=requirement)
    observed(requirement, evidence)


# --------------------------------------------------------------------------------------------
# Incoming: what the SUT's listener admits


@pytest.mark.requirements(MTLS)
@pytest.mark.operations("createUser", optional=("getConsentState",))
def test_request_without_client_certificate_is_refused(sut, sut_party, recorder, run_env, names):
    """The SUT refuses a MIMI request on a TLS connection where the client presented no certificate."""
    probe = _prepare_consent_probe(sut, sut_party, recorder, run_env, names, HUB_DOMAIN)
    answer = _probe(sut, recorder, sut_party.domain, method="POST", path=probe.path, body=probe.body, cert=None,
                    what="requestConsent without a client certificate")
    _assert_refused(answer, probe, sut_party, "no client certificate", requirement=MTLS)


@pytest.mark.requirements(MTLS, PEERING)
@pytest.mark.operations("createUser", optional=("getConsentState",))
def test_certificate_from_untrusted_ca_is_refused(sut, sut_party, recorder, run_env, names, tmp_path):
    """The SUT refuses a requestConsent from a peer whose certificate (naming its From domain) chains to a
    CA it does not trust, and records no consent request from it."""
    foreign = CertificateAuthority.create("MIMI conformance foreign CA").issue_provider(HUB_DOMAIN)
    cert = foreign.write(tmp_path, "foreign-hub")
    probe = _prepare_consent_probe(sut, sut_party, recorder, run_env, names, HUB_DOMAIN)
    answer = _probe(sut, recorder, sut_party.domain, method="POST", path=probe.path, body=probe.body, cert=cert,
                    what="requestConsent with a certificate of a foreign CA")
    # One refusal judges both: the TLS peer was not authenticated (MTLS), and the consent operation
    # came from a provider the SUT does not peer with (PEERING).
    problem, evidence = _refusal_problem(answer, probe, sut_party, "certificate from an untrusted CA")
    for requirement in (MTLS, PEERING):
        if problem:
            miss(requirement, problem)
        else:
            observed(requirement, evidence)


@pytest.mark.requirements(CERT_SOURCE)
@pytest.mark.operations("createUser", optional=("getConsentState",))
def test_from_not_authenticated_by_the_certificate_is_refused(sut, sut_party, recorder, run_env, names):
    """The SUT refuses a request whose From domain the client certificate does not name (a peer
    claiming to be another provider)."""
    probe = _prepare_consent_probe(sut, sut_party, recorder, run_env, names, HUB_DOMAIN)
    answer = _probe(sut, recorder, sut_party.domain, method="POST", path=probe.path, body=probe.body,
                    cert=run_env.pki.issue(FOLLOWER_DOMAIN), from_domain=HUB_DOMAIN,
                    what=f"requestConsent with the certificate of {FOLLOWER_DOMAIN}, From {HUB_DOMAIN}")
    _assert_refused(answer, probe, sut_party, f"{FOLLOWER_DOMAIN}'s certificate with From "
                    f"mimi@{HUB_DOMAIN}", requirement=CERT_SOURCE)


@pytest.mark.requirements(CERT_SOURCE)
@pytest.mark.operations("createUser", optional=("getConsentState",))
def test_from_naming_the_sut_itself_is_refused(sut, sut_party, recorder, run_env, names):
    """The SUT refuses a request from a peer certificate whose From claims the SUT's own domain."""
    own = sut_party.domain
    probe = _prepare_consent_probe(sut, sut_party, recorder, run_env, names, own)
    answer = _probe(sut, recorder, own, method="POST", path=probe.path, body=probe.body,
                    cert=run_env.pki.issue(HUB_DOMAIN), from_domain=own,
                    what=f"requestConsent with the certificate of {HUB_DOMAIN}, From mimi@{own}")
    _assert_refused(answer, probe, sut_party, f"{HUB_DOMAIN}'s certificate with From mimi@{own}",
                    requirement=CERT_SOURCE)


@pytest.mark.requirements(CERT_SOURCE)
@pytest.mark.operations("createUser", optional=("getConsentState",))
def test_parent_domain_certificate_does_not_authenticate_a_subdomain_from(sut, sut_party, recorder, run_env, names):
    """The SUT refuses a request whose client certificate names only a parent domain of the From domain.

    -06 §4.1: "The certificates presented in the TLS handshake MUST authenticate the source and target
    provider domains, according to [RFC6125]." RFC 6125 §6.4.1 (kept by RFC 9525 §6.3): a DNS-ID matches
    when the reference identifier and the presented identifier are the same (case-insensitively); only a
    wildcard in the left-most label matches more. A certificate naming ref.test (no wildcard) therefore
    does not authenticate hub.ref.test: a suffix match is no RFC 6125 match."""
    parent = REFERENCE_ZONE
    if not HUB_DOMAIN.endswith("." + parent):
        raise HarnessError(f"the reference hub domain {HUB_DOMAIN} is not under {parent}")
    probe = _prepare_consent_probe(sut, sut_party, recorder, run_env, names, HUB_DOMAIN)
    answer = _probe(sut, recorder, sut_party.domain, method="POST", path=probe.path, body=probe.body,
                    cert=run_env.pki.issue(parent), from_domain=HUB_DOMAIN,
                    what=f"requestConsent with a certificate naming only {parent}, From mimi@{HUB_DOMAIN}")
    _assert_refused(answer, probe, sut_party, f"a certificate naming only the parent domain {parent} with From "
                    f"mimi@{HUB_DOMAIN}", requirement=CERT_SOURCE)


@pytest.mark.requirements(HOST_TARGET)
@pytest.mark.operations()
def test_each_domain_answers_under_its_name_whatever_the_host_port(sut, recorder, run_env):
    """Each SUT domain answers a request whose Host names it, with any port or none: the port component
    of Host is ignored."""
    cert = run_env.pki.issue(HUB_DOMAIN)
    for domain in sut.domains:
        _, port, authority = _target(sut, domain)
        other = 8443 if port != 8443 else 9443
        baseline = _probe(sut, recorder, domain, cert=cert, host=authority, what=f"directory, Host {authority}")
        if baseline.status != 200:
            fail(f"{domain}'s directory with Host {authority} (as the SUT publishes it) answered "
                 f"{baseline.describe()}, not 200", requirement=HOST_TARGET)
        hosts = (domain, f"{domain}:{other}", f"{domain.upper()}:{port}")
        for host in hosts:
            answer = _probe(sut, recorder, domain, cert=cert, host=host, what=f"directory, Host {host}")
            if answer.status != baseline.status:
                fail(f"{domain} answered {answer.describe()} with Host {host!r} but HTTP {baseline.status} with "
                     f"Host {authority!r}: the Host port (and case) must not change the target provider",
                     requirement=HOST_TARGET)
        observed(HOST_TARGET, f"{domain} answered HTTP 200 with Host {authority!r} and with each of {list(hosts)}")


@pytest.mark.requirements(HTTPS_ONLY)
@pytest.mark.operations("createUser", optional=("getConsentState",))
def test_cleartext_http_is_refused(sut, sut_party, recorder, run_env, names):
    """The SUT's MIMI listener does not serve a request sent over cleartext HTTP (a redirect to https is
    acceptable), and serves the same kind of request over HTTPS (the positive control).

    -06 §4.1: "MIMI servers communicate using HTTPS. [...] The MIMI transport is based on HTTPS over
    mutually-authenticated TLS." A listener that refuses the request over HTTPS too exchanges no MIMI
    request at all, so its cleartext refusal shows nothing. The control judges only a refusal that
    is the listener's and not the request's: 413 (RFC 9110 §15.5.14, "the request content is larger than
    the server is willing or able to process", for a body of a few dozen bytes: every MIMI request has
    one). Any other non-2xx answer is not judged: -06 §5.7 lets a requestConsent be answered "a 404 Not
    Found [...] or a 500-class response", and a refusal may be the SUT's consent policy."""
    probe = _prepare_consent_probe(sut, sut_party, recorder, run_env, names, HUB_DOMAIN)
    answer = _probe(sut, recorder, sut_party.domain, method="POST", path=probe.path, body=probe.body, tls=False,
                    what="requestConsent over cleartext HTTP")
    _assert_refused(answer, probe, sut_party, "cleartext HTTP", requirement=HTTPS_ONLY)
    # The control: another requester (the cleartext one must stay absent from the consent state).
    requester = f"mimi://{HUB_DOMAIN}/u/{names('control')}"
    body = _consent_request(requester, probe.target)
    control = _probe(sut, recorder, sut_party.domain, method="POST", path=probe.path, body=body,
                     cert=run_env.pki.issue(HUB_DOMAIN), what="requestConsent over HTTPS (the control)")
    if control.status == 413:
        miss(HTTPS_ONLY, f"the same kind of requestConsent ({len(body)} bytes) over HTTPS with a certificate naming "
             f"{HUB_DOMAIN} was answered {control.describe()}: the listener serves no MIMI request body over HTTPS")
    elif control.admitted:
        observed(HTTPS_ONLY, f"the same kind of requestConsent over HTTPS was served ({control.describe()[:40]})")
    else:
        recorder.note(f"the HTTPS control was answered {control.describe()}: not judged (a refusal of its content)")


@pytest.mark.requirements(HTTPS_ONLY)
@pytest.mark.operations("createUser", optional=("getConsentState",))
def test_chunked_request_is_served_like_one_with_content_length(sut, sut_party, recorder, run_env, names):
    """A well-formed requestConsent whose body is framed with Transfer-Encoding: chunked is served as the
    same kind of requestConsent framed with Content-Length is.

    -06 §4.1: "MIMI servers communicate using HTTPS. [...] The MIMI transport is based on HTTPS over
    mutually-authenticated TLS." Over HTTP/1.1 a client may frame a request body either way, and RFC 9112
    §6.1: "A recipient MUST be able to parse the chunked transfer coding". RFC 9112 §6.3 lets a server
    refuse a request body without Content-Length with 411 (Length Required): that answer is accepted
    (NOT_APPLICABLE). The comparison is the same kind of requestConsent with Content-Length (from another
    requester): one the SUT does not serve judges nothing (-06 §5.7 lets a requestConsent be refused). When
    it is served (2xx), the chunked one must be served too; where getConsentState is offered, its requester
    must then show in the target's consent state as the comparison's does."""
    cert = run_env.pki.issue(HUB_DOMAIN)
    probe = _prepare_consent_probe(sut, sut_party, recorder, run_env, names, HUB_DOMAIN)
    chunked = _probe(sut, recorder, sut_party.domain, method="POST", path=probe.path, body=probe.body, cert=cert,
                     chunked=True, what="requestConsent with Transfer-Encoding: chunked")
    if chunked.status == 411:
        not_applicable(f"the SUT answered a chunked requestConsent {chunked.describe()[:80]}: it wants "
                       "Content-Length, as RFC 9112 §6.3 permits")
    requester = f"mimi://{HUB_DOMAIN}/u/{names('control')}"
    control = _probe(sut, recorder, sut_party.domain, method="POST", path=probe.path,
                     body=_consent_request(requester, probe.target), cert=cert,
                     what="the same kind of requestConsent with Content-Length (the comparison)")
    if not control.admitted:
        not_applicable(f"the SUT does not serve this requestConsent with Content-Length either ({control.describe()}): "
                       "nothing to compare the chunked request with")
    if not chunked.admitted:
        miss(HTTPS_ONLY, f"a well-formed requestConsent framed with Transfer-Encoding: chunked was answered "
             f"{chunked.describe()}, while the same kind of request with Content-Length was served "
             f"({control.describe()[:40]})")
    evidence = f"the chunked requestConsent was served ({chunked.describe()[:40]}) as the Content-Length one was"
    if sut_party.supports("getConsentState"):
        state = json.dumps(sut_party.consent_state(probe.target))
        if requester in state and probe.requester not in state:
            miss(HTTPS_ONLY, f"the chunked requestConsent from {probe.requester} was answered {chunked.describe()[:40]} "
                 f"but left no consent state, while the Content-Length one from {requester} did: {state[:300]}")
        if probe.requester in state:
            evidence += "; its requester shows in the target's consent state"
    observed(HTTPS_ONLY, evidence)


# --------------------------------------------------------------------------------------------
# Incoming: requests whose Host or From cannot name one provider, and Expect: 100-continue


def _connect(sut, domain: str, cert: tuple[Path, Path]) -> socket.socket:
    """A TLS connection (SNI ``domain``, client certificate ``cert``, server certificate not verified) to the
    SUT's MIMI listener for ``domain``."""
    address, port, _ = _target(sut, domain)
    plain = socket.create_connection((address, port), timeout=PROBE_TIMEOUT)
    try:
        plain.settimeout(PROBE_TIMEOUT)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx.wrap_socket(plain, server_hostname=domain)
    except BaseException:
        plain.close()
        raise


def _read_all(conn: socket.socket, raw: bytearray) -> str | None:
    """Read into ``raw`` until the peer closes (or MAX_ANSWER); the error that ended it, if any."""
    try:
        while len(raw) < MAX_ANSWER:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            raw += chunk
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _raw_exchange(sut, recorder, domain: str, head: list[str], body: bytes, *, cert: tuple[Path, Path],
                  what: str, version: str = "HTTP/1.1") -> _Answer:
    """One request on a fresh TLS connection, its request line and header lines exactly ``head`` (the first
    item is the request line without the version), then ``body``."""
    request_line, *fields = head
    request = f"{request_line} {version}\r\n".encode() + b"".join(f"{f}\r\n".encode() for f in fields) + b"\r\n"
    recorder.note(f"probe {what}: TLS to {domain}, client certificate {cert[0].name}, {request_line} {version}, "
                  f"header lines {fields}, {len(body)} body bytes")
    raw = bytearray()
    try:
        with _connect(sut, domain, cert) as conn:
            conn.sendall(request + body)
            error = _read_all(conn, raw)
    except (OSError, ssl.SSLError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    answer = _parse_answer(bytes(raw), error)
    recorder.note(f"probe answer: {answer.describe()}")
    return answer


def _refusal_with_4xx(answer: _Answer) -> str | None:
    """Why ``answer`` is not a refusal of the request (a 4xx answer, or the connection closed without one,
    which HTTP allows a server to do with a request it will not process), or None."""
    if answer.status is None or 400 <= answer.status < 500:
        return None
    return f"it was answered {answer.describe()}, not refused (a 4xx answer or a closed connection)"


@pytest.mark.requirements(HOST_TARGET)
@pytest.mark.operations()
def test_request_without_a_usable_host_is_refused(sut, recorder, run_env):
    """A request with no Host header, or with a Host that is no host at all (an IP-literal without its
    closing bracket), is refused: answered 4xx, or the connection closed without an answer.

    -06 §4.1: "The target provider is indicated using a Host header [RFC9110]." Such a request names no
    target provider, and for the HTTP/1.1 the probe speaks, RFC 9112 §3.2 leaves the server no choice: "A
    server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a
    Host header field and to any request message that contains more than one Host header field line or a
    Host header field with an invalid field value." The MIMI draft names no status of its own, so any 4xx
    is accepted. The request is a GET of the directory, with the suite hub's certificate and From. (A Host
    whose port is malformed is not sent: "the port component of the Host header is ignored" may be read to
    cover it; and a well-formed Host naming another domain may be served, allowed variant serve-any-host.)"""
    cert = run_env.pki.issue(HUB_DOMAIN)
    for domain in sut.domains:
        probes = {
            "no Host header": None,
            f"Host [{domain} (an IP-literal without its closing bracket, RFC 3986 §3.2.2)": f"[{domain}",
        }
        problems, evidence = [], []
        for how, host in probes.items():
            head = [f"GET {DIRECTORY_PATH}", f"From: mimi@{HUB_DOMAIN}", "Connection: close"]
            if host is not None:
                head.insert(1, f"Host: {host}")
            answer = _raw_exchange(sut, recorder, domain, head, b"", cert=cert, what=f"directory, {how}")
            problem = _refusal_with_4xx(answer)
            if problem:
                problems.append(f"{how}: {problem}")
            else:
                evidence.append(f"{how}: {answer.describe()[:60]}")
        if problems:
            miss(HOST_TARGET, f"{domain} served a request that names no target provider: {'; '.join(problems)}")
        observed(HOST_TARGET, f"{domain} refused each request naming no target provider: {'; '.join(evidence)}")


@pytest.mark.requirements(CERT_SOURCE)
@pytest.mark.operations("createUser", optional=("getConsentState",))
def test_request_naming_two_source_providers_is_refused(sut, sut_party, recorder, run_env, names):
    """A requestConsent whose From names two providers (two From field lines, in either order, or one line
    listing two mailboxes), sent with a certificate that authenticates only one of them, is refused (4xx,
    or the connection closed without an answer), and no consent state from its requester is recorded.

    -06 §4.1: "The source provider is indicated using a From header [RFC9110]. The mailbox production in
    the From header MUST use the addr-spec variant [...]" and "The certificates presented in the TLS
    handshake MUST authenticate the source and target provider domains, according to [RFC6125]." Each
    probe also claims a source provider the certificate does not authenticate; which of the two a server
    would act for is its guess, so it must act for neither. (RFC 9110 §10.1.2 defines From as one
    mailbox, and §5.3 forbids a sender to repeat a field that is not a list.) The draft names no status."""
    probe = _prepare_consent_probe(sut, sut_party, recorder, run_env, names, HUB_DOMAIN)
    cert = run_env.pki.issue(HUB_DOMAIN)
    _, _, authority = _target(sut, sut_party.domain)
    hub, other = f"mimi@{HUB_DOMAIN}", f"mimi@{FOLLOWER_DOMAIN}"
    probes = {
        f"From {hub} then From {other}": [f"From: {hub}", f"From: {other}"],
        f"From {other} then From {hub}": [f"From: {other}", f"From: {hub}"],
        f"one From listing {other}, {hub}": [f"From: {other}, {hub}"],
    }
    problems, evidence = [], []
    for how, froms in probes.items():
        head = [f"POST {probe.path}", f"Host: {authority}", *froms, "Content-Type: application/octet-stream",
                f"Content-Length: {len(probe.body)}", "Connection: close"]
        answer = _raw_exchange(sut, recorder, sut_party.domain, head, probe.body, cert=cert,
                               what=f"requestConsent with {HUB_DOMAIN}'s certificate, {how}")
        problem = _refusal_with_4xx(answer)
        if problem:
            problems.append(f"{how}: {problem}")
        else:
            evidence.append(f"{how}: {answer.describe()[:60]}")
    if problems:
        miss(CERT_SOURCE, f"a requestConsent from {probe.requester} claiming {FOLLOWER_DOMAIN} as well as {HUB_DOMAIN} "
             f"with a certificate naming only {HUB_DOMAIN}: {'; '.join(problems)}")
    verdict = f"each refused: {'; '.join(evidence)}"
    if sut_party.supports("getConsentState"):
        entries = sut_party.consent_state(probe.target)
        if any(probe.requester in json.dumps(entry) for entry in entries):
            miss(CERT_SOURCE, f"the SUT refused the requests but recorded consent state from {probe.requester}: "
                 f"{entries}")
        verdict += ", and no consent state recorded from the requester"
    observed(CERT_SOURCE, verdict)


def _expect_exchange(sut, recorder, domain: str, head: list[str], body: bytes, *, cert: tuple[Path, Path],
                     version: str, wait: float, what: str) -> tuple[int | None, bool, _Answer]:
    """A request with ``Expect: 100-continue`` (in ``head``): its header section first, then, unless a final
    answer came within ``wait`` seconds, the body. Returns (the interim 1xx status received before the body
    was sent, or None; whether nothing at all came within ``wait``; the final answer)."""
    request_line, *fields = head
    request = f"{request_line} {version}\r\n".encode() + b"".join(f"{f}\r\n".encode() for f in fields) + b"\r\n"
    recorder.note(f"probe {what}: TLS to {domain}, {request_line} {version}, header lines {fields}; the "
                  f"{len(body)}-byte body held back for up to {wait:g}s")
    raw = bytearray()
    interim, silent, error = None, False, None
    try:
        with _connect(sut, domain, cert) as conn:
            conn.sendall(request)
            conn.settimeout(wait)
            try:
                while b"\r\n\r\n" not in raw:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    raw += chunk
            except TimeoutError:
                silent = not raw
            conn.settimeout(PROBE_TIMEOUT)
            head_bytes, sep, rest = bytes(raw).partition(b"\r\n\r\n")
            first = _parse_answer(head_bytes + sep, None)
            if first.status is not None and 100 <= first.status < 200:
                interim, raw = first.status, bytearray(rest)
            if silent or interim is not None:
                conn.sendall(body)
            error = _read_all(conn, raw)
    except (OSError, ssl.SSLError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    answer = _parse_answer(bytes(raw), error)
    recorder.note(f"probe answer: interim {interim}, {'nothing' if silent else 'something'} within {wait:g}s, "
                  f"final {answer.describe()}")
    return interim, silent, answer


@pytest.mark.requirements(HTTPS_ONLY)
@pytest.mark.operations()
def test_expect_100_continue_is_answered_at_once(sut, recorder, run_env, names):
    """A keyMaterial POST with ``Expect: 100-continue`` whose body is held back gets, at once, either 100
    Continue or a final answer (HTTP/1.1); the same request as HTTP/1.0 never gets a 1xx answer.

    -06 §4.1: "MIMI servers communicate using HTTPS." A peer's HTTP client may send this expectation with
    any request body, and RFC 9110 §10.1.1 says what the server then owes it: "A server that receives a
    100-continue expectation in an HTTP/1.1 request message MUST either send an immediate response with a
    final status code, if that status can be determined by examining just the method, target URI, and
    header fields, or send an immediate 100 (Continue) response to encourage the client to send the
    request content." and "A server that receives a 100-continue expectation in an HTTP/1.0 request MUST
    ignore that expectation."; §15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client." Any
    final status is accepted (a 417 included: §10.1.1 "the 417 response merely indicates that the response
    chain does not support expectations"), as is a SUT that does not serve HTTP/1.0 at all. The body is
    not a KeyMaterialRequest: what the SUT answers once it has it is not judged."""
    cert = run_env.pki.issue(HUB_DOMAIN)
    domain = sut.domains[0]
    _, _, authority = _target(sut, domain)
    path = _endpoint_path(sut, recorder, run_env, domain, "keyMaterial", f"mimi://{domain}/u/{names('nobody')}")
    body = b"\x00" * 16
    head = [f"POST {path}", f"Host: {authority}", f"From: mimi@{HUB_DOMAIN}", "Content-Type: application/octet-stream",
            f"Content-Length: {len(body)}", "Expect: 100-continue", "Connection: close"]
    wait = PROBE_TIMEOUT
    interim, silent, answer = _expect_exchange(sut, recorder, domain, head, body, cert=cert, version="HTTP/1.1",
                                               wait=wait, what="keyMaterial, HTTP/1.1, Expect: 100-continue")
    if silent:
        miss(HTTPS_ONLY, f"{domain} sent neither 100 Continue nor a final answer within {wait:g}s of an HTTP/1.1 "
             f"request's header section with Expect: 100-continue (final answer once the body was sent anyway: "
             f"{answer.describe()[:80]})")
    if interim is not None and interim != 100:
        recorder.note(f"the interim answer was {interim}, not 100")
    evidence = (f"HTTP/1.1: {interim} before the body, then {answer.describe()[:40]}" if interim is not None
                else f"HTTP/1.1: a final answer at once, {answer.describe()[:60]}")
    interim10, _, answer10 = _expect_exchange(sut, recorder, domain, head, body, cert=cert, version="HTTP/1.0",
                                              wait=1.0, what="keyMaterial, HTTP/1.0, Expect: 100-continue")
    if interim10 is not None or (answer10.status is not None and 100 <= answer10.status < 200):
        miss(HTTPS_ONLY, f"{domain} sent a {interim10 or answer10.status} interim answer to an HTTP/1.0 request "
             "(with Expect: 100-continue), which must get no 1xx answer")
    observed(HTTPS_ONLY, f"{evidence}; HTTP/1.0: no 1xx answer ({answer10.describe()[:60]})")


def _authority_problem(url: str) -> str | None:
    """Why ``url`` (a filled directory template) has no usable authority (RFC 3986 §3.2: host, then an
    optional ``:port`` of digits), or None."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        return f"its authority {parts.netloc!r} has no valid port ({exc})"
    if not parts.hostname:
        return f"its authority {parts.netloc!r} names no host"
    if port == 0:
        return f"its authority {parts.netloc!r} names port 0"
    return None


@pytest.mark.requirements(HTTPS_URLS)
@pytest.mark.operations()
def test_directory_urls_name_a_reachable_authority(sut, recorder, run_env):
    """Every endpoint URL template in each SUT domain's directory, once filled, is an https URL whose
    authority is a host with an optional numeric port (RFC 3986 §3.2.2-3.2.3), so a peer can reach the
    endpoint through it.

    -06 §5.1: "the MIMI protocol uses a directory document to convey the HTTPS URLs used to reach certain
    endpoints (as opposed to hard coding the endpoints)". Which host and path the URLs name is the
    SUT's choice (any of them is accepted); an entry that is not a string or not an https template is
    judged by the directory check (test_discovery.py), not here."""
    for domain in sut.domains:
        document = _directory_document(sut, recorder, run_env, domain)
        judged, problems = 0, []
        for endpoint, template in sorted(document.items()):
            if not isinstance(template, str) or not template.lower().startswith("https://"):
                continue
            try:
                url = expand_template(template, f"mimi://{domain}/u/x")
            except ValueError:
                continue
            judged += 1
            problem = _authority_problem(url)
            if problem:
                problems.append(f"{endpoint} {template!r}: {problem}")
        if problems:
            miss(HTTPS_URLS, f"{domain}'s directory names URLs no peer can reach: {'; '.join(problems)}")
        elif judged:
            observed(HTTPS_URLS, f"{domain}: {judged} endpoint URLs, each naming a host and a valid port")
        else:
            recorder.note(f"{domain}'s directory has no https URL template to judge")


@pytest.mark.requirements(CERT_TARGET)
@pytest.mark.operations()
def test_server_certificate_authenticates_each_domain(sut, recorder, run_env):
    """For each of its domains (as TLS SNI), the SUT presents a certificate that chains to its declared
    CA and names that domain (RFC 6125 DNS-ID)."""
    trust = sut.ca or run_env.pki.ca_cert
    cert = run_env.pki.issue(HUB_DOMAIN)
    for domain in sut.domains:
        answer = _probe(sut, recorder, domain, cert=cert, verify=Path(trust), what=f"directory of {domain}, "
                        f"verifying the server certificate against {Path(trust).name}")
        if answer.status is None and answer.error and "CERTIFICATE_VERIFY_FAILED" in answer.error:
            fail(f"the certificate {domain} presents does not authenticate it: {answer.error}", requirement=CERT_TARGET)
        if answer.status != 200:
            fail(f"{domain}'s directory over a verified connection answered {answer.describe()}, not 200",
                 requirement=CERT_TARGET)
        observed(CERT_TARGET, f"{domain} (SNI) presented a certificate verified for it against {Path(trust).name}")


# --------------------------------------------------------------------------------------------
# Incoming: a keyMaterial request whose path and body name different users


CONSENT_CODES = (KeyMaterialUserCode.noConsent, KeyMaterialUserCode.noConsentForThisRoom)


# --------------------------------------------------------------------------------------------
# Outgoing: how the SUT calls the suite's reference peer


def _sut_requests(cast, poll_until, recorder, *, judging_rules: tuple[str, ...]) -> list:
    """Make the SUT call the reference peer (as hub: adding a reference user, so keyMaterial and notify;
    as follower: a message from the SUT's member, so submitMessage) and return the requests the reference
    peer admitted from the SUT's domain since.

    When none gets through, the reference peer's refusals say why: a refusal for one of
    ``judging_rules`` (the check's own) is a miss of that rule, one for another rule blocks the check.
    With no refusal on record the SUT's requests never reached HTTP (a failed TLS handshake is not
    logged as a refusal) or were never sent: a check judging the transport (``judging_rules`` not only
    the body rule) reports the SUT misbehaviour; the body check has no body to judge."""
    hub, follower, sut, ref = cast.hub, cast.follower, cast.sut, cast.reference
    alice = hub.create_user("alice")
    bob = follower.create_user("bob")
    room = hub.create_room(alice)
    if cast.sut_role == "hub":
        since = time.time() - 1.0
        mark = ref.traffic_mark()
        result = hub.add(room, alice, bob)
        recorder.note(f"SUT hub addParticipant: {result}")
        what = "the reference follower to admit a request from the SUT hub (keyMaterial or notify)"
    else:
        added = hub.add(room, alice, bob)
        if added.get("outcome") != "accepted":
            not_applicable(
                f"the reference hub could not add the SUT's user {bob.uri} ({added}), so the SUT as follower "
                "cannot be made to send a request here; the key-material checks judge why"
            )
        try:
            follower.wait_member(room, bob)
        except PollTimeout as exc:
            not_applicable(f"the SUT never showed its user as a member of the reference hub's room ({exc}), so it "
                           "cannot be made to send a request here; the fan-out checks judge why")
        since = time.time() - 1.0
        mark = ref.traffic_mark()
        result = follower.send(room, bob.client, b"transport check")
        recorder.note(f"SUT follower sendMessage: {result}")
        what = "the reference hub to admit a request from the SUT follower (submitMessage or update)"
    domains = {d.lower() for d in [sut.domain]}
    try:
        return poll_until(lambda: [t for t in ref.traffic(mark, direction="in") if t.peer in domains],
                          what=what)
    except PollTimeout as exc:
        timeout = exc
    seen = [(t.endpoint, t.peer, t.status) for t in ref.traffic(mark, direction="in")]
    try:
        refusals = blockers(ref._introspect("violations", since=since), ref.name, [sut.domain])
    except HarnessError as err:
        recorder.note(f"the reference peer could not say what it refused: {err}")
        refusals = []
    recorder.note(f"refusals of the SUT's requests since the action: {[(b.requirement, b.evidence) for b in refusals]}")
    own = [b for b in refusals if b.requirement in judging_rules]
    for refusal in own:
        miss(refusal.requirement, f"no request from {sut.domain} got through ({timeout}): {refusal.evidence}")
    if own:
        fail(own[0].evidence, requirement=own[0].requirement)
    if refusals:
        blocked(refusals[0].requirement, "; ".join(dict.fromkeys(b.evidence for b in refusals[:3])))
    if judging_rules == (BODY_ENCODING,):
        not_applicable(f"the reference peer admitted no request from the SUT ({timeout}; admitted since: {seen}), so "
                       "there is no body to judge; test_sut_requests_are_authenticated_as_its_domain judges why")
    raise SutMisbehaviour(
        f"{timeout}. The reference peer logs a request only once its TLS client certificate chains to the "
        f"run's CA and names the From domain, From is <local part containing mimi>@<domain> and Host names the reference "
        f"peer; none from {sut.domain} got through and none was refused at HTTP (admitted since: {seen})")


@both_roles
@pytest.mark.requirements(IDENTIFY, HOST_TARGET, FROM_ADDR_SPEC, FROM_LOCALPART, MTLS, CERT_SOURCE)
@pytest.mark.operations("createUser", hub=("createRoom", "addParticipant"), follower=("getRoom", "sendMessage"))
def test_sut_requests_are_authenticated_as_its_domain(cast, poll_until, recorder):
    """Requests the SUT sends a peer present a client certificate naming the SUT's domain, carry a From
    of that domain as a bare addr-spec whose local part contains mimi, and a Host naming the peer (the
    target provider, §4.1), so the peer admits them."""
    rules = (IDENTIFY, HOST_TARGET, FROM_ADDR_SPEC, FROM_LOCALPART, MTLS, CERT_SOURCE)
    admitted = _sut_requests(cast, poll_until, recorder, judging_rules=rules)
    domain = cast.sut.domain
    calls = sorted({t.endpoint for t in admitted})
    recorder.note(f"admitted from the SUT: {[(t.endpoint, t.peer, t.status) for t in admitted]}")
    with judging(IDENTIFY):
        assert all(t.peer == domain for t in admitted), f"admitted requests attributed to {[t.peer for t in admitted]}"
    # The reference peer admits (and logs) a request only when all of these held (module docstring).
    what = f"the reference peer admitted {len(admitted)} request(s) from the SUT ({', '.join(calls)})"
    observed(IDENTIFY, f"{what}: From named {domain} (source) and Host the reference peer (target)")
    observed(HOST_TARGET, f"{what}: each carried a Host naming {cast.reference.domain}, the target provider")
    observed(FROM_ADDR_SPEC, f"{what}: From was a bare addr-spec of {domain}")
    observed(FROM_LOCALPART, f"{what}: the From local-part contained the fixed string mimi")
    observed(MTLS, f"{what}: each over TLS with a client certificate chaining to the run's CA")
    observed(CERT_SOURCE, f"{what}: the client certificate named {domain}, the From domain")


_DECODERS = {
    "keyMaterial": lambda body: KeyMaterialRequest.decode(body),
    "update": lambda body: UpdateRequest.decode(body, scope=MLS10),
    "notify": lambda body: FanoutMessage.decode_sequence(body, scope=MLS10),
    "submitMessage": lambda body: SubmitMessageRequest.decode(body),
    "groupInfo": lambda body: GroupInfoRequest.decode(body),
    "requestConsent": lambda body: ConsentEntry.decode(body),
    "updateConsent": lambda body: ConsentEntry.decode(body),
    "identifierQuery": lambda body: IdentifierRequest.decode(body),
    "reportAbuse": lambda body: AbuseReport.decode(body),
}
_TOLERANT_STRUCTS = {
    "keyMaterial": KeyMaterialRequest,
    "update": UpdateRequest,
    "submitMessage": SubmitMessageRequest,
    "groupInfo": GroupInfoRequest,
    "requestConsent": ConsentEntry,
    "updateConsent": ConsentEntry,
    "identifierQuery": IdentifierRequest,
    "reportAbuse": AbuseReport,
}
# The body decoded in the readings the register accepts (docs/spec-ambiguities.md), giving the leniencies
# used: a struct's tolerant mode; a /notify body (a sequence) in one reading for the whole body
# (AMB-PROTOCOL-CONTEXT's explicit protocol octet, AMB-FANOUT-SELECT's no arm).
_TOLERANT = {endpoint: (lambda body, s=struct: s.decode_tolerant(body, scope=MLS10))
             for endpoint, struct in _TOLERANT_STRUCTS.items()}
_TOLERANT["notify"] = lambda body: decode_fanout_sequence_tolerant(body, scope=MLS10)


@both_roles
@pytest.mark.requirements(BODY_ENCODING)
@pytest.mark.operations("createUser", hub=("createRoom", "addParticipant"), follower=("getRoom", "sendMessage"))
def test_sut_request_bodies_are_exact_encodings(cast, poll_until, recorder):
    """Every request body the SUT sends a peer is exactly the TLS-presentation-language encoding of the
    endpoint's struct, with nothing before or after it."""
    admitted = _sut_requests(cast, poll_until, recorder, judging_rules=(BODY_ENCODING,))
    exact = []
    for item in admitted:
        decode = _DECODERS.get(item.endpoint)
        if decode is None:
            continue
        try:
            decode(item.request)
            exact.append(item.endpoint)
            continue
        except DecodeError as exc:
            problem = exc
        tolerant = _TOLERANT.get(item.endpoint)
        if tolerant is not None:
            try:
                decoded = tolerant(item.request)
            except DecodeError:
                decoded = None
            if decoded is not None and decoded.leniencies:
                leniency = decoded.leniencies[0]
                ambiguous(leniency.ambiguity, f"the SUT's {item.endpoint} body decodes only with a repair: "
                          f"{leniency.path}: {leniency.detail} (strict reading: {problem})")
        fail(f"the SUT's {item.endpoint} request body ({len(item.request)} bytes) is not exactly one encoded "
             f"{item.endpoint} struct: {problem}", requirement=BODY_ENCODING)
    if exact:
        observed(BODY_ENCODING, f"{len(exact)} request bodies from the SUT ({', '.join(sorted(set(exact)))}) each "
                 "decoded as exactly one struct")
