"""The harness's JSON-lines file: the run header is returned apart, checks are read, bad lines named."""

from __future__ import annotations

import json

import pytest

from reports.model import load_check_file, load_check_lines


def _check(check_id: str) -> dict:
    return {
        "check_id": check_id,
        "requirement_ids": ["PROTO-TRANSPORT-MTLS"],
        "role": "any",
        "area": "transport",
        "verdict": "PASS",
        "message": "",
        "duration_s": 0.1,
    }


def test_run_header_is_returned_apart_from_the_checks(tmp_path) -> None:
    path = tmp_path / "checks.jsonl"
    lines = [{"kind": "run", "seed": 7}, _check("a"), {}, _check("b")]
    path.write_text("\n".join(json.dumps(x) if x else "" for x in lines) + "\n", encoding="utf-8")
    header, checks = load_check_file(path)
    assert header == {"kind": "run", "seed": 7}
    assert [c.check_id for c in checks] == ["a", "b"]
    assert [c.check_id for c in load_check_lines(path)] == ["a", "b"]


def test_a_line_that_is_not_a_check_is_named(tmp_path) -> None:
    path = tmp_path / "checks.jsonl"
    path.write_text(json.dumps(_check("a")) + "\n" + json.dumps({"kind": "check"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"checks.jsonl:2: not a check record"):
        load_check_file(path)
