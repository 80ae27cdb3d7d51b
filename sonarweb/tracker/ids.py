"""Request ids as users paste them: trimmed, dug out of URLs and JSON, validated.

An id that is not plausible never reaches upstream, because it becomes part of
the URL path of the GET call.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote, urlsplit

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
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    segments = [unquote(s) for s in parts.path.split("/") if s]
    return segments[-1] if segments else None


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
