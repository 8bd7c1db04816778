from __future__ import annotations

import xml.etree.ElementTree as ET

from report_builders import mixed_results, write_transcript

from reports.model import RunResults
from reports.signing import generate_key, verify
from reports.write import write_reports


def test_write_reports_writes_every_output(tmp_path):
    write_transcript(tmp_path, "transcripts/reuse.json")
    written = write_reports(mixed_results(), tmp_path, signing_key=generate_key())
    assert sorted(written) == ["badge:follower-core-06", "badge:hub-core-06", "html", "junit", "markdown", "results"]
    assert verify(written["results"].read_bytes())[0]
    assert RunResults.from_json(written["results"].read_text()).signature is not None
    ET.parse(written["junit"])
    ET.parse(written["badge:hub-core-06"])
    html = written["html"].read_text()
    assert "00000000  00 01 02 3c" in html  # the transcript was found next to results.json
    assert written["markdown"].read_text().startswith("## MIMI conformance")
