"""reports/ stays below the suite, and the real catalogue and profiles fit the results model."""

from __future__ import annotations

import ast
from pathlib import Path

import reports
from reports.diff import diff_catalogues, requirement_infos
from reports.model import ProfileInfo, ProfileVerdict, RunResults, utc_timestamp
from reports.schema import results_schema_errors
from reports.scoring import score_run

REPORTS_DIR = Path(reports.__file__).resolve().parent


def test_reports_imports_neither_the_suite_nor_the_reference_peer():
    offenders = []
    for path in sorted(REPORTS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in ("conformance", "reference_peer")
            ]
    assert offenders == []


def test_the_shipped_catalogue_and_profiles_score_into_valid_results():
    # The suite side adapts its own objects; reports only sees plain data.
    from conformance.catalogue import load_catalogue
    from conformance.profiles import load_profiles

    catalogue = load_catalogue()
    profiles = load_profiles(catalogue)
    infos = requirement_infos(list(catalogue))
    run = score_run(
        suite_version="0.1.0",
        draft_revisions=sorted({d for p in profiles.values() for d in p.drafts}),
        sut_manifest={"name": "x"},
        seed=0,
        started_at="2026-11-22T23:00:00Z",
        ended_at="2026-11-22T23:00:01Z",
        checks=[],
        profiles=[ProfileInfo(p.name, p.title, p.role, tuple(p.drafts), p.requirements) for p in profiles.values()],
        requirements=infos,
    )
    assert results_schema_errors(RunResults.from_json(run.to_json()).as_dict()) == []
    assert {p.verdict for p in run.profiles} == {ProfileVerdict.INCOMPLETE}  # nothing was tested
    assert all(p.counts["requirements_untested"] == len(profiles[p.name].requirements) for p in run.profiles)
    assert diff_catalogues(infos, infos).empty


def test_utc_timestamp_matches_the_schema():
    from datetime import datetime, timedelta, timezone

    local = datetime(2026, 11, 23, 1, 2, 3, 450000, tzinfo=timezone(timedelta(hours=2)))
    assert utc_timestamp(local) == "2026-11-22T23:02:03.450Z"
