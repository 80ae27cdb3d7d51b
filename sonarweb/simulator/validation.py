"""Validation of a create body, in the shape FastAPI/pydantic answers a 422 with."""

from __future__ import annotations

from typing import Any

from .corpus import MODELS

_MESSAGE_ROLES = ("system", "user", "assistant", "tool")
_ENUMS: dict[str, tuple[tuple[str, ...], bool]] = {
    # field: (allowed values, null allowed)
    "search_mode": (("web", "academic", "sec"), True),
    "search_recency_filter": (("hour", "day", "week", "month", "year"), True),
    "reasoning_effort": (("minimal", "low", "medium", "high"), True),
    "stream_mode": (("full", "concise"), False),
}
_BOOLEANS = (
    "stream",
    "return_images",
    "return_related_questions",
    "enable_search_classifier",
    "disable_search",
)


def problem(loc: list[str | int], msg: str, kind: str, value: Any, **ctx: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        error["ctx"] = ctx
    return error


def _enum_message(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return "Input should be " + ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _check_enum(
    errors: list[dict[str, Any]], loc: list[str | int], value: Any, values: tuple[str, ...]
) -> None:
    if value not in values:
        msg = _enum_message(values)
        errors.append(problem(loc, msg, "enum", value, expected=msg[len("Input should be ") :]))


def _check_number(
    errors: list[dict[str, Any]],
    loc: list[str | int],
    value: Any,
    *,
    integer: bool = False,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        if integer:
            errors.append(problem(loc, "Input should be a valid integer", "int_type", value))
        else:
            errors.append(problem(loc, "Input should be a valid number", "float_type", value))
        return
    if gt is not None and not value > gt:
        errors.append(
            problem(loc, f"Input should be greater than {gt}", "greater_than", value, gt=gt)
        )
    if ge is not None and not value >= ge:
        msg = f"Input should be greater than or equal to {ge}"
        errors.append(problem(loc, msg, "greater_than_equal", value, ge=ge))
    if le is not None and not value <= le:
        msg = f"Input should be less than or equal to {le}"
        errors.append(problem(loc, msg, "less_than_equal", value, le=le))


def validate_create(body: Any) -> list[dict[str, Any]]:
    """Validation errors for a create body, empty when it is acceptable."""
    not_object = "Input should be a valid dictionary or object to extract fields from"
    if not isinstance(body, dict):
        return [problem(["body"], not_object, "model_attributes_type", body)]
    errors: list[dict[str, Any]] = []
    key = body.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        errors.append(
            problem(
                ["body", "idempotency_key"], "Input should be a valid string", "string_type", key
            )
        )
    if "request" not in body:
        errors.append(problem(["body", "request"], "Field required", "missing", body))
        return errors
    request = body["request"]
    base: list[str | int] = ["body", "request"]
    if not isinstance(request, dict):
        errors.append(problem(base, not_object, "model_attributes_type", request))
        return errors

    if "model" not in request:
        errors.append(problem([*base, "model"], "Field required", "missing", request))
    else:
        _check_enum(errors, [*base, "model"], request["model"], MODELS)

    if "messages" not in request:
        errors.append(problem([*base, "messages"], "Field required", "missing", request))
    elif not isinstance(request["messages"], list):
        msg = "Input should be a valid list"
        errors.append(problem([*base, "messages"], msg, "list_type", request["messages"]))
    else:
        for index, message in enumerate(request["messages"]):
            loc: list[str | int] = [*base, "messages", index]
            if not isinstance(message, dict):
                errors.append(problem(loc, not_object, "model_attributes_type", message))
                continue
            if "role" not in message:
                errors.append(problem([*loc, "role"], "Field required", "missing", message))
            else:
                _check_enum(errors, [*loc, "role"], message["role"], _MESSAGE_ROLES)
            if "content" not in message:
                errors.append(problem([*loc, "content"], "Field required", "missing", message))
            elif not isinstance(message["content"], str | list | None):
                msg = "Input should be a valid string"
                errors.append(problem([*loc, "content"], msg, "string_type", message["content"]))

    for field, (values, nullable) in _ENUMS.items():
        if field in request and not (nullable and request[field] is None):
            _check_enum(errors, [*base, field], request[field], values)
    for field in _BOOLEANS:
        value = request.get(field)
        if value is not None and not isinstance(value, bool):
            msg = "Input should be a valid boolean"
            errors.append(problem([*base, field], msg, "bool_type", value))
    _check_number(errors, [*base, "max_tokens"], request.get("max_tokens"), integer=True, gt=0,
                  le=128000)  # fmt: skip
    _check_number(errors, [*base, "temperature"], request.get("temperature"), ge=0, le=2)
    _check_number(errors, [*base, "top_p"], request.get("top_p"), ge=0, le=1)

    options = request.get("web_search_options")
    if options is not None:
        loc = [*base, "web_search_options"]
        if not isinstance(options, dict):
            errors.append(problem(loc, not_object, "model_attributes_type", options))
        else:
            if "search_context_size" in options:
                _check_enum(errors, [*loc, "search_context_size"],
                            options["search_context_size"], ("low", "medium", "high"))  # fmt: skip
            if options.get("search_type") is not None:
                _check_enum(errors, [*loc, "search_type"], options["search_type"],
                            ("fast", "pro", "auto"))  # fmt: skip
    return errors


def question_of(messages: list[Any]) -> str:
    """The text of the last user message (the question a page would show)."""
    chosen: Any = None
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            chosen = message.get("content")
    if chosen is None and messages and isinstance(messages[-1], dict):
        chosen = messages[-1].get("content")
    if isinstance(chosen, list):
        texts = [
            c.get("text", "") for c in chosen if isinstance(c, dict) and c.get("type") == "text"
        ]
        chosen = " ".join(t for t in texts if isinstance(t, str))
    return chosen.strip()[:2000] if isinstance(chosen, str) else ""
