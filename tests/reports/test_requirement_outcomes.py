"""Per-requirement outcomes through every report: HTML, Markdown, JUnit, verify and diff (1.x files too)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from report_builders import HUB_PROFILE, check, hub_checks, judged, results, v1_document

from reports.diff import diff_results, diff_results_files, format_results_diff
from reports.html import render_html
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.model import ProfileInfo, RequirementStatus, RunResults
from reports.signing import generate_key, key_id, raw_public_key, sign, signed_bytes, verify

MTLS, HTTPS, REUSE = "PROTO-TRANSPORT-MTLS", "PROTO-DIRECTORY-HTTPS-URLS", "PROTO-KEYMAT-NO-REUSE"
HTTPS_ONLY = "PROTO-TRANSPORT-HTTPS-ONLY"  # IMPLIED: text paraphrases, derived_from quotes the draft
PROFILE = ProfileInfo("hub-core-06", "MIMI hub core (protocol-06)", "hub", ("draft-ietf-mimi-protocol-06",),
                      {**HUB_PROFILE.requirements, HTTPS_ONLY: "MUST"})  # fmt: skip


def three_requirement_run() -> RunResults:
    outcomes = [judged(MTLS, "FAIL", "From header is not an addr-spec", level="MUST"),
                judged(HTTPS_ONLY, "PASS", evidence=["4 requests, all on the TLS listener"]),
                judged(REUSE, "NOT_REACHED", "stopped: PROTO-TRANSPORT-MTLS missed")]  # fmt: skip
    three = check("test_three", "FAIL", [MTLS, HTTPS_ONLY, REUSE], outcomes=outcomes, message="From header ...")
    return results([three, hub_checks()[1]], (PROFILE,))


def test_the_three_requirement_check_is_scored_per_requirement():
    (profile,) = three_requirement_run().profiles
    statuses = {o.id: o.status for o in profile.requirements}
    assert statuses == {MTLS: RequirementStatus.FAIL, HTTPS: RequirementStatus.PASS,
                        REUSE: RequirementStatus.NOT_REACHED, HTTPS_ONLY: RequirementStatus.PASS}  # fmt: skip
    assert profile.counts["requirements_not_reached"] == 1


def test_the_html_shows_the_drafts_sentence_next_to_the_paraphrase_with_evidence_and_messages():
    run = three_requirement_run()
    page = render_html(run)
    # an IMPLIED entry: the draft's passage and the suite's paraphrase, both in its row
    row = page.split(f'id="req-{HTTPS_ONLY}"', 1)[1].split("</tr>", 1)[0]
    assert "MIMI servers communicate using HTTPS. [...] The MIMI transport is based on HTTPS over" in row
    assert "only over HTTPS (TLS), never over cleartext HTTP." in row
    assert row.index("MIMI servers communicate") < row.index("never over cleartext HTTP")  # the draft first
    assert "4 requests, all on the TLS listener" in row  # the evidence of the PASS
    # a verbatim entry: its text is the draft's sentence
    row = page.split(f'id="req-{MTLS}"', 1)[1].split("</tr>", 1)[0]
    assert "Draft, verbatim" in row and "Servers MUST authenticate each other" in row
    assert "From header is not an addr-spec" in row and "v-FAIL" in row
    row = page.split(f'id="req-{REUSE}"', 1)[1].split("</tr>", 1)[0]
    assert "v-NOT_REACHED" in row and "v-FAIL" not in row.split('class="checklist"', 1)[1]
    assert "stopped: PROTO-TRANSPORT-MTLS missed" in row


def test_markdown_lists_misses_per_requirement_with_the_drafts_sentence():
    text = render_markdown(three_requirement_run())
    assert "### Failures (1)" in text  # the MTLS miss only, not the check's other requirements
    (row,) = [line for line in text.splitlines() if line.startswith("| FAIL |")]
    assert f"| {MTLS} |" in row and "Servers MUST authenticate each other" in row
    assert "### Not reached (a check stopped before judging them) (1)" in text
    warn = check("test_https_only", "WARN", [HTTPS_ONLY], outcomes=[judged(HTTPS_ONLY, "WARN", "cleartext served")])
    text = render_markdown(results([warn], (PROFILE,)))
    (row,) = [line for line in text.splitlines() if line.startswith("| WARN |")]
    assert "“MIMI servers communicate using HTTPS." in row and "suite's paraphrase: MIMI servers exchange" in row


def test_junit_carries_each_requirements_outcome():
    root = ET.fromstring(render_junit(three_requirement_run()).encode())
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_three")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props[f"outcome:{MTLS}"] == "FAIL"
    assert props[f"outcome:{HTTPS_ONLY}"] == "PASS"
    assert props[f"outcome:{REUSE}"] == "NOT_REACHED"
    text = case.find("failure").text
    assert f"{MTLS}: FAIL: From header is not an addr-spec" in text
    assert f"{HTTPS_ONLY}: PASS: 4 requests, all on the TLS listener" in text


def _signed_v1(run: RunResults, version: str = "1.1.0") -> bytes:
    document = v1_document(json.loads(run.to_json()), version)
    key = generate_key()
    value = key.sign(signed_bytes(document, "json-sorted-keys-compact-utf8")).hex()
    document["signature"] = {"algorithm": "Ed25519", "canonicalization": "json-sorted-keys-compact-utf8",
                             "public_key": raw_public_key(key).hex(), "key_id": key_id(key), "value": value}  # fmt: skip
    return json.dumps(document).encode()


def test_a_signed_1_x_file_still_verifies_and_a_tampered_one_does_not():
    run = results(hub_checks(reuse="FAIL", https="WARN"))
    for version in ("1.0.0", "1.1.0"):
        ok, reason = verify(_signed_v1(run, version))
        assert ok and reason.startswith("valid signature by key"), reason
    document = json.loads(_signed_v1(run))
    document["checks"][2]["verdict"] = "PASS"  # the profile verdict no longer follows
    ok, reason = verify(json.dumps(document))
    assert not ok and "does not follow" in reason
    assert verify(sign(run, generate_key()).to_json())[0]  # and 2.0.0, for comparison


def test_a_1_x_file_diffs_against_a_2_0_0_file_per_requirement(tmp_path):
    old_run = results(hub_checks())
    old = tmp_path / "old.json"
    old.write_bytes(_signed_v1(old_run))
    # New: one check now judges MTLS and REUSE; REUSE fails, MTLS still passes.
    two = check("test_mtls_required", "FAIL", [MTLS, REUSE],
                outcomes=[judged(MTLS, "PASS", evidence=["ok"]), judged(REUSE, "FAIL", "kp-1 twice")])  # fmt: skip
    new_run = results([two, *hub_checks()[1:]])
    new = tmp_path / "new.json"
    new.write_text(new_run.to_json())
    code, text = diff_results_files(old, new, fail_on_regression=True)
    assert code == 1, text
    diff = diff_results(RunResults.from_json(old.read_bytes()), new_run)
    changed = {req.requirement_id: [(c.check_id.rsplit("::", 1)[1], c.old, c.new) for c in req.checks]
               for req in diff.requirements}  # fmt: skip
    # MTLS's outcome in test_mtls_required is PASS in both: not reported, although the check's verdict changed
    assert changed == {REUSE: [("test_mtls_required", None, "FAIL")]}
    assert "PROTO-KEYMAT-NO-REUSE" in format_results_diff(diff) and f"{MTLS}\n" not in format_results_diff(diff)
