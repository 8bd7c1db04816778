"""Which transport rule blocked a check, from what the suite's own reference peers saw.

A SUT that breaks a transport rule (a wrong From, a body with trailing bytes, a server certificate no
CA vouches for) breaks every exchange with the suite's peers, so every check that needs one fails. Left
alone, each of those failures would blame the rule the check was written to judge (consent, removal,
fan-out) although that rule was never exercised. So when a check misses, the plugin asks the reference
peers what they observed during the check: requests from the SUT they refused for a transport rule
(the refusal names the rule's requirement ID) and their own requests to the SUT that failed TLS
verification. If there is such evidence, and the check does not itself judge that rule, the check is
reported FAIL *blocked by* that rule: the profile scores the transport requirement as failed and leaves
the check's own requirements unjudged by it.

Only failures a conforming SUT never causes count as evidence; a refusal of a request's content (no
consent, not a member) is a scenario's business and blames nothing here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from .reference_names import in_reference_zone

# Evidence counts from this long before the check started: a SUT whose requests were refused keeps
# retrying them with backoff, so the request a check waits for may sit behind older ones and never be
# sent (and refused) inside the check itself. A conforming SUT has no such refusals at all.
LOOKBACK_SECONDS = 120.0

# What an OpenSSL or Python TLS client says when the server's certificate does not authenticate the
# domain it was asked for (untrusted chain, self-signed, or wrong name).
_CERTIFICATE_ERRORS = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "Hostname mismatch")
CERT_TARGET_REQUIREMENT = "PROTO-TRANSPORT-CERT-TARGET-DOMAIN"


@dataclasses.dataclass(frozen=True)
class Blocker:
    requirement: str
    evidence: str


def _from_domain(header: str | None) -> str | None:
    if not header or "@" not in header:
        return None
    return header.rpartition("@")[2].strip(" >").lower() or None


def blockers(problems: Mapping[str, Any], observer: str, sut_domains: Iterable[str]) -> list[Blocker]:
    """The rules the SUT broke, from one reference peer's ``violations`` answer."""
    domains = {d.lower() for d in sut_domains}
    found: list[Blocker] = []
    for refusal in problems.get("refused", ()):
        names = {n.lower() for n in refusal.get("peer_cert_names") or ()}
        if not (names & domains or _from_domain(refusal.get("from_header")) in domains):
            continue  # not the SUT (the suite's two peers also talk to each other)
        found.append(Blocker(
            refusal["requirement"],
            f"{observer} refused the SUT's {refusal.get('method', '')} {refusal.get('path', '')} with "
            f"{refusal.get('status')} ({refusal.get('reason')}: {refusal.get('detail')})",
        ))
    for seen in problems.get("observed", ()):
        if str(seen.get("peer", "")).lower() in domains:
            found.append(Blocker(seen["requirement"], f"{observer} saw the SUT break it: {seen.get('evidence')}"))
    for failure in problems.get("failed", ()):
        error = failure.get("error") or ""
        if str(failure.get("peer", "")).lower() in domains and any(e in error for e in _CERTIFICATE_ERRORS):
            found.append(Blocker(
                CERT_TARGET_REQUIREMENT,
                f"{observer}'s {failure.get('endpoint')} request to the SUT failed: {error}",
            ))
    return found


# The endpoints peers need from a server in each role (PROTO-DIRECTORY-HUB-/FOLLOWER-ENDPOINTS), and
# the hub-transfer extension's own entry.
ROLE_ENDPOINTS = {
    "hub": {"update", "submitMessage", "groupInfo", "keyMaterial", "proxyDownload"},
    "follower": {"notify", "keyMaterial"},
}
# Endpoints -06 leaves optional (explicit consent is one of "many ways", identifierQuery may be
# refused altogether, abuse reports are not made mandatory): a directory without one means the SUT
# does not offer it, so a check that needs it does not apply.
OPTIONAL_ENDPOINTS = {"requestConsent", "updateConsent", "identifierQuery", "reportAbuse"}
_ENDPOINT_RULES = {"hub": "PROTO-DIRECTORY-HUB-ENDPOINTS", "follower": "PROTO-DIRECTORY-FOLLOWER-ENDPOINTS"}
_EXTENSION_ENDPOINT_RULES = {"hubTransfer": "EXT-HUBXFER-DIRECTORY"}
_MISSING_ENTRY = re.compile(r"directory has no '([A-Za-z]+)' entry")
# The directory document itself (200, a JSON object mapping endpoints to URL templates).
DIRECTORY_RULE = "PROTO-DIRECTORY-WELL-KNOWN"


