"""Validation of results documents against ``results.schema.json`` (JSON Schema 2020-12).

The schema is versioned: its ``$id`` ends with the version and every document names it in
``schema_version``. Readers accept only the versions they know (``READABLE_SCHEMA_VERSIONS``: the
current 2.1.0, 2.0.0 (the same without run_options and gate), and 1.1.0/1.0.0, whose definitions
the schema keeps and which the model converts on reading); a document of another version is rejected with a message that says so rather than with a
list of field errors.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from .model import READABLE_SCHEMA_VERSIONS, SCHEMA_ID

SCHEMA_FILE = Path(__file__).resolve().parent / "results.schema.json"


class ResultsSchemaError(ValueError):
    """A results document is not valid JSON or does not match the results schema."""


@cache
def load_results_schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    if schema["$id"] != SCHEMA_ID:
        raise RuntimeError(f"results.schema.json $id {schema['$id']!r} does not match the model's {SCHEMA_ID!r}")
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_results_schema())


def results_schema_errors(data: Any) -> list[str]:
    """Every schema violation of ``data`` as 'path: message' lines (empty when valid)."""
    if isinstance(data, dict) and "schema_version" in data and data["schema_version"] not in READABLE_SCHEMA_VERSIONS:
        known = ", ".join(READABLE_SCHEMA_VERSIONS)
        return [f"schema_version: {data['schema_version']!r} is not supported (this reader knows {known})"]
    errors = sorted(_validator().iter_errors(data), key=lambda err: [str(part) for part in err.absolute_path])
    return [f"{'/'.join(str(part) for part in err.absolute_path) or '(top level)'}: {err.message}" for err in errors]


def validate_results(data: Any) -> None:
    """Raise :class:`ResultsSchemaError` listing every violation when ``data`` is not a valid results document."""
    errors = results_schema_errors(data)
    if errors:
        raise ResultsSchemaError("results do not match results.schema.json:\n" + "\n".join(f"  - {e}" for e in errors))
