"""Parametrisations of the ``cast`` fixture: the same scenario with the SUT as hub and as follower."""

from __future__ import annotations

import pytest

AS_HUB = pytest.param("hub", marks=pytest.mark.role("hub"), id="sut-hub")
AS_FOLLOWER = pytest.param("follower", marks=pytest.mark.role("follower"), id="sut-follower")
BOTH_ROLES = [AS_HUB, AS_FOLLOWER]


def both_roles(function):
    """Run the decorated check once with the SUT as hub and once as follower."""
    return pytest.mark.parametrize("cast", BOTH_ROLES, indirect=True)(function)


def as_hub(function):
    return pytest.mark.parametrize("cast", [AS_HUB], indirect=True)(function)


def as_follower(function):
    return pytest.mark.parametrize("cast", [AS_FOLLOWER], indirect=True)(function)


def roles_judging(*, hub: tuple[str, ...], follower: tuple[str, ...]):
    """Run the decorated check in both roles, each variant judging its own requirement IDs: for a check
    whose hub variant observes a hub rule and whose follower variant a follower rule."""
    params = [
        pytest.param("hub", marks=[pytest.mark.role("hub"), pytest.mark.requirements(*hub)], id="sut-hub"),
        pytest.param("follower", marks=[pytest.mark.role("follower"), pytest.mark.requirements(*follower)],
                     id="sut-follower"),
    ]

    def decorate(function):
        return pytest.mark.parametrize("cast", params, indirect=True)(function)

    return decorate
