from __future__ import annotations

import copy
import json

import pytest
from report_builders import MANIFEST, judged, mixed_results, v1_document

from reports.model import SCHEMA_VERSION, CheckRecord, RunResults, Verdict, load_check_lines, manifest_sha256
from reports.schema import ResultsSchemaError, load_results_schema, results_schema_errors, validate_results


def good_document() -> dict:
    return json.loads(mixed_results().to_json())


def test_schema_id_and_version_agree_with_the_model():
    schema = load_results_schema()
    assert schema["$id"].endswith("/results/" + SCHEMA_VERSION)
    assert good_document()["schema_version"] == SCHEMA_VERSION


def test_round_trip_through_json_is_lossless():
    run = mixed_results()
    assert RunResults.from_json(run.to_json()) == run
    assert RunResults.from_json(run.to_json(indent=None)) == run


def test_a_good_document_validates():
    assert results_schema_errors(good_document()) == []


def test_manifest_hash_is_of_the_canonical_manifest():
    reordered = dict(reversed(list(MANIFEST.items())))
    assert manifest_sha256(reordered) == manifest_sha256(MANIFEST) == good_document()["sut_manifest_sha256"]


def _without(document: dict, key: str) -> dict:
    del document[key]
    return document


BAD_DOCUMENTS = {
    "missing seed": lambda d: _without(d, "seed"),
    "unknown top-level key": lambda d: d.update(extra=1) or d,
    "unknown verdict": lambda d: d["checks"][0].update(verdict="PASSED") or d,
    "negative duration": lambda d: d["checks"][0].update(duration_s=-1) or d,
    "check without requirements": lambda d: d["checks"][0].update(requirement_ids=[]) or d,
    "ambiguous without an AMB id": lambda d: d["checks"][5].update(ambiguity_ids=[]) or d,
    "bad requirement id": lambda d: d["checks"][0].update(requirement_ids=["proto transport"]) or d,
    "timestamp not UTC": lambda d: d.update(started_at="2026-11-22T23:00:00+01:00") or d,
    "uppercase manifest hash": lambda d: d.update(sut_manifest_sha256=d["sut_manifest_sha256"].upper()) or d,
    "unknown profile verdict": lambda d: d["profiles"][0].update(verdict="PASS") or d,
    "missing count": lambda d: _without(d["profiles"][0]["counts"], "checks_fail") and d,
    "seed as string": lambda d: d.update(seed="1234") or d,
}


@pytest.mark.parametrize("mutation", list(BAD_DOCUMENTS), ids=list(BAD_DOCUMENTS))
def test_bad_documents_are_rejected(mutation):
    document = BAD_DOCUMENTS[mutation](copy.deepcopy(good_document()))
    assert results_schema_errors(document), mutation
    with pytest.raises(ResultsSchemaError):
        validate_results(document)


def test_another_schema_version_is_named_as_such():
    document = good_document()
    document["schema_version"] = "3.0.0"
    assert results_schema_errors(document) == [
        "schema_version: '3.0.0' is not supported (this reader knows 2.1.0, 2.0.0, 1.1.0, 1.0.0)"
    ]


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_a_schema_1_x_document_still_reads_and_is_converted(version):
    # 1.x checks carry one verdict, charged to every requirement; the reader turns it into outcomes.
    document = v1_document(good_document(), version)
    assert results_schema_errors(document) == []
    run = RunResults.from_dict(document)
    assert run == mixed_results()  # every check's requirements had the check's verdict: nothing lost
    fail = run.checks[2]
    assert fail.outcomes == (judged("PROTO-KEYMAT-NO-REUSE", "FAIL", fail.message),)
    assert run.checks[5].outcomes[0].ambiguity == "AMB-CERT-SAN"
    assert results_schema_errors(run.as_dict()) == []  # written back as 2.0.0


