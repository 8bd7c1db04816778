"""Allowed variants of the reference peer (effect): behaviours the draft permits that differ from the
reference default (see :func:`.registry.define_variant`). Every check must pass with each of them on."""

from .registry import define_variant  # noqa: F401 - used as variants are added

AREA = "effect"
