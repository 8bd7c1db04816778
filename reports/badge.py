"""An SVG badge per profile, in the familiar two-part shields style, coloured by the profile verdict."""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape, quoteattr

from .model import ProfileResult, ProfileVerdict

BADGE_COLOURS = {
    ProfileVerdict.CONFORMANT: "#2e7d32",  # green
    ProfileVerdict.CONFORMANT_WITH_WARNINGS: "#b26a00",  # amber, dark enough for white text
    ProfileVerdict.NOT_CONFORMANT: "#c62828",  # red
    ProfileVerdict.INCOMPLETE: "#607d8b",  # blue-grey, distinct from the grey label
}
BADGE_TEXT = {
    ProfileVerdict.CONFORMANT: "conformant",
    ProfileVerdict.CONFORMANT_WITH_WARNINGS: "conformant, warnings",
    ProfileVerdict.NOT_CONFORMANT: "not conformant",
    ProfileVerdict.INCOMPLETE: "incomplete",
}

_CHAR_WIDTH = 6.6  # average advance of 11px Verdana/DejaVu Sans; exact metrics need the font
_PADDING = 10


def _width(text: str) -> int:
    return int(len(text) * _CHAR_WIDTH + 2 * _PADDING)


def render_badge(profile: ProfileResult, *, label: str | None = None) -> str:
    """The badge for one profile result: ``MIMI <profile name> | <verdict>``."""
    left = label if label is not None else f"MIMI {profile.name}"
    right = BADGE_TEXT[profile.verdict]
    colour = BADGE_COLOURS[profile.verdict]
    lw, rw = _width(left), _width(right)
    total = lw + rw
    title = f"{left}: {profile.verdict}"
    # Unique per badge: several badges inlined in one page must not share a clip path.
    clip_id = "clip-" + hashlib.sha256(title.encode("utf-8")).hexdigest()[:12]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f"aria-label={quoteattr(title)}>"
        f"<title>{escape(title)}</title>"
        f'<clipPath id="{clip_id}"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#{clip_id})">'
        f'<rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{rw}" height="20" fill="{colour}"/>'
        f"</g>"
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{lw / 2:.1f}" y="14">{escape(left)}</text>'
        f'<text x="{lw + rw / 2:.1f}" y="14">{escape(right)}</text>'
        f"</g></svg>\n"
    )
