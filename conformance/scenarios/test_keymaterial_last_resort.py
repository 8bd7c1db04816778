"""Key material, last-resort KeyPackages (draft-ietf-mimi-protocol-06 §5.2 with RFC 9420 §10 / §16.8):
the SUT as target provider hands out a client's last-resort KeyPackage only once its one-time ones are gone.

-06 §5.2: "Keying material provided from one response MUST NOT be provided in any other response." The
only exception MLS knows is the last-resort KeyPackage (RFC 9420 §10: "KeyPackages are intended to be
used only once and SHOULD NOT be reused except in the case of a 'last resort' KeyPackage"), which
draft-ietf-mls-extensions describes as one "that MAY be used more than once in scenarios where all other
KeyPackages have already been used". The requester side and its consent handling are those of
test_keymaterial.py (the same helpers).
"""

from __future__ import annotations

from collections import Counter

import pytest

from conformance.scenarios.roles import both_roles
from conformance.scenarios.test_keymaterial import (
    NO_REUSE,
    PUBLICATION_POINT,
    _is_last_resort,
    _key_packages,
    _ref,
    _requester,
    _target,
)
from conformance.verdicts import blocked, fail, miss, not_applicable, observed

LAST_RESORT_LAST = "PROTO-KEYMAT-LAST-RESORT-LAST"
ONE_TIME = 2  # one-time KeyPackages published next to the last-resort one
ASKS = ONE_TIME + 2  # two more answers, which may hand out the last-resort one (twice)


def _target_with_a_last_resort_key_package(cast, sut, mimi, mimi_as, names, recorder, one_time: int,
                                            consequence: str, requirement: str | None = None):
    """The requester and the target of test_keymaterial once the SUT published ``one_time`` one-time KeyPackages
    and a last-resort one for the target's client. NOT_APPLICABLE without publishKeyPackages; also when no
    last-resort KeyPackage was published (``consequence``: what that leaves the check), then for ``requirement``
    alone when given."""
    asker = _requester(cast, sut, mimi, mimi_as, names, recorder)
    target = _target(cast, asker)
    if not cast.sut.supports("publishKeyPackages"):
        not_applicable("the SUT's control API does not implement publishKeyPackages", operation="publishKeyPackages")
    published = cast.sut.publish_key_packages(target.client, one_time, replace=True, lastResort=True)
    if not published.get("lastResort"):
        not_applicable(f"publishKeyPackages with lastResort left {target.client} without a last-resort KeyPackage "
                       f"({published}): {consequence}", requirement=requirement)
    return asker, target


@pytest.mark.requirements(LAST_RESORT_LAST)
@both_roles
@pytest.mark.operations("createUser", "grantConsent", "publishKeyPackages", hub=("createRoom",))
def test_last_resort_key_package_only_after_the_one_time_ones(cast, sut, mimi, mimi_as, names, recorder):
    """A client with two one-time KeyPackages and a last-resort one: the first two keyMaterial answers
    hand out two distinct KeyPackages that are not the last-resort one (no last_resort_key_package
    extension, never handed out again in the two answers after)."""
    asker, target = _target_with_a_last_resort_key_package(cast, sut, mimi, mimi_as, names, recorder, ONE_TIME,
                                                           "there is nothing to order")
    served: list[tuple[int, bytes | None, object]] = []
    for attempt in range(1, ASKS + 1):
        _, _, response = asker.ask_consented(target.uri)
        kps = [kp for client, kp in _key_packages(response) if client == target.client]
        served.append((attempt, _ref(kps[0]) if kps else None, kps[0] if kps else None))
    counts = Counter(ref for _, ref, _ in served if ref is not None)
    for attempt, ref, kp in served[:ONE_TIME]:
        if kp is None:
            blocked(PUBLICATION_POINT, f"answer {attempt} handed out no KeyPackage for {target.client}, which had "
                                       f"{ONE_TIME} one-time KeyPackages and a last-resort one published")
        if _is_last_resort(kp) or counts[ref] > 1:
            why = "carries the last_resort_key_package extension" if _is_last_resort(kp) else \
                f"was handed out {counts[ref]} times (the reusable last-resort one)"
            miss(LAST_RESORT_LAST, f"answer {attempt}, with one-time KeyPackages still left ({ONE_TIME} published, "
                                   f"{attempt - 1} handed out before), handed out KeyPackage {ref.hex()[:16]}, which {why}")
            return
    later = ", ".join(
        f"#{attempt}: " + ("none" if kp is None else ref.hex()[:16] + (" (last resort)" if _is_last_resort(kp) else ""))
        for attempt, ref, kp in served[ONE_TIME:])
    observed(LAST_RESORT_LAST, f"answers 1-{ONE_TIME} handed out {ONE_TIME} distinct one-time KeyPackages (no "
                               f"last_resort extension, not handed out again); then {later}")


