"""Discovery: the §5.1 directory (draft-ietf-mimi-protocol-06).

The suite reads the directory as the reference peer does, with the tolerant parser of
``reference_peer.wire.directory``: strictly first, then accepting only the repairs of the draft's
own typos. A directory that parses only through such a repair is AMBIGUOUS with that ambiguity's
ID, never FAIL (docs/spec-ambiguities.md).
"""

from __future__ import annotations

import pytest

from conformance.verdicts import ambiguous, fail, not_applicable
from reference_peer.wire.directory import WELL_KNOWN_PATH, Directory, DirectoryError

WELL_KNOWN = "PROTO-DIRECTORY-WELL-KNOWN"
HTTPS_URLS = "PROTO-DIRECTORY-HTTPS-URLS"

# The endpoints peers need from a server in each role (PROTO-DIRECTORY-HUB-/FOLLOWER-ENDPOINTS).
ROLE_ENDPOINTS = {
    "hub": {"update", "submitMessage", "groupInfo", "keyMaterial", "reportAbuse", "proxyDownload"},
    "follower": {"notify", "keyMaterial", "requestConsent", "updateConsent", "identifierQuery"},
}


@pytest.mark.requirements(WELL_KNOWN, HTTPS_URLS)
def test_directory_is_served_as_json_naming_https_endpoints(sut, mimi, recorder):
    """Each SUT domain answers GET /.well-known/mimi-protocol-directory with 200 and a JSON object
    mapping the endpoint types to https URL templates."""
    needed = set().union(*(ROLE_ENDPOINTS[role] for role in sut.roles))
    for domain, base_url in sut.base_urls.items():
        url = base_url + WELL_KNOWN_PATH
        recorder.note(f"fetching the directory of {domain}")
        reply = mimi.get(url)
        if reply.status != 200:
            fail(f"{url} answered HTTP {reply.status}, not 200", requirement=WELL_KNOWN)
        try:
            Directory.parse(reply.body)
            continue
        except DirectoryError as strict_error:
            problem = strict_error
        try:
            decoded = Directory.parse(reply.body, tolerant=True)
        except DirectoryError as tolerant_error:
            problem = tolerant_error
        else:
            if not decoded.leniencies:  # tolerant reading needed no repair: nothing to report
                continue
            leniency = decoded.leniencies[0]
            ambiguous(
                leniency.ambiguity,
                f"{domain}'s directory parses only with a repair the draft's own example needs: "
                f"{leniency.path}: {leniency.detail} (strict reading: {problem})",
            )
        if problem.reason == "missing" and problem.endpoint not in needed:
            not_applicable(
                f"{domain}'s directory omits {problem.endpoint}, which its declared roles {list(sut.roles)} do not "
                "need; the role-specific directory checks judge which endpoints must be listed"
            )
        if problem.reason.startswith("not an https URL"):
            fail(f"{domain}'s directory: {problem}", requirement=HTTPS_URLS)
        fail(
            f"{domain}'s directory is not a JSON object of the endpoint URL templates: {problem}",
            requirement=WELL_KNOWN,
        )
