"""The requirement catalogue: the shipped files are valid and complete, and the schema and the loader
reject what they must (bad entries, duplicate IDs, misnamed files, wrong prefixes)."""

from __future__ import annotations

import copy
import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conformance.catalogue import (
    AREAS,
    PACKAGE_REQUIREMENTS_DIR,
    CatalogueError,
    load_catalogue,
    load_schema,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
AMBIGUITIES_DOC = REPO_ROOT / "docs" / "spec-ambiguities.md"

# The documents the catalogue must cover, one file each.
EXPECTED_DOCUMENTS = {
    "draft-ietf-mimi-protocol-06": ("ietf-draft", "PROTO"),
    "draft-ietf-mimi-room-policy-04": ("ietf-draft", "POLICY"),
    "draft-interop-mimi-discovery-requirements-latest": ("ietf-draft", "DISC"),
    "draft-ietf-mls-extensions-09": ("ietf-draft", "MLSEXT"),
    "draft-mahy-mimi-identity-latest": ("ietf-draft", "IDENT"),
    "ext-consent-modes-01": ("project-extension", "EXT-CONSENT"),
    "ext-hub-transfer-01": ("project-extension", "EXT-HUBXFER"),
}

# Ambiguity IDs other parts of the suite (the codec's tolerant decoding) rely on: each must be documented.
AMBIGUITIES_USED_BY_THE_CODEC = {
    "AMB-PROTOCOL-CONTEXT",
    "AMB-FANOUT-SELECT",
    "AMB-GROUPINFO-JOININGCODE",
    "AMB-SUBMIT-SUCCESS-CASE",
    "AMB-GROUPINFO-VERSION-FIELD",
    "AMB-DIRECTORY-JSON",
    "AMB-DIRECTORY-UPDATE-SLASH",
    "AMB-CONSENT-PATH-VARIABLES",
    "AMB-EXAMPLE-PATHS",
    "AMB-STRING-TYPE",
    "AMB-ROOMID-TYPE",
    "AMB-IDENTIFIERURI-CASE",
    "AMB-QUERYELEMENT-SELECT",
    "AMB-PSEUDONYM-KEY-LENGTH",
    "AMB-PSEUDONYM-CREDTYPE",
    "AMB-MLS-EXT-CODEPOINTS",
    "AMB-SEMIPRIVATE-WIREFORMAT",
    "AMB-APPSYNC-NAME",
    "AMB-KEYMATERIAL-CLIENTS-RULE",
    "AMB-EXTSENDERS-REMOVE-WORDING",
    "AMB-NOTIFY-201-ACCEPTED",
    "AMB-HANDSHAKE-SELECT",
    "AMB-RATCHET-TREE-OPTION-CASE",
    "AMB-ROOM-POLICY-REVISION",
    "AMB-FRANKING-COMPONENT-NAME",
    "AMB-OPTIONALITY-MANDATORY",
    "AMB-POLICY-UNDEFINED-TYPES",
    "AMB-PENDING-PROPOSAL-EXTENSION-CASE",
    "AMB-ASSET-PERMITTED-MEDIA-TYPES",
    "AMB-RATCHET-TREE-NODE-OPTIONAL",
}

# What a verbatim sentence of each level must contain (RFC 2119 / 8174 keywords).
KEYWORDS = {
    "MUST": ("MUST", "REQUIRED", "SHALL"),
    "SHOULD": ("SHOULD", "RECOMMENDED"),
    "MAY": ("MAY", "OPTIONAL"),
}

VALID_ENTRY = {
    "id": "PROTO-TEST-EXAMPLE",
    "section": "4.1",
    "text": "The TLS connection underlying the HTTPS connection MUST be mutually authenticated.",
    "level": "MUST",
    "area": "transport",
    "role": "any",
    "introduced": "06",
    "removed": None,
    "testable": True,
    "how": "Connect without a client certificate and expect a refusal.",
}


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def write_catalogue_file(directory: Path, doc_id: str, entries: str, prefix: str = "PROTO", revision: str = "06"):
    """Write a minimal catalogue file; ``entries`` is the YAML of the requirements list (indented 2)."""
    body = textwrap.dedent(
        f"""\
        document:
          id: {doc_id}
          title: A test document
          revision: "{revision}"
          kind: ietf-draft
          id_prefix: {prefix}
          source: {{repo: example/repo, path: draft.txt, commit: 0123456789abcdef0123456789abcdef01234567}}
          date: "2026-04-25"
        requirements:
        """
    )
    path = directory / f"{doc_id}.yaml"
    path.write_text(body + textwrap.indent(textwrap.dedent(entries), "  "), encoding="utf-8")
    return path


def entry_yaml(req_id: str, **overrides: str) -> str:
    fields = {
        "id": req_id,
        "section": '"4.1"',
        "text": "The TLS connection underlying the HTTPS connection MUST be mutually authenticated.",
        "level": "MUST",
        "area": "transport",
        "role": "any",
        "introduced": '"06"',
        "removed": "null",
        "testable": "true",
        "how": "Connect without a client certificate and expect a refusal.",
    }
    fields.update(overrides)
    lines = [f"- {'id'}: {fields.pop('id')}"] + [f"  {key}: {value}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


# --- the shipped catalogue -------------------------------------------------------------------------


def test_every_expected_document_has_its_own_file(catalogue):
    assert set(catalogue.documents) == set(EXPECTED_DOCUMENTS)
    for doc_id, (kind, prefix) in EXPECTED_DOCUMENTS.items():
        document = catalogue.documents[doc_id]
        assert document.file == PACKAGE_REQUIREMENTS_DIR / f"{doc_id}.yaml"
        assert (document.kind, document.id_prefix) == (kind, prefix)
        if kind == "ietf-draft":
            assert document.commit, f"{doc_id} must pin the commit that was read"


def test_catalogue_has_at_least_120_requirements_from_the_three_core_sources(catalogue):
    per_document = Counter(req.source for req in catalogue)
    core = (
        "draft-ietf-mimi-protocol-06",
        "draft-ietf-mimi-room-policy-04",
        "draft-interop-mimi-discovery-requirements-latest",
    )
    assert sum(per_document[doc] for doc in core) >= 120
    assert all(per_document[doc] > 0 for doc in core)


def test_every_area_is_used(catalogue):
    assert {req.area for req in catalogue} == set(AREAS)


def test_requirement_ids_are_names_not_section_numbers(catalogue):
    for req in catalogue:
        document = catalogue.documents[req.source]
        slug = req.id[len(document.id_prefix) + 1 :]
        # The first segment starts with a letter, so "PROTO-5-3" style section numbers are impossible.
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)*", slug), req.id
        if re.fullmatch(r"[0-9][0-9.]*", req.section) and "." in req.section:
            dashed = req.section.replace(".", "-")
            assert dashed not in req.id, f"{req.id} embeds its section number {req.section}"


def test_verbatim_sentences_carry_the_keyword_of_their_level(catalogue):
    for req in catalogue:
        if req.level == "IMPLIED":
            assert req.derived_from, f"{req.id}: IMPLIED needs the verbatim passage in derived_from"
            continue
        if catalogue.documents[req.source].kind != "ietf-draft":
            continue
        assert any(word in req.text for word in KEYWORDS[req.level]), f"{req.id}: {req.text!r}"
        if req.negative:
            assert "NOT" in req.text, f"{req.id}: negative requirement without NOT"


def test_every_referenced_ambiguity_is_documented(catalogue):
    documented = set(re.findall(r"^### (AMB-[A-Z0-9-]+)", AMBIGUITIES_DOC.read_text(encoding="utf-8"), re.M))
    assert catalogue.ambiguity_ids() <= documented, catalogue.ambiguity_ids() - documented
    assert AMBIGUITIES_USED_BY_THE_CODEC <= documented, AMBIGUITIES_USED_BY_THE_CODEC - documented


def test_every_documented_ambiguity_has_the_required_parts():
    text = AMBIGUITIES_DOC.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    assert len(sections) >= len(AMBIGUITIES_USED_BY_THE_CODEC)
    for section in sections:
        amb_id = section.split("\n", 1)[0].strip()
        for part in ("**Where**", "**Contradiction**", "**Reading**", "**Reported as**", "**Wire impact**"):
            assert part in section, f"{amb_id} lacks {part}"


# --- the schema rejects bad entries ----------------------------------------------------------------


@pytest.fixture(scope="module")
def validator():
    return Draft202012Validator(load_schema())


def one_entry_file(entry: dict) -> dict:
    return {
        "document": {
            "id": "draft-test-06",
            "title": "A test document",
            "revision": "06",
            "kind": "ietf-draft",
            "id_prefix": "PROTO",
            "source": {"repo": "example/repo", "path": "draft.txt", "commit": "0123abc"},
            "date": "2026-04-25",
        },
        "requirements": [entry],
    }


def test_schema_accepts_a_valid_entry(validator):
    assert list(validator.iter_errors(one_entry_file(VALID_ENTRY))) == []


@pytest.mark.parametrize(
    "change",
    [
        {"level": "MUST NOT"},  # negatives are level MUST with negative: true
        {"area": "networking"},
        {"role": "client"},
        {"id": "PROTO-5-3"},  # a section number is not an ID
        {"id": "proto-transport-mtls"},
        {"id": "RFC-TRANSPORT-MTLS"},
        {"introduced": 6},
        {"removed": "six"},
        {"testable": "yes"},
        {"how": ""},
        {"ambiguities": ["not-an-id"]},
        {"unexpected_field": 1},
    ],
)
def test_schema_rejects_a_bad_entry(validator, change):
    entry = {**copy.deepcopy(VALID_ENTRY), **change}
    assert list(validator.iter_errors(one_entry_file(entry))), f"schema accepted {change}"


@pytest.mark.parametrize(
    "missing", ["id", "section", "text", "level", "area", "role", "introduced", "removed", "testable", "how"]
)
def test_schema_rejects_an_entry_missing_a_field(validator, missing):
    entry = {k: v for k, v in VALID_ENTRY.items() if k != missing}
    assert list(validator.iter_errors(one_entry_file(entry))), f"schema accepted an entry without {missing}"


def test_schema_requires_the_source_passage_of_implied_requirements(validator):
    implied = {**VALID_ENTRY, "level": "IMPLIED", "text": "A paraphrase of behaviour the draft implies."}
    assert list(validator.iter_errors(one_entry_file(implied)))
    implied["derived_from"] = "The verbatim passage the paraphrase derives from."
    assert list(validator.iter_errors(one_entry_file(implied))) == []


# --- the loader rejects bad files ------------------------------------------------------------------


def test_loader_reads_a_valid_directory(tmp_path):
    write_catalogue_file(tmp_path, "draft-test-06", entry_yaml("PROTO-TEST-ONE") + entry_yaml("PROTO-TEST-TWO"))
    catalogue = load_catalogue(tmp_path)
    assert set(catalogue.requirements) == {"PROTO-TEST-ONE", "PROTO-TEST-TWO"}
    req = catalogue.requirements["PROTO-TEST-ONE"]
    assert (req.source, req.revision, req.level, req.negative, req.keyword) == (
        "draft-test-06",
        "06",
        "MUST",
        False,
        "MUST",
    )
    assert catalogue.documents["draft-test-06"].date == "2026-04-25"  # kept as a string


def test_loader_names_file_and_entry_on_a_schema_error(tmp_path):
    write_catalogue_file(
        tmp_path, "draft-test-06", entry_yaml("PROTO-TEST-ONE") + entry_yaml("PROTO-TEST-BAD", level="MUSTN'T")
    )
    with pytest.raises(CatalogueError) as excinfo:
        load_catalogue(tmp_path)
    message = str(excinfo.value)
    assert "draft-test-06.yaml" in message
    assert "requirements[1] (PROTO-TEST-BAD)" in message
    assert "level" in message


def test_loader_rejects_a_duplicate_id_across_files(tmp_path):
    write_catalogue_file(tmp_path, "draft-test-06", entry_yaml("PROTO-TEST-SAME"))
    write_catalogue_file(tmp_path, "draft-test-07", entry_yaml("PROTO-TEST-SAME"), revision="07")
    with pytest.raises(CatalogueError, match=r"draft-test-07\.yaml.*PROTO-TEST-SAME.*duplicate.*draft-test-06\.yaml"):
        load_catalogue(tmp_path)


def test_loader_rejects_a_duplicate_id_within_a_file(tmp_path):
    write_catalogue_file(tmp_path, "draft-test-06", entry_yaml("PROTO-TEST-SAME") + entry_yaml("PROTO-TEST-SAME"))
    with pytest.raises(CatalogueError, match=r"requirements\[1\] \(PROTO-TEST-SAME\): duplicate"):
        load_catalogue(tmp_path)


def test_loader_rejects_a_file_not_named_after_its_document(tmp_path):
    path = write_catalogue_file(tmp_path, "draft-test-06", entry_yaml("PROTO-TEST-ONE"))
    path.rename(tmp_path / "something-else.yaml")
    with pytest.raises(CatalogueError, match=r"something-else\.yaml.*does not match the file name"):
        load_catalogue(tmp_path)


def test_loader_rejects_an_id_with_another_documents_prefix(tmp_path):
    write_catalogue_file(tmp_path, "draft-test-06", entry_yaml("POLICY-TEST-ONE"))
    with pytest.raises(CatalogueError, match=r"POLICY-TEST-ONE.*must start with PROTO-"):
        load_catalogue(tmp_path)


def test_loader_rejects_a_requirement_introduced_after_its_document(tmp_path):
    write_catalogue_file(tmp_path, "draft-test-06", entry_yaml("PROTO-TEST-ONE", introduced='"07"'))
    with pytest.raises(CatalogueError, match=r"introduced in '07'"):
        load_catalogue(tmp_path)


def test_loader_rejects_duplicate_yaml_keys(tmp_path):
    write_catalogue_file(tmp_path, "draft-test-06", entry_yaml("PROTO-TEST-ONE") + "  level: SHOULD\n")
    with pytest.raises(CatalogueError, match=r"duplicate key 'level'"):
        load_catalogue(tmp_path)


def test_loader_rejects_an_unquoted_revision(tmp_path):
    # YAML reads 06 as the integer 6: the schema must catch it rather than the loader guessing.
    write_catalogue_file(tmp_path, "draft-test-06", entry_yaml("PROTO-TEST-ONE", introduced="06"))
    with pytest.raises(CatalogueError, match=r"introduced"):
        load_catalogue(tmp_path)


def test_loader_rejects_an_empty_directory(tmp_path):
    with pytest.raises(CatalogueError, match="no requirement catalogue files"):
        load_catalogue(tmp_path)
