"""Write every output of a run into one folder; what ``mimi-conformance run --out DIR`` produces.

``DIR/results.json`` (signed when a key is given), ``DIR/junit.xml``, ``DIR/report.html`` (transcripts
are read from ``DIR``, where the recorder wrote them), ``DIR/summary.md`` and ``DIR/badges/<profile>.svg``.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .badge import render_badge
from .baseline import GateReport
from .html import write_html
from .junit import render_junit
from .markdown import render_markdown
from .model import RunResults
from .signing import sign


def write_reports(
    results: RunResults,
    out_dir: Path,
    *,
    signing_key: Ed25519PrivateKey | None = None,
    gate: GateReport | None = None,
    warn_as_failure: bool = False,
) -> dict[str, Path]:
    """Write all outputs; returns their paths by kind ("results", "junit", "html", "markdown", "badge:<name>")."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if signing_key is not None:
        results = sign(results, signing_key)
    written = {
        "results": out_dir / "results.json",
        "junit": out_dir / "junit.xml",
        "html": out_dir / "report.html",
        "markdown": out_dir / "summary.md",
    }
    written["results"].write_text(results.to_json() + "\n", encoding="utf-8")
    written["junit"].write_text(render_junit(results, warn_as_failure=warn_as_failure), encoding="utf-8")
    write_html(results, written["html"], base_dir=out_dir)
    written["markdown"].write_text(render_markdown(results, gate=gate), encoding="utf-8")
    badges = out_dir / "badges"
    badges.mkdir(exist_ok=True)
    for profile in results.profiles:
        path = badges / f"{profile.name}.svg"
        path.write_text(render_badge(profile), encoding="utf-8")
        written[f"badge:{profile.name}"] = path
    return written
