"""A Markdown summary for CI job summaries (``$GITHUB_STEP_SUMMARY``, GitLab MR notes).

Short by design: one table of profile verdicts, then the requirement outcomes that need attention:
failures (FAIL and HARNESS_ERROR), warnings, ambiguities and requirements a check stopped before
reaching, one row per requirement *per check* (the requirement's own outcome, not the check's
verdict), with the message and the draft's own sentence (and the suite's paraphrase of an IMPLIED
entry); each list capped at ``limit`` rows with a count of the rest, and the baseline gate when one
was applied. Details belong in the HTML report.
"""

from __future__ import annotations

from collections.abc import Iterable

from .baseline import GateReport, Outcome
from .model import CheckRecord, ProfileVerdict, RequirementInfo, RequirementJudgement, RequirementVerdict, RunResults

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


def draft_cell(req: RequirementInfo | None) -> str:
    """The draft's own sentence; for an IMPLIED entry followed by the suite's paraphrase."""
    if req is None:
        return ""
    text = f"“{md_cell(req.draft_text)}”"
    if req.paraphrase is not None:
        text += f" (suite's paraphrase: {md_cell(req.paraphrase)})"
    return text


def _outcome_rows(
    items: Iterable[tuple[CheckRecord, RequirementJudgement]], requirements: dict[str, RequirementInfo], limit: int
) -> list[str]:
    items = list(items)
    rows = ["| Outcome | Requirement | Check | Message | Draft sentence |", "| --- | --- | --- | --- | --- |"]
    for check, outcome in items[:limit]:
        message = outcome.message or check.message
        if outcome.ambiguity:
            message = f"{outcome.ambiguity}: {message}"
        rows.append(f"| {outcome.outcome} | {md_cell(outcome.requirement)} | {md_cell(check.check_id)} "
                    f"| {md_cell(message)} | {draft_cell(requirements.get(outcome.requirement))} |")  # fmt: skip
    if len(items) > limit:
        rows.append(f"\n…and {len(items) - limit} more (see the HTML report).")
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
        "| Profile | Verdict | Requirements | Pass | MUST missed | SHOULD missed | Untested, N/A or not reached "
        "| Harness errors | Ambiguous |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for profile in results.profiles:
        c = profile.counts
        lines.append(
            f"| {md_cell(profile.title)} (`{profile.name}`) | {VERDICT_MARK[profile.verdict]} {profile.verdict} "
            f"| {c['requirements']} | {c['requirements_pass']} | {c['requirements_fail']} | {c['requirements_warn']} "
            f"| {c['requirements_untested'] + c['requirements_not_applicable'] + c.get('requirements_not_reached', 0)} | {c['requirements_harness_error']} "
            f"| {c['requirements_ambiguous']} |"
        )
    sections = (
        ("Failures", (RequirementVerdict.FAIL, RequirementVerdict.HARNESS_ERROR)),
        ("Warnings", (RequirementVerdict.WARN,)),
        ("Ambiguous (the draft contradicts itself; not a failure)", (RequirementVerdict.AMBIGUOUS,)),
        ("Not reached (a check stopped before judging them)", (RequirementVerdict.NOT_REACHED,)),
    )
    requirements = {req.id: req for req in results.requirements}
    for title, wanted in sections:
        matching = [(c, o) for c in results.checks for o in c.scored_outcomes() if o.outcome in wanted]
        if matching:
            lines += ["", f"### {title} ({len(matching)})", "", *_outcome_rows(matching, requirements, limit)]
    if gate is not None:
        lines += ["", f"### Baseline gate: {'passed' if gate.passed else 'not passed'}", ""]
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
