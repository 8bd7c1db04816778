"""Faults of the hub-transfer extension (docs/extensions/hub-transfer.md), new hub side."""

from __future__ import annotations

from .registry import define  # noqa: F401 - the faults below are defined with it

AREA = "portability"