def test_a_1_x_document_with_outcomes_or_a_2_0_0_document_without_them_is_rejected():
    old = v1_document(good_document())
    old["checks"][0]["outcomes"] = [{"requirement": "PROTO-TRANSPORT-MTLS", "outcome": "PASS"}]
    assert results_schema_errors(old)
    new = good_document()
    del new["checks"][0]["outcomes"]
    assert results_schema_errors(new)
    new = good_document()
    new["checks"][0]["outcomes"][0]["outcome"] = "NOT_JUDGED"
    assert results_schema_errors(new)
    new = good_document()
    del new["checks"][5]["outcomes"][0]["ambiguity"]  # an AMBIGUOUS outcome names its AMB- ID
    assert results_schema_errors(new)


def test_blocked_by_round_trips_and_is_omitted_when_empty():
    document = good_document()
    assert all("blocked_by" not in c for c in document["checks"])
    document["checks"][0]["blocked_by"] = ["PROTO-TRANSPORT-MTLS"]
    assert results_schema_errors(document) == []
    run = RunResults.from_dict(document)
    assert run.checks[0].blocked_by == ("PROTO-TRANSPORT-MTLS",)
    assert json.loads(run.to_json())["checks"][0]["blocked_by"] == ["PROTO-TRANSPORT-MTLS"]
    document["checks"][0]["blocked_by"] = ["not an id"]
    assert results_schema_errors(document)


def test_from_json_rejects_invalid_json_and_invalid_documents():
    with pytest.raises(ResultsSchemaError, match="not valid JSON"):
        RunResults.from_json("{")
    with pytest.raises(ResultsSchemaError, match="seed"):
        RunResults.from_json(json.dumps(_without(good_document(), "seed")))


def test_checks_from_the_plugin_json_lines(tmp_path):
    # The shape conformance.verdicts.CheckResult.as_dict writes, one object per line.
    suite_line = ('{"check_id": "s/test_a.py::test_x", "requirements": ["PROTO-TRANSPORT-MTLS"], "role": "hub", '
                  '"verdict": "AMBIGUOUS", "message": "m", "duration": 0.5, "transcript": "t/a.json", '
                  '"area": "transport", "ambiguity": "AMB-CERT-SAN", "scored_level": null}')  # fmt: skip
    record_line = json.dumps(mixed_results().checks[2].as_dict())
    path = tmp_path / "checks.jsonl"
    path.write_text(suite_line + "\n\n" + record_line + "\n")
    first, second = load_check_lines(path)
    assert first == CheckRecord("s/test_a.py::test_x", ("PROTO-TRANSPORT-MTLS",), "hub", "transport",
                                Verdict.AMBIGUOUS, "m", 0.5, "t/a.json", ("AMB-CERT-SAN",))  # fmt: skip
    assert first.outcomes == (judged("PROTO-TRANSPORT-MTLS", "AMBIGUOUS", "m", ambiguity="AMB-CERT-SAN"),)
    assert second == mixed_results().checks[2]
    path.write_text('{"check_id": "x"}\n')
    with pytest.raises(ValueError, match="checks.jsonl:1"):
        load_check_lines(path)


def test_per_requirement_outcomes_from_the_plugin_json_lines(tmp_path):
    line = {"check_id": "s/test_a.py::test_from", "requirements": ["PROTO-TRANSPORT-MTLS", "PROTO-KEYMAT-NO-REUSE"],
            "role": "hub", "verdict": "FAIL", "message": "bad From", "duration": 0.1, "transcript": None,
            "area": "transport", "ambiguity": None, "scored_level": "MUST", "blocked_by": [],
            "outcomes": [{"requirement": "PROTO-TRANSPORT-MTLS", "outcome": "FAIL", "message": "bad From",
                          "level": "MUST"},
                         {"requirement": "PROTO-KEYMAT-NO-REUSE", "outcome": "PASS",
                          "evidence": ["3 KeyPackages served, all distinct"]}]}  # fmt: skip
    path = tmp_path / "checks.jsonl"
    path.write_text(json.dumps(line) + "\n")
    (record,) = load_check_lines(path)
    assert record.outcomes == (
        judged("PROTO-TRANSPORT-MTLS", "FAIL", "bad From", level="MUST"),
        judged("PROTO-KEYMAT-NO-REUSE", "PASS", evidence=["3 KeyPackages served, all distinct"]),
    )
    assert record.as_dict()["outcomes"][1] == line["outcomes"][1]
