"""The one-file HTML report: no external assets, readable without JavaScript, everything escaped.

Sections, top to bottom:

1. **Run**: SUT (name, vendor, version, domains), suite version, draft revisions, seed, start/end,
   manifest SHA-256, signature key id (the report does not verify it: ``mimi-conformance verify``).
2. **Scorecard**: one card per profile with its verdict and requirement/check counts.
3. **Ambiguities**: checks that came out AMBIGUOUS, with their AMB- IDs (reported apart: never a failure).
4. **Filters** (shown only when JavaScript runs): verdict checkboxes and an area menu, applied to
   the traceability table and the checks. The state lives in the URL fragment, so a filtered view
   can be linked: ``report.html#verdict=FAIL,HARNESS_ERROR&area=transport``.
5. **Traceability**: requirement -> the draft's own sentence (and, for an IMPLIED entry, the suite's
   paraphrase next to it) -> status in each profile -> each check with *the requirement's own
   outcome* in it: the evidence of a PASS, the message of a miss (scoring reads these outcomes, not
   the check's verdict).
6. **Checks**: per check its verdict, message, each requirement's outcome (evidence or message), and
   the transcript of the bytes exchanged (hex dump and decoded view), read from the file
   ``transcript_ref`` names.

Transcript files (written by the harness recorder; ``transcript_ref`` is relative to the folder of
results.json) are JSON objects::

    {"exchanges": [
       {"label": "...", "from": "hub.example", "to": "sut.example", "started_at": "...",
        "request":  {"method": "POST", "url": "https://...", "headers": [["From", "mimi@hub.example"]],
                     "body_hex": "0001..." | "body_b64": "AAE...", "decoded": <any JSON, optional>},
        "response": {"status": 201, "headers": [...], "body_hex": "...", "decoded": ...} | null,
        "error": "connection reset" (optional)}]}

``headers`` may also be an object. A transcript that is missing, outside the results folder, or not
in this shape is reported as such in the page, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from .model import CheckRecord, ProfileResult, RequirementInfo, RequirementJudgement, RequirementVerdict, RunResults

MAX_BODY_BYTES = 64 * 1024  # bytes shown per body; the rest is summarised
UNTESTED = "UNTESTED"
FILTER_VERDICTS = (*(str(v) for v in RequirementVerdict), UNTESTED)


def esc(value: object) -> str:
    """Escape for text and attribute values (quotes included)."""
    return escape(str(value), quote=True)


# --------------------------------------------------------------------------------------------
# Transcripts


def load_transcript(base_dir: Path | None, ref: str | None) -> tuple[dict[str, Any] | None, str]:
    """The transcript JSON ``ref`` names, or None and why not."""
    if not ref:
        return None, "no transcript recorded"
    if base_dir is None:
        return None, f"transcript {ref} (not embedded: the report was rendered without the results folder)"
    base = base_dir.resolve()
    path = (base / ref).resolve()
    if not path.is_relative_to(base):
        return None, f"transcript {ref} is outside the results folder; not read"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"transcript {ref} not found next to the results"
    except (OSError, ValueError) as exc:
        return None, f"transcript {ref} could not be read: {exc}"
    if not isinstance(data, dict) or not isinstance(data.get("exchanges"), list):
        return None, f"transcript {ref} has no 'exchanges' list"
    return data, ""


def _body_bytes(message: Mapping[str, Any]) -> bytes | None:
    try:
        if isinstance(message.get("body_hex"), str):
            return bytes.fromhex(message["body_hex"])
        if isinstance(message.get("body_b64"), str):
            return base64.b64decode(message["body_b64"], validate=True)
    except (ValueError, binascii.Error):
        return None
    return None


def hex_dump(data: bytes) -> str:
    """Offset, 16 hex bytes, printable ASCII: the familiar ``hexdump -C`` layout."""
    lines = []
    shown = data[:MAX_BODY_BYTES]
    for offset in range(0, len(shown), 16):
        chunk = shown[offset : offset + 16]
        hex_part = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in chunk)
        lines.append(f"{offset:08x}  {hex_part:<47}  |{text}|")
    if len(data) > len(shown):
        lines.append(f"… {len(data) - len(shown)} more bytes not shown")
    return "\n".join(lines)


def _headers(headers: Any) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    if isinstance(headers, list):
        return [(str(pair[0]), str(pair[1])) for pair in headers if isinstance(pair, list | tuple) and len(pair) == 2]
    return []


def _message_html(kind: str, message: Any) -> str:
    if not isinstance(message, Mapping):
        return f'<div class="msg"><h5>{esc(kind)}</h5><p class="muted">none</p></div>'
    if kind == "Request":
        first = f"{message.get('method', '?')} {message.get('url', '')}"
    else:
        first = f"status {message.get('status', '?')}"
    parts = [f'<div class="msg"><h5>{esc(kind)}: <code>{esc(first)}</code></h5>']
    headers = _headers(message.get("headers"))
    if headers:
        rows = "".join(f"<tr><th>{esc(name)}</th><td>{esc(value)}</td></tr>" for name, value in headers)
        parts.append(f'<table class="headers">{rows}</table>')
    body = _body_bytes(message)
    if body is None and ("body_hex" in message or "body_b64" in message):
        parts.append('<p class="muted">body not decodable (bad hex/base64)</p>')
    elif body is not None:
        parts.append(f'<p class="muted">body: {len(body)} bytes</p>')
        if body:
            parts.append(f'<pre class="hex" aria-label="{esc(kind)} bytes in hex">{esc(hex_dump(body))}</pre>')
    if message.get("decoded") is not None:
        decoded = json.dumps(message["decoded"], indent=2, ensure_ascii=False, default=str)
        parts.append(f'<h6>decoded</h6><pre class="decoded">{esc(decoded)}</pre>')
    elif body:
        try:
            parts.append(f'<h6>as text</h6><pre class="decoded">{esc(body.decode("utf-8"))}</pre>')
        except UnicodeDecodeError:
            pass
    parts.append("</div>")
    return "".join(parts)


def transcript_html(transcript: Mapping[str, Any]) -> str:
    exchanges = transcript["exchanges"]
    if not exchanges:
        return '<p class="muted">The transcript holds no exchange.</p>'
    out = []
    for number, exchange in enumerate(exchanges, 1):
        if not isinstance(exchange, Mapping):
            out.append(f'<p class="muted">exchange {number}: not an object</p>')
            continue
        label = exchange.get("label") or f"exchange {number}"
        route = " → ".join(str(exchange[key]) for key in ("from", "to") if exchange.get(key))
        when = exchange.get("started_at", "")
        out.append(
            f'<div class="exchange"><h4>{number}. {esc(label)} <span class="muted">{esc(route)} {esc(when)}</span></h4>'
        )
        out.append(_message_html("Request", exchange.get("request")))
        out.append(_message_html("Response", exchange.get("response")))
        if exchange.get("error"):
            out.append(f'<p class="error-note">error: {esc(exchange["error"])}</p>')
        out.append("</div>")
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Page parts


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _pill(verdict: str) -> str:
    return f'<span class="pill v-{esc(verdict)}">{esc(verdict.replace("_", " "))}</span>'


def _short_name(check_id: str) -> str:
    """The test function and its parameters; the full node ID is in the link's title and the check card."""
    return check_id.rsplit("::", 1)[-1]