def missing_endpoint_rules(endpoint: str, check_role: str) -> list[str]:
    """The rules that a directory lists ``endpoint`` (the role rules of the roles needing it)."""
    if endpoint in _EXTENSION_ENDPOINT_RULES:
        return [_EXTENSION_ENDPOINT_RULES[endpoint]]
    return [rule for role, rule in _ENDPOINT_RULES.items()
            if endpoint in ROLE_ENDPOINTS[role] and check_role in (role, "any")]


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    links: list[BaseException] = []
    while exc is not None and all(exc is not link for link in links):
        links.append(exc)
        exc = exc.__cause__ or exc.__context__
    return links


def _of_reference_peer(error: BaseException) -> bool:
    """A directory error about one of the suite's own peers (any worker's): the suite's problem, never the SUT's."""
    url = getattr(error, "url", None)
    return bool(url) and in_reference_zone(urlsplit(url).hostname or "")


def directory_blockers(error: BaseException, check_role: str) -> list[Blocker]:
    """The directory rules a :class:`~reference_peer.server.client.PeerDirectoryError` about the SUT shows
    broken: a missing endpoint, the role rule listing it; an unusable template, or a directory that
    could not be had at all, the well-known directory rule. Empty for anything else."""
    from reference_peer.server.client import PeerDirectoryError

    if not isinstance(error, PeerDirectoryError) or _of_reference_peer(error):
        return []
    found = [Blocker(rule, f"the SUT's directory has no {endpoint!r} entry")
             for endpoint in error.missing for rule in missing_endpoint_rules(endpoint, check_role)]
    found += [Blocker(DIRECTORY_RULE, f"the SUT's directory entry {endpoint!r} is unusable: {why}")
              for endpoint, why in error.bad_templates.items()]
    if error.unusable and not _MISSING_ENTRY.search(str(error)):  # (an error raised without the details)
        found.append(Blocker(DIRECTORY_RULE, f"the SUT's directory could not be read: {error}"))
    return found


def harness_blockers(exc: BaseException | None, check_role: str) -> list[Blocker]:
    """What the harness's own client met: a check that stopped because the SUT's directory lacks an
    endpoint it needed is blocked by the rule that the directory lists it (an unusable template or
    directory, by the well-known directory rule); one that stopped because the SUT's server
    certificate did not verify, by the certificate rule."""
    if any(_of_reference_peer(link) for link in _chain(exc)):
        return []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if any(e in str(exc) for e in _CERTIFICATE_ERRORS):
            return [Blocker(CERT_TARGET_REQUIREMENT, f"the suite's request to the SUT failed: {exc}")]
        found = directory_blockers(exc, check_role)
        if found:
            return found
        match = _MISSING_ENTRY.search(str(exc))
        if match:
            endpoint = match.group(1)
            rules = missing_endpoint_rules(endpoint, check_role)
            return [Blocker(rule, f"the SUT's directory has no {endpoint!r} entry") for rule in rules]
        exc = exc.__cause__ or exc.__context__
    return []


def missing_optional_endpoint(exc: BaseException | None) -> str | None:
    """The optional endpoint (OPTIONAL_ENDPOINTS) whose absence from the SUT's directory stopped a check."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        match = _MISSING_ENTRY.search(str(exc))
        if match:
            return match.group(1) if match.group(1) in OPTIONAL_ENDPOINTS else None
        exc = exc.__cause__ or exc.__context__
    return None


def gather(introspection_urls: Mapping[str, str], since: float, sut_domains: Iterable[str]) -> list[Blocker]:
    """Ask each reference peer (name -> control URL) what blocked the SUT since ``since`` (epoch seconds).

    Best effort: a peer that cannot answer contributes nothing (the check's own verdict then stands).
    """
    domains = list(sut_domains)
    found: list[Blocker] = []
    for observer, url in introspection_urls.items():
        try:
            reply = httpx.get(f"{url}/x-reference/v1/violations", params={"since": since}, timeout=15.0,
                              trust_env=False)
            if reply.status_code != 200:
                continue
            found += blockers(reply.json(), observer, domains)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            continue
    return found


def blocked_message(found: list[Blocker], original: str) -> tuple[tuple[str, ...], str]:
    """The requirement IDs blocking the check, and its message: the evidence first, then what it saw."""
    requirements = tuple(dict.fromkeys(b.requirement for b in found))
    evidence = "; ".join(dict.fromkeys(b.evidence for b in found[:3]))
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    message = (
        f"blocked by {', '.join(requirements)}: {evidence}{more}. The check's own requirements were not "
        f"judged; it saw: {original}"
    )
    return requirements, message
