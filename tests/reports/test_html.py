"""The HTML report, statically and as a person sees it in headless Chromium (after the inline JS ran).

Chromium: Debian's ``chromium`` package (``apt-get install -y chromium``), or the binary named by the
``CHROMIUM`` environment variable; without one, the browser tests skip with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_builders import REQUIREMENTS, check, mixed_results, results, write_transcript

from reports.baseline import gate, parse_baseline, record_gate
from reports.html import hex_dump, load_transcript, render_html, write_html

# --- static ----------------------------------------------------------------------------------


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    write_transcript(tmp_path, "transcripts/mtls.json")
    write_transcript(tmp_path, "transcripts/reuse.json")
    write_html(mixed_results(), tmp_path / "report.html")
    return tmp_path


def test_everything_is_escaped(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page  # from a decoded transcript
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<kp-1>" not in page and "KeyPackage &lt;kp-1&gt; returned twice &amp; not last resort" in page
    assert "&lt;unless&gt; it is a last resort &amp; flagged" in page  # a requirement sentence
    assert page.count("<script>") == 1  # only the report's own inline script


def test_no_external_assets(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert re.findall(r"""(?:src|href)\s*=\s*["']?(?!#)[^"'\s>]+""", page) == []
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page  # the CSP forbids fetching anything


def test_transcript_bytes_are_shown_in_hex_and_decoded(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "00000000  00 01 02 3c 6d 69 6d 69 20 26 20 63 6f 3e f0 f1  |...&lt;mimi &amp; co&gt;..|" in page
    assert "&#34;struct&#34;: &#34;IdentifierRequest&#34;" in page  # MarkupSafe escapes quotes as &#34;
    assert "status 403" in page


def test_transcripts_outside_the_results_folder_are_not_read(tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text('{"exchanges": []}')
    inner = tmp_path / "run"
    inner.mkdir()
    assert load_transcript(inner, "../secret.json")[0] is None
    assert "outside the results folder" in load_transcript(inner, "../secret.json")[1]
    assert "not found" in load_transcript(inner, "transcripts/missing.json")[1]


def test_a_transcript_of_the_wrong_shape_is_reported_not_raised(tmp_path):
    (tmp_path / "t.json").write_text('{"exchanges": [1, {"request": {"body_hex": "zz"}}]}')
    run = results([check("test_x", "FAIL", ["PROTO-TRANSPORT-MTLS"], transcript_ref="t.json")])
    page = render_html(run, base_dir=tmp_path)
    assert "exchange 1: not an object" in page
    assert "body not decodable" in page


def test_hex_dump_layout():
    assert hex_dump(b"AB\x00") == "00000000  41 42 00" + " " * 39 + "  |AB.|"


# --- in a browser ----------------------------------------------------------------------------


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (apt-get install -y chromium, or set CHROMIUM=/path/to/chrome)"
)


def run_chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
        "--window-size=1280,2000", *extra, url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    console_errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert console_errors == []
    return done


class Dom(HTMLParser):
    """What a reader sees: visible text (not hidden, not inside a closed <details> other than its
    summary, not script or style), and which checks and requirement rows the filter left shown."""

    VOID = {"meta", "br", "input", "link", "img", "hr"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool, str | None, bool]] = []  # (tag, hidden, id, closed details)
        self.visible_text: list[str] = []
        self.checks: dict[str, bool] = {}  # check article id -> shown
        self.rows: dict[str, bool] = {}  # requirement row id -> shown
        self.elements: dict[str, dict[str, str | None]] = {}  # attributes by id
        self.text_by_id: dict[str, list[str]] = {}  # visible text by enclosing element id
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        parent_hidden = bool(self.stack) and self.stack[-1][1]
        in_closed_details = bool(self.stack) and self.stack[-1][3] and tag != "summary"
        hidden = "hidden" in attributes or parent_hidden or in_closed_details or tag in ("script", "style", "title")
        if attributes.get("id"):
            self.elements[attributes["id"]] = attributes
        if tag == "article" and "check" in (attributes.get("class") or ""):
            self.checks[attributes["id"]] = not hidden
        if tag == "tr" and attributes.get("id", "").startswith("req-"):
            self.rows[attributes["id"]] = not hidden
        if tag not in self.VOID:
            closed_details = tag == "details" and "open" not in attributes
            self.stack.append((tag, hidden, attributes.get("id"), closed_details))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not self.stack or self.stack[-1][1] or not data.strip():
            return
        self.visible_text.append(" ".join(data.split()))
        for _, _, element_id, _ in self.stack:
            if element_id:
                self.text_by_id.setdefault(element_id, []).append(data)

    @property
    def text(self) -> str:
        return " ".join(self.visible_text)

    def text_of(self, element_id: str) -> str:
        return " ".join(" ".join(self.text_by_id.get(element_id, [])).split())


@needs_chromium
def test_report_as_shown_after_the_script_ran(report_dir, tmp_path):
    dom = Dom(run_chromium(tmp_path, (report_dir / "report.html").as_uri(), "--dump-dom").stdout)
    # The scorecard shows each profile's verdict.
    assert "MIMI hub core (protocol-06) hub-core-06 · SUT as hub NOT CONFORMANT" in dom.text
    assert "MIMI follower core (protocol-06) follower-core-06 · SUT as follower INCOMPLETE" in dom.text
    # The traceability table shows the normative sentence next to its checks.
    assert "Servers MUST authenticate each other with mutually-authenticated TLS." in dom.text
    assert REQUIREMENTS[2].text in dom.text
    # The script revealed the filters and counted everything as shown.
    assert "hidden" not in dom.elements["filters"]
    assert dom.text_of("filter-status") == "Showing 6 of 6 checks and 5 of 5 requirements"
    assert all(dom.checks.values()) and len(dom.checks) == 6
    # The failing check's transcript is open, with the bytes in hex; the passing one's is folded.
    hex_line = "00000000 00 01 02 3c 6d 69 6d 69 20 26 20 63 6f 3e f0 f1 |...<mimi & co>..|"
    assert hex_line in dom.text_of("check-3")
    assert "Transcript (1 exchange, transcripts/mtls.json)" in dom.text_of("check-1")
    assert "|...<mimi & co>..|" not in dom.text_of("check-1")


@needs_chromium
def test_filter_from_the_url_fragment(report_dir, tmp_path):
    url = (report_dir / "report.html").as_uri() + "#verdict=FAIL"
    dom = Dom(run_chromium(tmp_path, url, "--dump-dom").stdout)
    assert dom.text_of("filter-status") == "Showing 1 of 6 checks and 1 of 5 requirements (filtered)"
    shown = [check_id for check_id, visible in dom.checks.items() if visible]
    assert shown == ["check-3"]  # the FAIL check (test_keypackage_not_reused)
    assert [row for row, visible in dom.rows.items() if visible] == ["req-PROTO-KEYMAT-NO-REUSE"]
    assert "A KeyPackage MUST NOT be returned twice" in dom.text
    assert "Servers MUST authenticate each other" not in dom.text  # its row is filtered out


@needs_chromium
def test_filter_by_verdicts_and_area(report_dir, tmp_path):
    url = (report_dir / "report.html").as_uri() + "#verdict=WARN,NOT_APPLICABLE&area=discovery"
    dom = Dom(run_chromium(tmp_path, url, "--dump-dom").stdout)
    assert [c for c, visible in dom.checks.items() if visible] == ["check-2", "check-5"]
    assert dom.text_of("filter-status") == "Showing 2 of 6 checks and 2 of 5 requirements (filtered)"


def test_readable_without_javascript(report_dir):
    # Without JavaScript the browser shows the file's DOM as written (headless --dump-dom cannot serialise
    # with scripts off, so the file itself is parsed): nothing filtered away, no dead filter controls.
    dom = Dom((report_dir / "report.html").read_text(encoding="utf-8"))
    assert "hidden" in dom.elements["filters"]
    assert len(dom.checks) == 6 and all(dom.checks.values())
    assert len(dom.rows) == 5 and all(dom.rows.values())
    assert "NOT CONFORMANT" in dom.text and "INCOMPLETE" in dom.text


@needs_chromium
def test_screenshot_renders(report_dir, tmp_path):
    shot = tmp_path / "report.png"
    run_chromium(tmp_path, (report_dir / "report.html").as_uri(), f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a blank page compresses to a few kB


@needs_chromium
def test_baseline_marks_and_gate_as_shown(tmp_path):
    run = mixed_results()
    failing = next(c.check_id for c in run.checks if c.check_id.endswith("test_keypackage_not_reused"))
    baseline = parse_baseline({"version": 1, "expected_failures": [{"check": failing, "reason": "ticket <MIMI-7>"}]})
    gated = record_gate(run, gate(run, baseline), baseline, baseline_file="baseline.yaml")
    write_html(gated, tmp_path / "report.html")
    dom = Dom(run_chromium(tmp_path, (tmp_path / "report.html").as_uri(), "--dump-dom").stdout)
    assert dom.text_of("gate").startswith("Baseline gate: not passed with baseline baseline.yaml: 1 unexpected failure")
    assert "expected failure (baseline): ticket <MIMI-7>" in dom.text_of("check-3")
    assert "expected failure (baseline)" not in dom.text_of("check-4")  # the unwaived HARNESS_ERROR
    assert dom.elements["check-3"]["data-baseline"] == "expected-failure"
    # The filters still count every check.
    assert dom.text_of("filter-status") == "Showing 6 of 6 checks and 5 of 5 requirements"