def _check_anchor(index: int) -> str:
    return f"check-{index}"


def _run_section(results: RunResults) -> str:
    manifest = results.sut_manifest
    domains = manifest.get("domains") or []
    rows = [
        ("SUT", " ".join(str(manifest[k]) for k in ("name", "version") if k in manifest) or "(unnamed)"),
        ("Vendor", manifest.get("vendor", "")),
        ("Domains", ", ".join(str(d) for d in domains) if isinstance(domains, list) else str(domains)),
        ("Suite version", results.suite_version),
        ("Draft revisions", ", ".join(results.draft_revisions)),
        ("Seed", results.seed),
        ("Started", results.started_at),
        ("Ended", results.ended_at),
        ("Manifest SHA-256", results.sut_manifest_sha256),
        (
            "Signature",
            f"Ed25519, key {results.signature.key_id} (check it with: mimi-conformance verify results.json)"
            if results.signature
            else "unsigned",
        ),
    ]
    items = "".join(f"<dt>{esc(name)}</dt><dd>{esc(value)}</dd>" for name, value in rows if value != "")
    return f'<section id="run"><h2>Run</h2><dl class="meta">{items}</dl></section>'


_VERDICT_MEANING = {
    "CONFORMANT": "every requirement judged, none missed",
    "CONFORMANT_WITH_WARNINGS": "only SHOULD/MAY requirements missed",
    "NOT_CONFORMANT": "a MUST requirement was missed",
    "INCOMPLETE": "some requirement untested, not reached, broken by the harness, or not applicable",
}


