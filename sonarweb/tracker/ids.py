"""Request ids as users paste them: trimmed, dug out of URLs and JSON, validated.

An id that is not plausible never reaches upstream, because it becomes part of
the URL path of the GET call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_LENGTH = 128
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# An Agent run's id: the prefix is part of the id, so it must never be cut off to the UUID.
RUN_ID = re.compile(r"resp_" + UUID.pattern)
_PLAUSIBLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_JSON_ID = re.compile(r'"(?:id|request_id|api_request)"\s*:\s*"([^"]*)"')


class InvalidRequestId(ValueError):
    """The text does not contain a plausible request id; the message says why."""


def _from_json(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        match = _JSON_ID.search(text)
        return match.group(1) if match else None
    if isinstance(data, dict):
        for field in ("id", "request_id", "api_request"):
            if isinstance(data.get(field), str):
                return data[field]
    return None


def _from_url(text: str) -> str | None:
    """The id in a pasted URL: a UUID anywhere in it wins over the last path segment.

    Links to a job carry its id in many places (``/sonar/<id>``, ``?id=<id>``,
    ``#/jobs/<id>``, ``?next=/jobs/<id>``); the last path segment alone named a page such as
    ``/whatever`` as the job, which then ended as Not found.
    """
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    segments = [unquote(s) for s in parts.path.split("/") if s]
    # Fragments often hold a query of their own (``#id=…`` or ``#/jobs?id=…``).
    queries = (parts.query, parts.fragment.rpartition("?")[2])
    values = [v.strip() for query in queries for _, v in parse_qsl(query)]
    # Query values and the fragment first: a page address with the job in its query string
    # (``/search/some-title?id=<uuid>``) names the page in its path, not the job.
    for value in values:
        if UUID.fullmatch(value):
            return value
    for value in (*values, parts.fragment, *segments):
        if found := UUID.search(unquote(value)):
            return found.group(0)
    return segments[-1] if segments else None


def extract_request_id(text: str) -> str:
    """The request id in what the user pasted, or InvalidRequestId with a reason."""
    if _CONTROL.search(text.strip()):
        raise InvalidRequestId("The request id contains control characters.")
    text = text.strip()
    if not text:
        raise InvalidRequestId("Paste a request id.")
    # An Agent run id anywhere in what was pasted (alone, in a URL, in JSON) is the id.
    if run := RUN_ID.search(text):
        return validate_request_id(run.group(0))
    candidate: str | None = None
    if text.startswith(("{", '"')) or '"id"' in text:
        candidate = _from_json(text)
    elif text.lower().startswith(("http://", "https://")):
        candidate = _from_url(text)
    if candidate is None:
        uuid = UUID.search(text)
        candidate = uuid.group(0) if uuid and uuid.group(0) != text else text
    return validate_request_id(candidate.strip())


def validate_request_id(value: str) -> str:
    if not value:
        raise InvalidRequestId("Paste a request id.")
    if len(value) > MAX_LENGTH:
        raise InvalidRequestId(f"A request id has at most {MAX_LENGTH} characters.")
    if _CONTROL.search(value):
        raise InvalidRequestId("The request id contains control characters.")
    if any(ch.isspace() for ch in value):
        raise InvalidRequestId("A request id has no spaces inside it.")
    if "/" in value or "\\" in value or ".." in value:
        raise InvalidRequestId("A request id cannot contain '/' or '..'.")
    if not _PLAUSIBLE.fullmatch(value):
        raise InvalidRequestId(
            "That does not look like a request id: use letters, digits, '-', '_', '.' or ':'."
        )
    return value


# -- many ids at once ---------------------------------------------------------------------------

# Anything that starts like an Agent run id, so a garbled one is reported rather than skipped.
_RUN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9_])resp_[A-Za-z0-9_-]*")
# A UUID on its own (a Sonar job id), not part of a longer word such as ``msg_<uuid>``.
_BARE_UUID = re.compile(r"(?<![A-Za-z0-9_-])" + UUID.pattern + r"(?![A-Za-z0-9_-])")
_SEPARATORS = re.compile(r"[\s,;]+")
# Fields that name a job or run in a document, and the lists of documents inside one.
_ID_FIELDS = ("id", "request_id", "api_request", "response_id")
_DOCUMENT_LISTS = ("requests", "data", "ids", "jobs", "runs", "items")
# How much of an invalid id a report shows.
SHOWN_CHARS = 80
_RUN_ID_REASON = (
    "An Agent run id is resp_ followed by a UUID (resp_3f1c9a2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b); "
    "this one is cut short or has extra characters."
)


@dataclass
class FoundIds:
    """The ids in a paste: valid ones in order of first appearance, invalid ones with why."""

    ids: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)
    repeats: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, value: str) -> None:
        if value in self._seen:
            self.repeats += 1
            return
        self._seen.add(value)
        try:
            if validate_request_id(value).startswith("resp_") and not RUN_ID.fullmatch(value):
                raise InvalidRequestId(_RUN_ID_REASON)
            self.ids.append(value)
        except InvalidRequestId as exc:
            shown = _CONTROL.sub("\ufffd", value)
            if len(shown) > SHOWN_CHARS:
                shown = shown[: SHOWN_CHARS - 1] + "…"
            self.invalid.append((shown, str(exc)))


def _scan(text: str, found: FoundIds, *, uuids: bool = True, whole: bool = False) -> None:
    """Add the run ids, and with ``uuids`` the Sonar job ids (UUIDs), in one piece of text.
    With ``whole``, a piece holding neither is taken as one id itself (an element of a JSON
    list of ids)."""
    if text.lower().startswith(("http://", "https://")):
        # ``?next=%2Fjobs%2Fresp_…``: the id is only visible once decoded.
        text = unquote(text)
    hits = [m.group(0) for m in _RUN_CANDIDATE.finditer(text) if m.group(0) != "resp_"]
    if uuids:
        hits += _BARE_UUID.findall(text)
    for hit in hits:
        found.add(hit)
    if whole and not hits and text.strip():
        found.add(text.strip())


def _walk_json(data: Any, found: FoundIds) -> None:
    """Every run id in any string of the document; and the ids of the documents in it: the
    top-level object, the elements of a top-level list, and lists such as ``requests``."""
    stack: list[tuple[Any, bool]] = [(data, True)]
    while stack:
        value, document = stack.pop()
        if isinstance(value, str):
            # Deeper strings (answers, links, message ids) only give run ids: a UUID there
            # is rarely a job's.
            _scan(value, found, uuids=document, whole=document)
        elif isinstance(value, list):
            stack.extend((item, document) for item in reversed(value))
        elif isinstance(value, dict):
            for name, item in reversed(value.items()):
                if document and name in _ID_FIELDS and isinstance(item, str):
                    stack.append((item, True))
                else:
                    nested = document and name in _DOCUMENT_LISTS and isinstance(item, list)
                    stack.append((item, nested))


def extract_request_ids(text: str) -> FoundIds:
    """Every request id in a paste: a list with any separators, JSON holding ids (a list of
    ids, of objects with ``id``, a Response, any document), or links that contain them.

    In free text only Agent run ids (``resp_<uuid>``) and Sonar job ids (UUIDs) are
    recognised, so the words around them are not mistaken for ids.
    """
    found = FoundIds()
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            pass
        else:
            _walk_json(data, found)
            return found
    for token in _SEPARATORS.split(stripped):
        if token:
            _scan(token, found)
    return found
