"""The SUT control API: the small HTTP+JSON contract through which the conformance suite makes a MIMI
provider act for its own users (provision users and clients, create rooms, add and remove participants,
send, read what a client received, grant or revoke consent).

The contract is the OpenAPI 3.1 document ``openapi.yaml`` next to this file; ``docs/control-api.md`` is
the vendor guide. The reference peer serves the document and implements the operations, so that it can
itself be the system under test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

OPENAPI_PATH = Path(__file__).resolve().parent / "openapi.yaml"
# The contract version the document defines (its info.version), which a SUT reports in GET /v1/info.
CONTRACT_VERSION = "1.1.0"

__all__ = ["CONTRACT_VERSION", "OPENAPI_PATH", "load_openapi"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a mapping key given twice (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_openapi(path: Path = OPENAPI_PATH) -> dict[str, Any]:
    """The control API's OpenAPI document, parsed (a fresh copy on every call: callers may mutate it).

    Raises ``yaml.YAMLError`` for invalid YAML or a duplicated key, ``ValueError`` when the document is
    not a mapping.
    """
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_UniqueKeyLoader)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    return document