_DECIDING = (
    ("MUST missed", {"FAIL"}),
    ("Not judged", {"UNTESTED", "HARNESS_ERROR", "NOT_REACHED"}),
    ("SHOULD/MAY missed", {"WARN"}),
)
_MAX_LISTED = 12


def _scorecard(profiles: Iterable[ProfileResult]) -> str:
    cards = []
    for profile in profiles:
        c = profile.counts
        figures = [
            ("requirements", c["requirements"]),
            ("passed", c["requirements_pass"]),
            ("MUST missed", c["requirements_fail"]),
            ("SHOULD/MAY missed", c["requirements_warn"]),
            ("untested", c["requirements_untested"]),
            ("not applicable", c["requirements_not_applicable"]),
            ("not reached", c.get("requirements_not_reached", 0)),
            ("harness errors", c["requirements_harness_error"]),
            ("ambiguous", c["requirements_ambiguous"]),
            ("checks", c["checks"]),
        ]
        stats = "".join(f"<li><b>{esc(value)}</b> {esc(label)}</li>" for label, value in figures)
        deciding = []
        for label, wanted in _DECIDING:
            ids = [o.id for o in profile.requirements if str(o.status) in wanted]
            if ids:
                links = ", ".join(f'<a href="#req-{esc(req_id)}">{esc(req_id)}</a>' for req_id in ids[:_MAX_LISTED])
                more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
                deciding.append(f"<li><b>{esc(label)}:</b> {links}{esc(more)}</li>")
        deciding_html = f'<ul class="deciding">{"".join(deciding)}</ul>' if deciding else ""
        cards.append(
            f'<article class="card p-{esc(profile.verdict)}" data-profile="{esc(profile.name)}">'
            f"<h3>{esc(profile.title)}</h3>"
            f'<p class="pname"><code>{esc(profile.name)}</code> · SUT as {esc(profile.role)}</p>'
            f'<p class="pverdict" data-verdict="{esc(profile.verdict)}">{esc(str(profile.verdict).replace("_", " "))}</p>'
            f'<p class="muted">{esc(_VERDICT_MEANING[str(profile.verdict)])}</p>'
            f'<ul class="stats">{stats}</ul>{deciding_html}</article>'
        )
    body = "".join(cards) or '<p class="muted">No profile was selected.</p>'
    return f'<section id="scorecard"><h2>Scorecard</h2><div class="cards">{body}</div></section>'


def _ambiguities(results: RunResults, anchors: Mapping[str, str]) -> str:
    ambiguous = [
        (check, outcome)
        for check in results.checks
        for outcome in check.scored_outcomes()
        if outcome.outcome is RequirementVerdict.AMBIGUOUS
    ]
    if not ambiguous:
        return ""
    items = "".join(
        f'<li><a href="#{anchors[check.check_id]}">{esc(check.check_id)}</a> '
        f'(<a href="#req-{esc(outcome.requirement)}">{esc(outcome.requirement)}</a>): '
        f"<b>{esc(outcome.ambiguity or ', '.join(check.ambiguity_ids))}</b> {esc(outcome.message or check.message)}</li>"
        for check, outcome in ambiguous
    )
    return (
        '<section id="ambiguities"><h2>Ambiguities</h2><p class="muted">The SUT followed a reading the draft also '
        "allows (docs/spec-ambiguities.md). Reported apart; never a failure, and a judged requirement.</p>"
        f"<ul>{items}</ul></section>"
    )


