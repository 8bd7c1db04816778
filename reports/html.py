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

The markup is in ``reports/templates/`` (Jinja2, autoescaped: every value is escaped unless marked
safe, and only the report's own CSS and script are); this module prepares what they show.
With a CI gate recorded (``results.gate``), the header shows its outcome and each check the
baseline waived carries an "expected failure (baseline): reason" mark.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from .model import CheckRecord, GateRecord, RequirementJudgement, RequirementVerdict, RunResults

MAX_BODY_BYTES = 64 * 1024  # bytes shown per body; the rest is summarised
UNTESTED = "UNTESTED"
FILTER_VERDICTS = (*(str(v) for v in RequirementVerdict), UNTESTED)


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


def _message_view(kind: str, message: Any) -> dict[str, Any] | None:
    """What the template shows of one request or response; None when there is none."""
    if not isinstance(message, Mapping):
        return None
    if kind == "Request":
        first_line = f"{message.get('method', '?')} {message.get('url', '')}"
    else:
        first_line = f"status {message.get('status', '?')}"
    body = _body_bytes(message)
    decoded = None
    if message.get("decoded") is not None:
        decoded = json.dumps(message["decoded"], indent=2, ensure_ascii=False, default=str)
    text = None
    if decoded is None and body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {
        "first_line": first_line,
        "headers": _headers(message.get("headers")),
        "body": body,
        "undecodable": body is None and ("body_hex" in message or "body_b64" in message),
        "decoded": decoded,
        "text": text,
    }


def _exchange_views(transcript: Mapping[str, Any]) -> list[dict[str, Any] | None]:
    """Each exchange as the template shows it; None for one that is not an object."""
    views: list[dict[str, Any] | None] = []
    for number, exchange in enumerate(transcript["exchanges"], 1):
        if not isinstance(exchange, Mapping):
            views.append(None)
            continue
        views.append(
            {
                "label": exchange.get("label") or f"exchange {number}",
                "route": " → ".join(str(exchange[key]) for key in ("from", "to") if exchange.get(key)),
                "when": exchange.get("started_at", ""),
                "request": _message_view("Request", exchange.get("request")),
                "response": _message_view("Response", exchange.get("response")),
                "error": exchange.get("error"),
            }
        )
    return views


# --------------------------------------------------------------------------------------------
# Page data


def _short_name(check_id: str) -> str:
    """The test function and its parameters; the full node ID is in the link's title and the check card."""
    return check_id.rsplit("::", 1)[-1]


def _check_anchor(index: int) -> str:
    return f"check-{index}"


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


def _run_rows(results: RunResults) -> list[tuple[str, Any]]:
    manifest = results.sut_manifest
    domains = manifest.get("domains") or []
    return [
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


def _cards(results: RunResults) -> list[dict[str, Any]]:
    cards = []
    for profile in results.profiles:
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
        deciding = []
        for label, wanted in _DECIDING:
            ids = [o.id for o in profile.requirements if str(o.status) in wanted]
            if ids:
                more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
                deciding.append((label, ids[:_MAX_LISTED], more))
        cards.append(
            {
                "profile": profile,
                "meaning": _VERDICT_MEANING[str(profile.verdict)],
                "figures": figures,
                "deciding": deciding,
            }
        )
    return cards


def _trace_rows(results: RunResults) -> list[dict[str, Any]]:
    checks_by_req: dict[str, list[tuple[CheckRecord, RequirementJudgement]]] = {}
    for check in results.checks:
        for outcome in check.scored_outcomes():
            checks_by_req.setdefault(outcome.requirement, []).append((check, outcome))
    statuses = {(p.name, o.id): o for p in results.profiles for o in p.requirements}
    rows = []
    for req in results.requirements:
        judged = checks_by_req.get(req.id, [])
        rows.append(
            {
                "req": req,
                "judged": judged,
                "verdicts": sorted({str(outcome.outcome) for _, outcome in judged}) or [UNTESTED],
                "statuses": [statuses.get((profile.name, req.id)) for profile in results.profiles],
            }
        )
    return rows


def _check_cards(results: RunResults, base_dir: Path | None) -> list[dict[str, Any]]:
    cards = []
    for check in results.checks:
        transcript, why_not = load_transcript(base_dir, check.transcript_ref)
        cards.append(
            {
                "check": check,
                "exchanges": _exchange_views(transcript) if transcript is not None else None,
                "why_not": why_not,
                "expected_failure": results.gate.expected_failure(check.check_id) if results.gate else None,
            }
        )
    return cards


_GATE_OUTCOMES = {  # gate item outcome -> (one, several), in the order the header lists them
    "UNEXPECTED_FAILURE": ("unexpected failure", "unexpected failures"),
    "STALE": ("stale baseline entry", "stale baseline entries"),
    "EXPECTED_FAILURE": ("expected failure", "expected failures"),
    "INTERMITTENT_PASS": ("intermittent pass", "intermittent passes"),
    "NOT_RUN": ("baseline entry not run", "baseline entries not run"),
}


def _gate_counts(gate: GateRecord) -> list[str]:
    """("2 expected failures", ...) for the header's gate line."""
    counts = Counter(item.outcome for item in gate.items)
    phrases = []
    for outcome in (*_GATE_OUTCOMES, *sorted(set(counts) - set(_GATE_OUTCOMES))):
        if counts[outcome]:
            one, several = _GATE_OUTCOMES.get(outcome, (outcome, outcome))
            phrases.append(f"{counts[outcome]} {one if counts[outcome] == 1 else several}")
    return phrases


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,  # every value is escaped; the templates hold the only markup
        undefined=StrictUndefined,  # a misspelt name fails the render instead of showing nothing
        keep_trailing_newline=True,
    )
    environment.filters["hex_dump"] = hex_dump
    environment.filters["short_name"] = _short_name
    return environment


@cache
def _asset(name: str) -> Markup:
    """The report's own CSS or script, inlined as is (the page is one self-contained file)."""
    return Markup(resources.files("reports").joinpath("templates", name).read_text(encoding="utf-8"))  # noqa: S704


def render_html(results: RunResults, *, base_dir: Path | None = None, title: str | None = None) -> str:
    """The report as one HTML document. ``base_dir``: the folder of results.json, where transcripts are."""
    manifest = results.sut_manifest
    sut = " ".join(str(manifest[k]) for k in ("name", "version") if k in manifest) or "SUT"
    known = {req.id for req in results.requirements}
    gate = results.gate
    template = _environment().get_template("report.html.j2")
    return template.render(
        results=results,
        page_title=title or f"MIMI conformance report: {sut}",
        css=_asset("report.css"),
        js=_asset("report.js"),
        anchors={check.check_id: _check_anchor(index) for index, check in enumerate(results.checks, 1)},
        known=known,
        areas=sorted(({check.area for check in results.checks} | {req.area for req in results.requirements}) - {""}),
        run_rows=_run_rows(results),
        cards=_cards(results),
        ambiguous=[
            (check, outcome)
            for check in results.checks
            for outcome in check.scored_outcomes()
            if outcome.outcome is RequirementVerdict.AMBIGUOUS
        ],
        filter_verdicts=FILTER_VERDICTS,
        trace_rows=_trace_rows(results),
        check_cards=_check_cards(results, base_dir),
        gate=gate,
        gate_counts=_gate_counts(gate) if gate else [],
    )


def write_html(results: RunResults, path: Path, *, base_dir: Path | None = None) -> Path:
    """Write the report; transcripts are looked up under ``base_dir`` (default: the report's folder)."""
    path = Path(path)
    path.write_text(render_html(results, base_dir=base_dir or path.parent), encoding="utf-8")
    return path
