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
