"""The ``/.well-known/mimi-protocol-directory`` document (draft-ietf-mimi-protocol-06 §5.1).

A JSON object mapping each endpoint to an https URL template with one ``{variable}``. The draft's
own example is not valid as written, and tolerant parsing repairs exactly its typos:

- AMB-DIRECTORY-JSON: ``"proxyDownload" "https://..."`` lacks the colon between key and value.
- AMB-DIRECTORY-UPDATE-SLASH: ``.../v1/update{roomId}`` lacks the slash before the variable.
- AMB-CONSENT-PATH-VARIABLES: the example names ``{targetUser}``/``{requesterUser}`` while §5.7
  says ``/requestConsent/{targetDomain}`` and ``/updateConsent/{requesterDomain}``; both spellings
  are accepted, strictly too, and :meth:`Directory.url` fills either from either keyword.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from .codec import Decoded, Leniency
from .identity import IdentifierUri, MimiUri

WELL_KNOWN_PATH = "/.well-known/mimi-protocol-directory"

# Endpoint -> the template variables the draft allows for it (first: the suite's reading, §5.7's
# names for the consent endpoints; second: the §5.1 example's).
ENDPOINT_VARIABLES: dict[str, tuple[str, ...]] = {
    "keyMaterial": ("targetUser",),
    "update": ("roomId",),
    "notify": ("roomId",),
    "submitMessage": ("roomId",),
    "groupInfo": ("roomId",),
    "requestConsent": ("targetDomain", "targetUser"),
    "updateConsent": ("requesterDomain", "requesterUser"),
    "identifierQuery": ("domain",),
    "reportAbuse": ("roomId",),
    "proxyDownload": ("downloadUrl",),
}
ENDPOINTS = tuple(ENDPOINT_VARIABLES)

_VARIABLE = re.compile(r"\{([A-Za-z]+)\}")
# A JSON string key followed (after whitespace) directly by a string value: the missing colon.
_MISSING_COLON = re.compile(r'("(?:[^"\\]|\\.)*")(\s+)(?=")')


class DirectoryError(ValueError):
    """A directory document that cannot be used (names the endpoint when there is one)."""

    def __init__(self, reason: str, endpoint: str | None = None) -> None:
        super().__init__(f"{endpoint}: {reason}" if endpoint else reason)
        self.reason = reason
        self.endpoint = endpoint


@dataclasses.dataclass(frozen=True)
class Directory:
    """The ten endpoint URL templates; ``extra`` keeps keys the draft does not define."""

    endpoints: Mapping[str, str]
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | bytes, *, tolerant: bool = False) -> Decoded:
        """Parse a directory document; returns ``Decoded(directory, leniencies)``.

        Strict: valid JSON, all ten keys, each an https URL template whose only variable is a whole
        path segment named as the draft names it. Tolerant: also repairs the draft's own typos
        (missing colon, missing slash) and lists each repair as a :class:`Leniency`.
        """
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise DirectoryError("not UTF-8") from None
        leniencies: list[Leniency] = []
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if not tolerant:
                raise DirectoryError(f"not valid JSON: {exc}") from None
            repaired, keys = _repair_missing_colons(text)
            try:
                document = json.loads(repaired)
            except json.JSONDecodeError as again:
                raise DirectoryError(f"not valid JSON, even with missing colons restored: {again}") from None
            for key in keys:
                leniencies.append(Leniency("AMB-DIRECTORY-JSON", f"directory.{key}", "missing ':' after the key"))
        if not isinstance(document, dict):
            raise DirectoryError("the directory must be a JSON object")
        endpoints: dict[str, str] = {}
        for endpoint, variables in ENDPOINT_VARIABLES.items():
            if endpoint not in document:
                raise DirectoryError("missing", endpoint)
            template = document[endpoint]
            if not isinstance(template, str):
                raise DirectoryError("the URL template must be a string", endpoint)
            fixed = _check_template(endpoint, template, variables, tolerant)
            if fixed != template:
                leniencies.append(
                    Leniency("AMB-DIRECTORY-UPDATE-SLASH", f"directory.{endpoint}", "missing '/' before the variable")
                )
            endpoints[endpoint] = fixed
        extra = {key: value for key, value in document.items() if key not in ENDPOINT_VARIABLES}
        return Decoded(cls(endpoints, extra), tuple(leniencies))

    @classmethod
    def default_for(cls, base_url: str) -> Directory:
        """The directory a reference peer serves: the draft's example layout under ``{base}/v1``, with
        the slash of ``update/{roomId}`` restored and §5.7's ``{targetDomain}``/``{requesterDomain}``."""
        base = base_url.rstrip("/")
        return cls({endpoint: f"{base}/v1/{endpoint}/{{{variables[0]}}}" for endpoint, variables in ENDPOINT_VARIABLES.items()})

    def url(self, endpoint: str, **values: str | bytes | MimiUri | IdentifierUri) -> str:
        """Expand an endpoint's template; each value becomes one percent-encoded path segment
        (``mimi://a.example/r/clubhouse`` -> ``mimi%3A%2F%2Fa.example%2Fr%2Fclubhouse``)."""
        if endpoint not in self.endpoints:
            raise KeyError(endpoint)
        allowed = ENDPOINT_VARIABLES.get(endpoint, ())
        unknown = set(values) - set(allowed) if allowed else set()
        if unknown:
            raise TypeError(f"{endpoint} takes {' or '.join(allowed)}, not {', '.join(sorted(unknown))}")

        def expand(match: re.Match[str]) -> str:
            name = match.group(1)
            value = values.get(name)
            if value is None:  # the other spelling of a consent variable (AMB-CONSENT-PATH-VARIABLES)
                value = next((values[alias] for alias in allowed if alias in values), None)
            if value is None:
                raise TypeError(f"{endpoint} needs a value for {{{name}}}")
            return quote(_as_text(value), safe="")

        return _VARIABLE.sub(expand, self.endpoints[endpoint])

    def to_json(self) -> str:
        return json.dumps({**dict(self.endpoints), **dict(self.extra)}, indent=2)


def _as_text(value: str | bytes | MimiUri | IdentifierUri) -> str:
    if isinstance(value, IdentifierUri):
        value = bytes(value.uri)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _repair_missing_colons(text: str) -> tuple[str, list[str]]:
    keys: list[str] = []

    def insert(match: re.Match[str]) -> str:
        keys.append(json.loads(match.group(1)))
        return match.group(1) + ":" + match.group(2)

    # Only a string followed by whitespace and another string can be a key missing its colon
    # (a value is followed by ',' or '}').
    return _MISSING_COLON.sub(insert, text), keys


def _check_template(endpoint: str, template: str, variables: tuple[str, ...], tolerant: bool) -> str:
    parts = urlsplit(template)
    if parts.scheme != "https" or not parts.netloc:
        raise DirectoryError(f"not an https URL: {template!r}", endpoint)
    names = _VARIABLE.findall(template)
    if len(names) != 1 or names[0] not in variables:
        raise DirectoryError(f"expected one variable {' or '.join('{' + v + '}' for v in variables)}: {template!r}", endpoint)
    start = template.index("{")
    if template[start - 1] != "/":
        if not tolerant:
            raise DirectoryError(f"the variable must be a whole path segment: {template!r}", endpoint)
        template = template[:start] + "/" + template[start:]
    if not template.endswith("}"):
        raise DirectoryError(f"the variable must be the last path segment: {template!r}", endpoint)
    return template
