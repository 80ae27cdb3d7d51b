"""Validation of an Agent API create body, as strict as upstream (contract §2).

Upstream decodes the body with unknown fields disallowed, at every level: one field it does not
know anywhere answers ``400 {"error": {"message": "invalid request body: json: unknown field
\\"X\\"", "type": "invalid_request", "code": 400, "param": "X"}}``. Values of the wrong type or out
of range answer ``invalid_parameter`` with ``param`` naming the field by its path
(``tools[0].filters.search_recency_filter``). Then come the checks upstream makes on the
decoded request: a non-empty ``input``, one of ``model``/``models``/``preset``, a known model
or preset. ``parse_create()`` returns the request or raises ``AgentRequestError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .agent import MODELS, PRESET_TOOLS, canonical_preset

Check = Callable[[Any, str], None]


class AgentRequestError(ValueError):
    """A create body upstream would refuse; ``body()`` is the 400 it would answer."""

    def __init__(self, message: str, *, kind: str = "invalid_request", param: str | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": 400}
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


@dataclass
class AgentRequest:
    """A create body that passed validation, with what the simulator needs from it."""

    body: dict[str, Any]
    question: str
    preset: str | None  # the canonical name
    model: str | None  # the explicit model, or the first of ``models``
    background: bool
    store: bool
    max_output_tokens: int | None
    tools: list[dict[str, Any]] | None  # as sent
    search: bool
    fetch: bool
    previous_response_id: str | None
    echo: dict[str, Any] = field(default_factory=dict)


# -- structure: unknown fields and types -------------------------------------------------------


def _unknown(name: str) -> AgentRequestError:
    return AgentRequestError(
        f'invalid request body: json: unknown field "{name}"', kind="invalid_request", param=name
    )


def _bad(path: str, what: str) -> AgentRequestError:
    return AgentRequestError(f"validation failed: {path} {what}", kind="invalid_parameter",
                             param=path)  # fmt: skip


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _object(fields: dict[str, Check]) -> Check:
    """A JSON object that may hold only ``fields``; null values are left unchecked."""

    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _bad(path, "must be an object")
        for name, item in value.items():
            if name not in fields:
                raise _unknown(name)
            if item is not None:
                fields[name](item, _join(path, name))

    return check


def _string(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise _bad(path, "must be a string")


def _boolean(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise _bad(path, "must be a boolean")


def _integer(low: int | None = None, high: int | None = None) -> Check:
    def check(value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(path, "must be an integer")
        if low is not None and value < low:
            raise _bad(path, f"must be at least {low}")
        if high is not None and value > high:
            raise _bad(path, f"must be at most {high}")

    return check


def _number(low: float, high: float) -> Check:
    def check(value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(path, "must be a number")
        if not low <= value <= high:
            raise _bad(path, f"must be between {low:g} and {high:g}")

    return check


def _one_of(*values: str) -> Check:
    def check(value: Any, path: str) -> None:
        if value not in values:
            raise _bad(path, "must be one of: " + " ".join(values))

    return check


def _strings(value: Any, path: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(path, "must be an array of strings")


def _anything(value: Any, path: str) -> None:
    return None


def _loose_object(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _bad(path, "must be an object")


_DATE = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})$")


def _date(value: Any, path: str) -> None:
    # The SDK documents MM/DD/YYYY; the live API also took YYYY-MM-DD (CF).
    if not isinstance(value, str) or not _DATE.match(value):
        raise AgentRequestError(
            f"validation failed: {path} must be a date as MM/DD/YYYY or YYYY-MM-DD",
            kind="invalid_date_format",
            param=path,
        )


_FILTERS = _object(
    {
        "search_domain_filter": _strings,
        "search_recency_filter": _one_of("hour", "day", "week", "month", "year"),
        "search_after_date_filter": _date,
        "search_before_date_filter": _date,
        "last_updated_after_filter": _date,
        "last_updated_before_filter": _date,
    }
)
_USER_LOCATION = _object(
    {
        "city": _string,
        "country": _string,
        "region": _string,
        "latitude": _number(-90, 90),
        "longitude": _number(-180, 180),
    }
)
_TOOL_FIELDS: dict[str, dict[str, Check] | None] = {
    "web_search": {
        "type": _string,
        "filters": _FILTERS,
        "max_tokens": _integer(1),
        "max_tokens_per_page": _integer(1),
        "search_context_size": _one_of("low", "medium", "high"),
        "user_location": _USER_LOCATION,
    },
    "fetch_url": {"type": _string, "max_urls": _integer(1)},
    # Documented, but nothing a research run uses: accepted as they come.
    "people_search": None,
    "finance_search": None,
    "sandbox": None,
    "function": None,
    "mcp": None,
    "image_search": None,
    "connector": None,
}


def _tools(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise _bad(path, "must be an array")
    for index, tool in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(tool, dict):
            raise _bad(where, "must be an object")
        kind = tool.get("type")
        if not isinstance(kind, str) or kind not in _TOOL_FIELDS:
            known = " ".join(_TOOL_FIELDS)
            raise _bad(f"{where}.type", f"must be one of: {known}")
        fields = _TOOL_FIELDS[kind]
        if fields is not None:
            _object(fields)(tool, where)


def _tool_choice(value: Any, path: str) -> None:
    if isinstance(value, str):
        _one_of("none", "auto", "required")(value, path)
    elif isinstance(value, dict):
        if not isinstance(value.get("type"), str):
            raise _bad(f"{path}.type", "must be a string")
    else:
        raise _bad(path, "must be a string or an object")


def _models(value: Any, path: str) -> None:
    _strings(value, path)
    if not 1 <= len(value) <= 5:
        raise _bad(path, "must hold 1 to 5 models")


def _metadata(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _bad(path, "must be an object")
    if len(value) > 16:
        raise _bad(path, "must have at most 16 keys")
    for key, item in value.items():
        if len(key) > 64:
            raise _bad(path, "keys must be at most 64 characters")
        if not isinstance(item, str) or len(item) > 512:
            raise _bad(_join(path, key), "must be a string of at most 512 characters")


_RESPONSE_FORMAT = _object(
    {
        "type": _one_of("json_schema"),
        "json_schema": _object(
            {
                "name": _string,
                "schema": _loose_object,
                "description": _string,
                "strict": _boolean,
            }
        ),
    }
)

TOP_LEVEL: dict[str, Check] = {
    "input": _anything,  # checked after decoding; see _question()
    "model": _string,
    "models": _models,
    "preset": _string,
    "instructions": _string,
    "tools": _tools,
    "reasoning": _object({"effort": _one_of("minimal", "low", "medium", "high", "xhigh")}),
    "max_output_tokens": _integer(1),
    # The SDK, OpenAPI and the older docs: 1-10. Later sources say 100; 10 is the safe contract.
    "max_steps": _integer(1, 10),
    "background": _boolean,
    "store": _boolean,
    "metadata": _metadata,
    "response_format": _RESPONSE_FORMAT,
    "stream": _boolean,
    "language_preference": _string,
    "previous_response_id": _string,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "tool_choice": _tool_choice,
}
_STRUCTURE = _object(TOP_LEVEL)


# -- meaning -----------------------------------------------------------------------------------

_ROLES = ("user", "assistant", "system", "developer")
_PART = {
    "input_text": _object({"type": _string, "text": _string}),
    "input_image": _object({"type": _string, "image_url": _string}),
}


def _text_of(content: Any, path: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(path, "must be a string or an array of content parts")
    texts = []
    for index, part in enumerate(content):
        where = f"{path}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _PART:
            raise _bad(f"{where}.type", "must be one of: input_text input_image")
        _PART[kind](part, where)
        if kind == "input_text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return " ".join(texts)


def _question(value: Any) -> str:
    """The question a page shows for this input: the text of the last user message."""
    if isinstance(value, str):
        if not value.strip():
            raise AgentRequestError("validation failed: input cannot be empty")
        return value.strip()[:2000]
    if not isinstance(value, list) or not value:
        # What upstream answers for a missing input, [], a number or an object alike.
        raise AgentRequestError("input array cannot be empty", param="input")
    chosen = ""
    fallback = ""
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise _bad(where, "must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            _object({"type": _string, "role": _one_of(*_ROLES), "content": _anything})(item, where)
            if "role" not in item or "content" not in item:
                raise _bad(where, "must have a role and a content")
            text = _text_of(item["content"], f"{where}.content")
            fallback = text or fallback
            if item["role"] == "user" and text.strip():
                chosen = text
        elif kind in ("function_call", "function_call_output"):
            continue
        else:
            kinds = "message function_call function_call_output"
            raise _bad(f"{where}.type", f"must be one of: {kinds}")
    question = (chosen or fallback).strip()
    if not question:
        raise AgentRequestError("validation failed: input cannot be empty")
    return question[:2000]


def _model(value: str, param: str) -> str:
    if value not in MODELS:
        raise AgentRequestError(f'model "{value}" is not supported', kind="invalid_model",
                                param=param)  # fmt: skip
    return value


def parse_create(raw: bytes) -> AgentRequest:
    """The request in a create body, or ``AgentRequestError`` with upstream's 400."""
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AgentRequestError(f"invalid request body: {exc}") from exc
    if not isinstance(body, dict):
        kind = type(body).__name__ if body is not None else "null"
        raise AgentRequestError(
            f"invalid request body: json: cannot unmarshal {kind} into Go value of type "
            "agent.CreateRequest"
        )
    _STRUCTURE(body, "")
    question = _question(body.get("input"))

    preset: str | None = None
    if body.get("preset") is not None:
        preset = canonical_preset(body["preset"])
        if preset is None:
            raise AgentRequestError(f'preset "{body["preset"]}" is not supported',
                                    kind="invalid_model", param="preset")  # fmt: skip
    model: str | None = None
    if body.get("model") is not None:
        model = _model(body["model"], "model")
    if body.get("models"):
        # A fallback chain, which takes precedence over model; the first one succeeds here.
        for other in body["models"]:
            _model(other, "models")
        model = body["models"][0]
    if preset is None and model is None:
        raise AgentRequestError(
            "validation failed: one of model, models or preset is required", param="model"
        )
    if model and model.startswith("anthropic/") and body.get("max_output_tokens") is None:
        raise AgentRequestError(
            "validation failed: max_output_tokens is required when using Anthropic models"
        )
    if body.get("stream") is True:
        raise AgentRequestError(
            "validation failed: stream is not supported by the simulator; poll instead",
            kind="invalid_parameter",
            param="stream",
        )
    if body.get("response_format") and not body["response_format"].get("json_schema"):
        raise _bad("response_format.json_schema", "is required")

    tools = body.get("tools")
    if tools is not None:
        kinds = {tool["type"] for tool in tools}
        search, fetch = "web_search" in kinds, "fetch_url" in kinds
    elif preset is not None:
        search = "web_search" in PRESET_TOOLS[preset]
        fetch = "fetch_url" in PRESET_TOOLS[preset]
    else:
        # Web search is not automatic for a bare model (contract §2).
        search = fetch = False

    echo = {
        name: body[name]
        for name in (
            "instructions",
            "max_output_tokens",
            "previous_response_id",
            "reasoning",
            "temperature",
            "tool_choice",
            "top_p",
        )
        if body.get(name) is not None
    }
    return AgentRequest(
        body=body,
        question=question,
        preset=preset,
        model=model,
        background=body.get("background") is True,
        store=body.get("store") is not False,
        max_output_tokens=body.get("max_output_tokens"),
        tools=list(tools) if tools is not None else None,
        search=search,
        fetch=fetch,
        previous_response_id=body.get("previous_response_id"),
        echo=echo,
    )