def _filters(areas: list[str]) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="verdict" value="{esc(v)}"> {_pill(v)}</label>' for v in FILTER_VERDICTS
    )
    options = '<option value="">all areas</option>' + "".join(
        f'<option value="{esc(a)}">{esc(a)}</option>' for a in areas
    )
    return (
        '<section id="filters" hidden><h2>Filter</h2>'
        f'<div class="filter-row"><span>Verdict:</span> {boxes}</div>'
        f'<div class="filter-row"><label>Area: <select id="area-filter">{options}</select></label> '
        '<button type="button" id="filter-reset">Show all</button></div>'
        '<p id="filter-status" role="status"></p></section>'
    )


def sentence_html(req: RequirementInfo) -> str:
    """The draft's own sentence and, for an IMPLIED entry, the suite's paraphrase next to it."""
    draft = f'<blockquote class="draft" title="the draft\'s words">{esc(req.draft_text)}</blockquote>'
    if req.paraphrase is None:
        return f'<small class="muted">Draft, verbatim:</small>{draft}'
    return (
        f'<small class="muted">Draft (the passage it is derived from):</small>{draft}'
        f'<small class="muted">Suite\'s paraphrase (what is tested):</small><p class="paraphrase">{esc(req.paraphrase)}</p>'
    )


def outcome_detail_html(outcome: RequirementJudgement) -> str:
    """The evidence of a PASS, the message (and ambiguity) of anything else."""
    parts = []
    if outcome.evidence:
        parts.append("".join(f'<li class="evidence">{esc(item)}</li>' for item in outcome.evidence))
    if outcome.message:
        parts.append(f'<li class="why">{esc(outcome.message)}</li>')
    if outcome.ambiguity:
        parts.append(f'<li class="why">{esc(outcome.ambiguity)}</li>')
    if outcome.level and outcome.outcome in (RequirementVerdict.FAIL, RequirementVerdict.WARN):
        parts.append(f'<li class="muted">scored {esc(outcome.level)} in the run</li>')
    return f'<ul class="detail">{"".join(parts)}</ul>' if parts else ""


