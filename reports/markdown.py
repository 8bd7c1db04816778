"""A Markdown summary for CI job summaries (``$GITHUB_STEP_SUMMARY``, GitLab MR notes).

Short by design: one table of profile verdicts, then the failures (FAIL and HARNESS_ERROR), the
warnings and the ambiguities, each list capped at ``limit`` rows with a count of the rest, and the
baseline gate when one was applied. Details belong in the HTML report.
"""

from __future__ import annotations

from collections.abc import Iterable

from .baseline import GateReport, Outcome
from .model import CheckRecord, ProfileVerdict, RunResults, Verdict

VERDICT_MARK = {
    ProfileVerdict.CONFORMANT: "✅",
    ProfileVerdict.CONFORMANT_WITH_WARNINGS: "⚠️",
    ProfileVerdict.NOT_CONFORMANT: "❌",
    ProfileVerdict.INCOMPLETE: "⏸️",
}


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes and HTML-significant characters escaped."""
    text = " ".join(str(text).split())
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(char, escaped)
    return text


def _check_rows(checks: Iterable[CheckRecord], limit: int) -> list[str]:
    checks = list(checks)
    rows = ["| Verdict | Check | Requirements | Message |", "| --- | --- | --- | --- |"]
    for check in checks[:limit]:
        rows.append(f"| {check.verdict} | {md_cell(check.check_id)} | {md_cell(', '.join(check.requirement_ids))} "
                    f"| {md_cell(check.message)} |")  # fmt: skip
    if len(checks) > limit:
        rows.append(f"\n…and {len(checks) - limit} more (see the HTML report).")
    return rows


def render_markdown(results: RunResults, *, gate: GateReport | None = None, limit: int = 25) -> str:
    manifest = results.sut_manifest
    sut = " ".join(str(manifest[key]) for key in ("name", "version") if key in manifest) or "SUT"
    lines = [
        f"## MIMI conformance: {md_cell(sut)}",
        "",
        f"Suite {md_cell(results.suite_version)} · drafts {md_cell(', '.join(results.draft_revisions))} · "
        f"seed {results.seed} · {results.started_at} → {results.ended_at} · "
        f"manifest sha256 `{results.sut_manifest_sha256[:16]}…`",
        "",
        "| Profile | Verdict | Requirements | Pass | MUST missed | SHOULD missed | Untested or N/A | Harness errors | Ambiguous |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for profile in results.profiles:
        c = profile.counts
        lines.append(
            f"| {md_cell(profile.title)} (`{profile.name}`) | {VERDICT_MARK[profile.verdict]} {profile.verdict} "
            f"| {c['requirements']} | {c['requirements_pass']} | {c['requirements_fail']} | {c['requirements_warn']} "
            f"| {c['requirements_untested'] + c['requirements_not_applicable']} | {c['requirements_harness_error']} "
            f"| {c['requirements_ambiguous']} |"
        )
    sections = (
        ("Failures", (Verdict.FAIL, Verdict.HARNESS_ERROR)),
        ("Warnings", (Verdict.WARN,)),
        ("Ambiguous (the draft contradicts itself; not a failure)", (Verdict.AMBIGUOUS,)),
    )
    for title, verdicts in sections:
        matching = [check for check in results.checks if check.verdict in verdicts]
        if matching:
            lines += ["", f"### {title} ({len(matching)})", "", *_check_rows(matching, limit)]
    if gate is not None:
        lines += ["", f"### Baseline gate: {'passed' if gate.passed else 'FAILED'}", ""]
        for outcome, label in (
            (Outcome.UNEXPECTED_FAILURE, "Unexpected failures"),
            (Outcome.STALE, "Stale baseline entries (now passing: remove them)"),
            (Outcome.EXPECTED_FAILURE, "Expected failures"),
            (Outcome.INTERMITTENT_PASS, "Declared intermittent, passed this time"),
            (Outcome.NOT_RUN, "Baseline entries for checks that did not run"),
        ):
            items = gate.of(outcome)
            if items:
                lines.append(f"- {label}: {len(items)}")
                lines += [f"  - `{md_cell(item.check_id)}`: {md_cell(item.detail)}" for item in items[:limit]]
        for name in gate.failing_profiles:
            lines.append(f"- Profile `{name}` is {gate.profile_verdicts[name]} with expected failures waived")
    return "\n".join(lines) + "\n"