@pytest.mark.requirements(PUBLICATION_POINT)
@both_roles
@pytest.mark.operations("createUser", "grantConsent", "publishKeyPackages", hub=("createRoom",))
def test_last_resort_key_package_claimed_again_is_answered(cast, sut, mimi, mimi_as, names, recorder):
    """A client with one one-time KeyPackage and a last-resort one, asked for four times: every answer is a
    KeyMaterialResponse (HTTP 200), also once the last-resort KeyPackage has been handed out and is picked again.

    -06 §4.3.1: "Every MIMI server is a publication point for users' key material, via the keyMaterial endpoint";
    -06 §5.2: "The response contains a user status code that indicates keying material was returned for all the
    user's clients (success), that keying material was returned for some of their clients (partialSuccess), or a
    specific user code indicating failure", with the client code keyMaterialExhausted: "there was no keying
    material available for the specified client". Whether the last-resort KeyPackage is served again is left
    open (draft-ietf-mls-extensions: one "that MAY be used more than once in scenarios where all other
    KeyPackages have already been used"), so the last-resort one again, keyMaterialExhausted or any user code
    passes; what the SUT owes a valid request for its own consenting user is an answer with a user code, not an
    HTTP error."""
    asker, target = _target_with_a_last_resort_key_package(cast, sut, mimi, mimi_as, names, recorder, 1,
                                                           "there is none to claim again")
    answers: list[str] = []
    counts: Counter = Counter()
    last_resort_served = 0
    for attempt in range(1, 5):
        status, _, response = asker.ask_consented(target.uri)
        if response is None:
            fail(f"answer {attempt} (after {last_resort_served} hand-out(s) of the last-resort KeyPackage, answers "
                 f"so far: {answers}) is HTTP {status}, not a KeyMaterialResponse with a user code",
                 requirement=PUBLICATION_POINT)
        kps = [kp for client, kp in _key_packages(response) if client == target.client]
        for kp in kps:
            counts[_ref(kp)] += 1
            if _is_last_resort(kp) or counts[_ref(kp)] > 1:
                last_resort_served += 1
        answers.append(response.userStatus.name + (" (last resort)" if kps and (
            _is_last_resort(kps[0]) or counts[_ref(kps[0])] > 1) else ""))
    if not last_resort_served:
        not_applicable(f"the SUT never handed out the last-resort KeyPackage ({answers}): no claim picked it again",
                       requirement=PUBLICATION_POINT)
        return
    observed(PUBLICATION_POINT, f"four keyMaterial answers, each a KeyMaterialResponse: {', '.join(answers)}")


@pytest.mark.requirements(NO_REUSE)
@both_roles
@pytest.mark.operations("createUser", "grantConsent", "publishKeyPackages", hub=("createRoom",))
def test_key_package_served_again_is_marked_last_resort(cast, sut, mimi, mimi_as, names, recorder):
    """A client with one one-time KeyPackage and a last-resort one, asked for four times: a KeyPackage that
    more than one answer hands out carries the last_resort_key_package extension.

    -06 §5.2: "Keying material provided from one response MUST NOT be provided in any other response." The
    one exception MLS knows is the last-resort KeyPackage, which draft-ietf-mls-extensions marks with the
    last_resort_key_package extension as one "that MAY be used more than once in scenarios where all other
    KeyPackages have already been used"; a KeyPackage served again without that mark is one-time keying
    material provided in another response. The marked one served again, keyMaterialExhausted or any other
    answer passes."""
    asker, target = _target_with_a_last_resort_key_package(cast, sut, mimi, mimi_as, names, recorder, 1,
                                                           "no KeyPackage may be served again", requirement=NO_REUSE)
    first: dict[bytes, int] = {}
    again = 0
    for attempt in range(1, 5):
        _, _, response = asker.ask_consented(target.uri)
        for client, kp in _key_packages(response):
            if client != target.client:
                continue
            ref = _ref(kp)
            if ref in first:
                if not _is_last_resort(kp):
                    fail(f"answer {attempt} hands out the KeyPackage {ref.hex()} of {client} that answer {first[ref]} "
                         "already handed out, and it carries no last_resort_key_package extension",
                         requirement=NO_REUSE)
                again += 1
            first.setdefault(ref, attempt)
    if not first:
        not_applicable(f"no answer handed out a KeyPackage of {target.client}: nothing to compare", requirement=NO_REUSE)
        return
    observed(NO_REUSE, f"{len(first)} distinct KeyPackage(s) of {target.client} over four answers; "
                       + (f"{again} handed out again, each marked last_resort_key_package" if again
                          else "none handed out twice"))