def _traceability(results: RunResults, anchors: Mapping[str, str]) -> str:
    checks_by_req: dict[str, list[tuple[CheckRecord, RequirementJudgement]]] = {}
    for check in results.checks:
        for outcome in check.scored_outcomes():
            checks_by_req.setdefault(outcome.requirement, []).append((check, outcome))
    statuses = {(p.name, o.id): o for p in results.profiles for o in p.requirements}
    head = "".join(f"<th>{esc(p.name)}</th>" for p in results.profiles)
    rows = []
    for req in results.requirements:
        judged = checks_by_req.get(req.id, [])
        verdicts = sorted({str(outcome.outcome) for _, outcome in judged}) or [UNTESTED]
        cells = []
        for profile in results.profiles:
            status = statuses.get((profile.name, req.id))
            if status is None:
                cells.append('<td class="muted">—</td>')
            else:
                cells.append(f"<td>{_pill(str(status.status))}<br><small>scored {esc(status.level)}</small></td>")
        check_items = (
            "".join(
                f'<li>{_pill(str(outcome.outcome))} <a href="#{anchors[check.check_id]}" title="{esc(check.check_id)}">'
                f"{esc(_short_name(check.check_id))}</a> <small class=muted>({esc(check.role)})</small>"
                f"{outcome_detail_html(outcome)}</li>"
                for check, outcome in judged
            )
            or f"<li>{_pill(UNTESTED)} no check cites it</li>"
        )
        rows.append(
            f'<tr id="req-{esc(req.id)}" class="req" data-area="{esc(req.area)}" data-verdicts="{esc(" ".join(verdicts))}">'
            f"<td><b>{esc(req.id)}</b><br><small>{esc(req.source)} §{esc(req.section)}<br>{esc(req.area)} · {esc(req.role)}</small></td>"
            f'<td><span class="kw">{esc(req.keyword)}</span></td>'
            f'<td class="sentence">{sentence_html(req)}</td>'
            f"{''.join(cells)}"
            f'<td><ul class="checklist">{check_items}</ul></td></tr>'
        )
    return (
        '<section id="traceability"><h2>Requirement traceability</h2>'
        '<p class="muted">Each check\'s pill is the outcome of <em>this</em> requirement in it, with what was '
        "observed (PASS) or why not.</p>"
        '<table class="trace"><thead><tr><th>Requirement</th><th>Level</th><th>Draft sentence / suite\'s paraphrase</th>'
        f"{head}<th>Checks (this requirement's outcome)</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _checks(results: RunResults, anchors: Mapping[str, str], base_dir: Path | None) -> str:
    known = {req.id for req in results.requirements}
    articles = []
    for check in results.checks:
        links = ", ".join(
            f'<a href="#req-{esc(req_id)}">{esc(req_id)}</a>' if req_id in known else esc(req_id)
            for req_id in check.requirement_ids
        )
        transcript, why_not = load_transcript(base_dir, check.transcript_ref)
        if transcript is not None:
            is_failure = str(check.verdict) in ("FAIL", "HARNESS_ERROR")
            transcript_part = (
                f"<details{' open' if is_failure else ''}><summary>Transcript "
                f"({_plural(len(transcript['exchanges']), 'exchange')}, {esc(check.transcript_ref)})</summary>"
                f"{transcript_html(transcript)}</details>"
            )
        else:
            transcript_part = f'<p class="muted">{esc(why_not)}</p>'
        outcome_items = "".join(
            f'<li>{_pill(str(outcome.outcome))} '
            + (f'<a href="#req-{esc(outcome.requirement)}">{esc(outcome.requirement)}</a>'
               if outcome.requirement in known else esc(outcome.requirement))
            + f"{outcome_detail_html(outcome)}</li>"
            for outcome in check.scored_outcomes()
        )  # fmt: skip
        ambiguity = f"<dt>Ambiguities</dt><dd>{esc(', '.join(check.ambiguity_ids))}</dd>" if check.ambiguity_ids else ""
        articles.append(
            f'<article class="check" id="{anchors[check.check_id]}" data-verdict="{esc(check.verdict)}" '
            f'data-area="{esc(check.area)}">'
            f"<h3>{_pill(str(check.verdict))} <code>{esc(check.check_id)}</code></h3>"
            f'<p class="message">{esc(check.message) or "<span class=muted>(no message)</span>"}</p>'
            f'<dl class="meta"><dt>Requirements</dt><dd>{links}</dd>'
            f'<dt>Outcomes</dt><dd><ul class="checklist outcomes">{outcome_items}</ul></dd><dt>Role</dt><dd>{esc(check.role)}</dd>'
            f"<dt>Area</dt><dd>{esc(check.area)}</dd><dt>Duration</dt><dd>{check.duration_s:.3f} s</dd>{ambiguity}</dl>"
            f"{transcript_part}</article>"
        )
    body = "".join(articles) or '<p class="muted">No check ran.</p>'
    return f'<section id="checks"><h2>Checks ({len(results.checks)})</h2>{body}</section>'


_CSS = """
:root{--pass:#2e7d32;--fail:#c62828;--warn:#b26a00;--na:#757575;--harness:#6a1b9a;--amb:#1565c0;--untested:#9e9e9e}
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1b1b;
background:#fafafa}header,main{max-width:1240px;margin:0 auto;padding:0 20px}header{padding-top:16px}
h1{font-size:1.6em;margin:.4em 0}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:1.6em}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.92em;word-break:break-all}
.muted{color:#666}.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:.5em 0}
.meta dt{font-weight:600}.meta dd{margin:0;word-break:break-all}
.pill{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:.78em;font-weight:700;
white-space:nowrap;vertical-align:middle}
.v-PASS{background:var(--pass)}.v-FAIL{background:var(--fail)}.v-WARN{background:var(--warn)}
.v-NOT_APPLICABLE{background:var(--na)}.v-HARNESS_ERROR{background:var(--harness)}.v-AMBIGUOUS{background:var(--amb)}
.v-UNTESTED{background:var(--untested)}.v-NOT_REACHED{background:#8d6e63}
blockquote.draft{margin:2px 0 6px;padding:2px 8px;border-left:3px solid #bbb;background:#f7f7f7}
.paraphrase{margin:2px 0}.detail{margin:2px 0 4px 14px;padding-left:10px;font-size:.85em}
.detail .evidence{color:var(--pass)}.detail .why{color:#444}
.cards{display:flex;flex-wrap:wrap;gap:16px}.card{flex:1 1 340px;background:#fff;border:1px solid #ddd;
border-top:8px solid var(--untested);border-radius:6px;padding:8px 16px}.card h3{margin:.3em 0}
.p-CONFORMANT{border-top-color:var(--pass)}.p-CONFORMANT_WITH_WARNINGS{border-top-color:var(--warn)}
.p-NOT_CONFORMANT{border-top-color:var(--fail)}.p-INCOMPLETE{border-top-color:var(--untested)}
.pverdict{font-size:1.4em;font-weight:800;margin:.2em 0}.p-CONFORMANT .pverdict{color:var(--pass)}
.p-CONFORMANT_WITH_WARNINGS .pverdict{color:var(--warn)}.p-NOT_CONFORMANT .pverdict{color:var(--fail)}
.p-INCOMPLETE .pverdict{color:#555}.pname{margin:0}
.stats{list-style:none;padding:0;display:grid;grid-template-columns:repeat(3,1fr);gap:2px 10px;font-size:.9em}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border:1px solid #ddd;padding:6px 8px;
vertical-align:top;text-align:left}thead th{background:#eee;position:sticky;top:0}
.trace td.sentence{min-width:260px}.trace td:first-child{min-width:15em}
.checklist a{overflow-wrap:anywhere}.kw{font-weight:700;font-size:.85em;white-space:nowrap}
.deciding{padding-left:18px;font-size:.9em}
.checklist{list-style:none;margin:0;padding:0}.checklist li{margin:2px 0}
.check{background:#fff;border:1px solid #ddd;border-left:6px solid var(--na);border-radius:4px;padding:4px 14px;
margin:12px 0}.check[data-verdict=PASS]{border-left-color:var(--pass)}.check[data-verdict=FAIL]{border-left-color:var(--fail)}
.check[data-verdict=WARN]{border-left-color:var(--warn)}.check[data-verdict=HARNESS_ERROR]{border-left-color:var(--harness)}
.check[data-verdict=AMBIGUOUS]{border-left-color:var(--amb)}.check h3{font-size:1em;margin:.5em 0}
.message{white-space:pre-wrap;margin:.3em 0}
pre{background:#f3f3f3;border:1px solid #e0e0e0;padding:8px;overflow-x:auto;font-size:.85em;margin:.3em 0}
.exchange{border-top:1px dashed #ccc;padding-top:4px}.exchange h4{margin:.4em 0;font-size:.95em}
.msg h5{margin:.5em 0 .2em;font-size:.9em}.msg h6{margin:.4em 0 0;font-size:.8em;color:#555}
.headers{width:auto;font-size:.85em}.headers th{background:#f7f7f7}.error-note{color:var(--fail)}
#filters label{margin-right:10px;white-space:nowrap}.filter-row{margin:6px 0}#filter-status{font-weight:600}
[hidden]{display:none!important}
"""

_JS = """
(function () {
  var boxes = Array.prototype.slice.call(document.querySelectorAll('#filters input[name=verdict]'));
  var area = document.getElementById('area-filter');
  var status = document.getElementById('filter-status');
  function parseHash() {
    var state = {verdicts: [], area: ''};
    var hash = decodeURIComponent(location.hash.replace(/^#/, ''));
    if (hash.indexOf('=') < 0) { return null; }
    hash.split('&').forEach(function (part) {
      var kv = part.split('=');
      if (kv[0] === 'verdict' && kv[1]) { state.verdicts = kv[1].split(','); }
      if (kv[0] === 'area' && kv[1]) { state.area = kv[1]; }
    });
    return state;
  }
  function apply(state) {
    boxes.forEach(function (box) { box.checked = state.verdicts.indexOf(box.value) >= 0; });
    area.value = state.area;
    var checks = document.querySelectorAll('article.check');
    var rows = document.querySelectorAll('tr.req');
    var shownChecks = 0, shownRows = 0;
    function verdictOk(list) {
      return state.verdicts.length === 0 || list.some(function (v) { return state.verdicts.indexOf(v) >= 0; });
    }
    Array.prototype.forEach.call(checks, function (el) {
      var ok = verdictOk([el.dataset.verdict]) && (!state.area || el.dataset.area === state.area);
      el.hidden = !ok; if (ok) { shownChecks++; }
    });
    Array.prototype.forEach.call(rows, function (el) {
      var ok = verdictOk(el.dataset.verdicts.split(' ')) && (!state.area || el.dataset.area === state.area);
      el.hidden = !ok; if (ok) { shownRows++; }
    });
    var filtered = state.verdicts.length > 0 || state.area;
    status.textContent = 'Showing ' + shownChecks + ' of ' + checks.length + ' checks and ' + shownRows + ' of ' +
      rows.length + ' requirements' + (filtered ? ' (filtered)' : '');
  }
  function current() {
    return {verdicts: boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }),
            area: area.value};
  }
  function changed() {
    var state = current(), parts = [];
    if (state.verdicts.length) { parts.push('verdict=' + state.verdicts.join(',')); }
    if (state.area) { parts.push('area=' + encodeURIComponent(state.area)); }
    history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname + location.search);
    apply(state);
  }
  boxes.forEach(function (box) { box.addEventListener('change', changed); });
  area.addEventListener('change', changed);
  document.getElementById('filter-reset').addEventListener('click', function () {
    boxes.forEach(function (b) { b.checked = false; }); area.value = ''; changed();
  });
  window.addEventListener('hashchange', function () { var s = parseHash(); if (s) { apply(s); } });
  document.getElementById('filters').hidden = false;
  apply(parseHash() || {verdicts: [], area: ''});
})();
"""


def render_html(results: RunResults, *, base_dir: Path | None = None, title: str | None = None) -> str:
    """The report as one HTML document. ``base_dir``: the folder of results.json, where transcripts are."""
    anchors = {check.check_id: _check_anchor(index) for index, check in enumerate(results.checks, 1)}
    areas = sorted(({check.area for check in results.checks} | {req.area for req in results.requirements}) - {""})
    manifest = results.sut_manifest
    sut = " ".join(str(manifest[k]) for k in ("name", "version") if k in manifest) or "SUT"
    page_title = title or f"MIMI conformance report: {sut}"
    verdicts = " · ".join(f"{p.name}: {p.verdict}" for p in results.profiles)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(page_title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{esc(page_title)}</h1><p class="muted">{esc(verdicts)}</p></header><main>'
        f"{_run_section(results)}{_scorecard(results.profiles)}{_ambiguities(results, anchors)}"
        f"{_filters(areas)}{_traceability(results, anchors)}{_checks(results, anchors, base_dir)}"
        f"</main><script>{_JS}</script></body></html>\n"
    )


def write_html(results: RunResults, path: Path, *, base_dir: Path | None = None) -> Path:
    """Write the report; transcripts are looked up under ``base_dir`` (default: the report's folder)."""
    path = Path(path)
    path.write_text(render_html(results, base_dir=base_dir or path.parent), encoding="utf-8")
    return path
