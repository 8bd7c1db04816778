"""The requirement catalogue: one YAML file per source document and revision.

Each file under ``conformance/requirements/`` holds a ``document`` header (what was read: repository,
path, commit) and a ``requirements`` list. Every file is validated against
``requirement-catalogue.schema.json`` (JSON Schema 2020-12); on top of the schema the loader checks
what a per-file schema cannot see:

- the file is named after its document id (``draft-ietf-mimi-protocol-06.yaml``);
- requirement IDs are unique across the whole catalogue, and document ids are unique;
- every requirement ID carries its document family's prefix (``PROTO-`` for mimi-protocol, ...);
- a requirement is not introduced in a revision later than the document it is read from.

Any violation raises :class:`CatalogueError` naming the file and the entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

PACKAGE_REQUIREMENTS_DIR = Path(__file__).resolve().parent / "requirements"
SCHEMA_FILE_NAME = "requirement-catalogue.schema.json"

LEVELS = ("MUST", "SHOULD", "MAY", "IMPLIED")
AREAS = (
    "transport",
    "discovery",
    "keymaterial",
    "consent",
    "room-state",
    "removal",
    "fanout",
    "privacy",
    "assets",
    "multi-device",
    "portability",
)
ROLES = ("hub", "follower", "any")


class CatalogueError(ValueError):
    """The catalogue on disk is invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class SourceDocument:
    """The document header of one catalogue file: exactly which text the requirements were read from."""

    id: str
    title: str
    revision: str
    kind: str
    id_prefix: str
    repo: str
    path: str
    commit: str | None
    date: str | None
    notes: str | None
    file: Path


@dataclass(frozen=True)
class Requirement:
    """One testable statement, scored by profiles and judged by checks that cite its ID."""

    id: str
    source: str  # document id, e.g. "draft-ietf-mimi-protocol-06"
    revision: str
    section: str
    text: str
    level: str  # MUST | SHOULD | MAY | IMPLIED
    negative: bool  # True for MUST NOT / SHOULD NOT
    area: str
    role: str  # hub | follower | any
    introduced: str
    removed: str | None
    testable: bool
    how: str
    ambiguities: tuple[str, ...] = ()
    derived_from: str | None = None
    notes: str | None = None

    @property
    def keyword(self) -> str:
        """The level as the draft would write it, e.g. 'MUST NOT'."""
        if self.level == "IMPLIED":
            return "IMPLIED"
        return f"{self.level} NOT" if self.negative else self.level


@dataclass
class Catalogue:
    requirements: dict[str, Requirement] = field(default_factory=dict)
    documents: dict[str, SourceDocument] = field(default_factory=dict)

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self.requirements

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self.requirements.values())

    def __len__(self) -> int:
        return len(self.requirements)

    def from_document(self, document_id: str) -> list[Requirement]:
        return [req for req in self.requirements.values() if req.source == document_id]

    def ambiguity_ids(self) -> set[str]:
        return {amb for req in self.requirements.values() for amb in req.ambiguities}


