"""Text fitted to its column before it is stored, on every path that writes upstream text.

Upstream decides how long a model name or an error message is, and JSON strings may carry NUL
or lone surrogates, which neither database stores. A value that does not fit must never make a
write fail: a failed write leaves a row retrying forever, or a job started upstream untracked.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from sonarweb.perplexity.payload import clean_text


def fit_text(value: str, max_length: int | None) -> str:
    value = clean_text(value)
    return value[:max_length] if max_length else value


def fit(model: type[models.Model], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with every string cleaned and cut to its column's max_length."""
    fitted: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, str):
            try:
                field = model._meta.get_field(name)
            except Exception:  # an unknown name fails in the write itself, loudly
                fitted[name] = value
                continue
            max_length = getattr(field, "max_length", None)
            fitted[name] = fit_text(value, max_length)
        else:
            fitted[name] = value
    return fitted
