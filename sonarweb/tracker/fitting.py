"""Text fitted to its column before it is stored, on every path that writes upstream text.

Upstream decides how long a model name or an error message is, and JSON strings may carry NUL
or lone surrogates, which neither database stores. A value that does not fit must never make a
write fail: a failed write leaves a row retrying forever, or a job started upstream untracked.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from sonarweb.perplexity.payload import clean_text


def fit(model: type[models.Model], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with every string cleaned and cut to its column's max_length."""
    return {
        name: clean_text(value)[: model._meta.get_field(name).max_length]
        if isinstance(value, str)
        else value
        for name, value in fields.items()
    }