# The C loader where PyYAML has it (about 6x faster: every check process loads the catalogue).
_BaseSafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StringDatesLoader(_BaseSafeLoader):
    """SafeLoader that keeps dates as strings (the schema wants 'YYYY-MM-DD', not datetime.date) and
    refuses duplicate mapping keys (PyYAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StringDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> Any:
    """Parse one YAML file with dates kept as strings; a syntax error names the file."""
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_StringDatesLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path.name}: not valid YAML: {exc}") from exc


def load_schema() -> dict[str, Any]:
    with (PACKAGE_REQUIREMENTS_DIR / SCHEMA_FILE_NAME).open(encoding="utf-8") as handle:
        schema = json.load(handle)
    Draft202012Validator.check_schema(schema)
    return schema


def _describe_location(data: Any, path: list[Any]) -> str:
    """Human-readable location of a schema error, naming the requirement ID when there is one."""
    if len(path) >= 2 and path[0] == "requirements" and isinstance(path[1], int):
        entry = data["requirements"][path[1]]
        entry_id = entry.get("id") if isinstance(entry, dict) else None
        where = f"requirements[{path[1]}]" + (f" ({entry_id})" if entry_id else "")
        rest = "/".join(str(part) for part in path[2:])
        return f"{where}{' field ' + rest if rest else ''}"
    return "/".join(str(part) for part in path) or "(top level)"


def validate_file_data(data: Any, file_name: str, validator: Draft202012Validator) -> None:
    """Schema-validate one parsed catalogue file; all errors are reported together."""
    errors = sorted(validator.iter_errors(data), key=lambda err: list(err.absolute_path))
    if errors:
        lines = [f"  - {_describe_location(data, list(err.absolute_path))}: {err.message}" for err in errors]
        raise CatalogueError(f"{file_name}: does not match {SCHEMA_FILE_NAME}:\n" + "\n".join(lines))


def _revision_order(revision: str) -> int:
    return 10_000 if revision == "latest" else int(revision)


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Load and validate every ``*.yaml`` catalogue file in ``directory`` (default: the packaged one)."""
    directory = Path(directory) if directory is not None else PACKAGE_REQUIREMENTS_DIR
    if not directory.is_dir():
        raise CatalogueError(f"requirement catalogue directory not found: {directory}")
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogueError(f"no requirement catalogue files (*.yaml) in {directory}")
    validator = Draft202012Validator(load_schema())
    catalogue = Catalogue()
    where_defined: dict[str, Path] = {}
    for path in files:
        data = load_yaml(path)
        validate_file_data(data, path.name, validator)
        header = data["document"]
        doc_id = header["id"]
        if path.stem != doc_id:
            raise CatalogueError(f"{path.name}: document id {doc_id!r} does not match the file name ({doc_id}.yaml)")
        if not doc_id.endswith("-" + header["revision"]):
            raise CatalogueError(f"{path.name}: document id {doc_id!r} does not end with its revision")
        if doc_id in catalogue.documents:
            raise CatalogueError(f"{path.name}: document {doc_id!r} already loaded from another file")
        source = header["source"]
        document = SourceDocument(
            id=doc_id,
            title=header["title"],
            revision=header["revision"],
            kind=header["kind"],
            id_prefix=header["id_prefix"],
            repo=source["repo"],
            path=source["path"],
            commit=source["commit"],
            date=header["date"],
            notes=header.get("notes"),
            file=path,
        )
        catalogue.documents[doc_id] = document
        for index, entry in enumerate(data["requirements"]):
            req_id = entry["id"]
            label = f"{path.name}: requirements[{index}] ({req_id})"
            if req_id in where_defined:
                first = where_defined[req_id]
                raise CatalogueError(f"{label}: duplicate requirement ID, already defined in {first.name}")
            if not req_id.startswith(document.id_prefix + "-"):
                raise CatalogueError(f"{label}: ID must start with {document.id_prefix}- for document {doc_id}")
            if _revision_order(entry["introduced"]) > _revision_order(document.revision):
                raise CatalogueError(
                    f"{label}: introduced in {entry['introduced']!r}, later than the document's "
                    f"revision {document.revision!r}"
                )
            where_defined[req_id] = path
            catalogue.requirements[req_id] = Requirement(
                id=req_id,
                source=doc_id,
                revision=document.revision,
                section=entry["section"],
                text=" ".join(entry["text"].split()),
                level=entry["level"],
                negative=bool(entry.get("negative", False)),
                area=entry["area"],
                role=entry["role"],
                introduced=entry["introduced"],
                removed=entry["removed"],
                testable=entry["testable"],
                how=entry["how"],
                ambiguities=tuple(entry.get("ambiguities", ())),
                derived_from=" ".join(entry["derived_from"].split()) if "derived_from" in entry else None,
                notes=entry.get("notes"),
            )
    return catalogue
