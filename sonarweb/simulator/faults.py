"""What a broken or hostile upstream sends, for the simulator's fault modes (stdlib only).

Each is something a client must survive without stalling, swelling or storing garbage: a body
that drips one byte at a time, a body far over any sane size, a small gzip body that inflates
to hundreds of megabytes, bytes that are no text at all, JSON strings holding NUL or lone
surrogates, a model name longer than any column, UTF-8 labelled as ISO-8859-1, and Retry-After
values no clock can hold. Large bodies are generated as they are sent, so the simulator itself
stays small. The text faults understand both shapes: an async Sonar job (or list of jobs) and an
Agent API Response object (or the model list).
"""

from __future__ import annotations

import functools
import json
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

# Fault kinds answered before the normal answer is built.
REPLACING = (
    "rate_limit",
    "server_error",
    "not_found",
    "not_json",
    "list_instead_of_job",
    "oversize",
    "gzip_bomb",
    "not_a_job",
    "garbage",
)
# Fault kinds that change the normal answer on its way out.
ALTERING = ("slow", "drip", "unstorable_text", "long_model", "wrong_charset")
KINDS = REPLACING + ALTERING

DEFAULT_HOSTILE_SIZE = 400 * 1024 * 1024
LONG_MODEL = "sonar-deep-research-" + "x" * 300
# Retry-After values that are not sane waits; each must still be clamped by a client.
EXTREME_RETRY_AFTER = ("inf", "nan", "-5", "1e20", "Mon, 01 Jan 1990 00:00:00 GMT")
NON_ASCII = "Zürich, café, naïve — ✓ 日本語 ☃. "
_CHUNK = 64 * 1024
# What a broken proxy or a truncated binary transfer might hand over as "application/json":
# invalid UTF-8, NUL bytes, a PNG signature and half a JSON document.
GARBAGE = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd\x00\x80\xc3\x28\xa0\xa1"
    b'{"id": "resp_\x00\x9f\xe2\x82' + bytes(range(0x80, 0x100)) + b"\x00" * 64
)


def drip(body: bytes, delay: float, step: int = 1) -> Iterator[bytes]:
    """The body ``step`` bytes at a time, ``delay`` seconds apart (after the headers)."""
    for start in range(0, len(body), max(step, 1)):
        if start:
            time.sleep(delay)
        yield body[start : start + step]


def oversize(size: int, job_id: str, status: str = "COMPLETED") -> Iterator[bytes]:
    """A JSON document of ``size`` bytes that starts like a job (or, with ``status`` given as
    ``"completed"``, like an Agent API Response), generated as it is sent."""
    head = json.dumps({"id": job_id, "status": status})[:-1].encode() + b', "padding": "'
    tail = b'"}'
    left = max(size - len(head) - len(tail), 0)
    yield head
    block = b"a" * _CHUNK
    while left > 0:
        yield block[: min(left, _CHUNK)]
        left -= _CHUNK
    yield tail


@functools.lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """A gzip stream that inflates to ``size`` bytes of JSON-looking text (about 1000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [packer.compress(b'{"id": "bomb", "status": "COMPLETED", "padding": "')]
    block = b"a" * (1024 * 1024)
    left = size
    while left > 0:
        parts.append(packer.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(packer.compress(b'"}'))
    parts.append(packer.flush())
    return b"".join(parts)


def _is_agent(document: dict[str, Any]) -> bool:
    """An Agent API body: a Response object, a cancel acknowledgement or a listed model."""
    return (
        document.get("object") in ("response", "model")
        or isinstance(document.get("output"), list)
        or "response_id" in document
    )


def _alter_document(document: Any, change: Callable[[dict[str, Any]], None]) -> Any:
    """Apply ``change`` to a job document, or to every job of a list document (every model of
    the Agent API's model list)."""
    if isinstance(document, dict) and isinstance(document.get("requests"), list):
        for item in document["requests"]:
            if isinstance(item, dict):
                change(item)
    elif isinstance(document, dict) and isinstance(document.get("data"), list):
        for item in document["data"]:
            if isinstance(item, dict):
                change(item)
    elif isinstance(document, dict):
        change(document)
    return document


def _output_texts(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The ``output_text`` parts of an Agent API Response's message items."""
    for item in document.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part


def _search_results(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in document.get("output") or []:
        if isinstance(item, dict) and isinstance(item.get("results"), list):
            yield from (r for r in item["results"] if isinstance(r, dict))


def _unstorable_agent(document: dict[str, Any]) -> None:
    if isinstance(document.get("model"), str):
        document["model"] = f"{document['model']}\u0000"
    elif document.get("object") == "model" and isinstance(document.get("id"), str):
        document["id"] = f"{document['id']}\u0000"
    error = document.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        error["message"] = f"Failed\u0000 \ud800 {error['message']}"
    for part in _output_texts(document):
        part["text"] = "NUL here:\u0000 and a lone surrogate here: \ud800.\n\n" + part["text"]
    for result in _search_results(document):
        result["title"] = f"\udfff{result.get('title', '')}\u0000"


def _unstorable(job: dict[str, Any]) -> None:
    if _is_agent(job):
        _unstorable_agent(job)
        return
    job["model"] = f"{job.get('model') or 'sonar'}\u0000"
    if job.get("error_message"):
        job["error_message"] = f"Failed\u0000 \ud800 {job['error_message']}"
    response = job.get("response")
    if not isinstance(response, dict):
        return
    for choice in response.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            message["content"] = (
                "NUL here:\u0000 and a lone surrogate here: \ud800.\n\n" + message["content"]
            )
    for result in response.get("search_results") or []:
        if isinstance(result, dict):
            result["title"] = f"\udfff{result.get('title', '')}\u0000"
    response["model"] = f"{response.get('model') or 'sonar'}\u0000"


def _long_model(job: dict[str, Any]) -> None:
    if job.get("object") == "model":
        job["id"] = LONG_MODEL
        return
    if "response_id" in job:
        return
    job["model"] = LONG_MODEL
    if isinstance(job.get("response"), dict):
        job["response"]["model"] = LONG_MODEL


def _non_ascii(job: dict[str, Any]) -> None:
    if _is_agent(job):
        for part in _output_texts(job):
            part["text"] = NON_ASCII + part["text"]
        return
    response = job.get("response")
    if not isinstance(response, dict):
        return
    for choice in response.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            message["content"] = NON_ASCII + message["content"]


def alter_body(kind: str, body: bytes) -> bytes:
    """The normal JSON answer with the text faults applied. ``\\u`` escapes (ensure_ascii)
    carry NUL and lone surrogates, which are valid JSON but no valid UTF-8."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if kind == "unstorable_text":
        return json.dumps(_alter_document(document, _unstorable)).encode()
    if kind == "long_model":
        return json.dumps(_alter_document(document, _long_model)).encode()
    if kind == "wrong_charset":
        return json.dumps(_alter_document(document, _non_ascii), ensure_ascii=False).encode()
    return body
