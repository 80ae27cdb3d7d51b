"""Request ids as users paste them: trimmed, dug out of URLs and JSON, validated.

An id that is not plausible never reaches upstream, because it becomes part of
the URL path of the GET call.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_LENGTH = 128
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
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
    # Query values and the fragment first: a page address with the job in its query string
    # (``/search/some-title?id=<uuid>``) names the page in its path, not the job.
    for value in _query_values(parts.query, parts.fragment):
        if UUID.fullmatch(value):
            return value
    for value in (*_query_values(parts.query, parts.fragment), parts.fragment, *segments):
        if found := UUID.search(unquote(value)):
            return found.group(0)
    return segments[-1] if segments else None


def _query_values(query: str, fragment: str) -> list[str]:
    values = [v.strip() for _, v in parse_qsl(query, keep_blank_values=False)]
    # Fragments often hold a query of their own (``#id=…`` or ``#/jobs?id=…``).
    _, _, fragment_query = fragment.rpartition("?")
    values += [v.strip() for _, v in parse_qsl(fragment_query, keep_blank_values=False)]
    return values


def extract_request_id(text: str) -> str:
    """The request id in what the user pasted, or InvalidRequestId with a reason."""
    if _CONTROL.search(text.strip()):
        raise InvalidRequestId("The request id contains control characters.")
    text = text.strip()
    if not text:
        raise InvalidRequestId("Paste a request id.")
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
