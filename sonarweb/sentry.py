"""Error reports to Sentry, with API keys taken out before anything leaves the process.

A Perplexity key can reach an event in many places: a request header, a form field, a local
variable in a stack frame, a log message, a breadcrumb. ``scrub_event`` walks the whole event,
so new places are covered too: fields with a secret-looking name lose their value, and any
string that contains a ``pplx-`` key has the key masked.
"""

from __future__ import annotations

import re
from typing import Any

from sonarweb.accesslog import redact

FILTERED = "[Filtered]"
# Perplexity keys look like pplx-<letters and digits>; mask the whole token.
API_KEY = re.compile(r"pplx-[A-Za-z0-9_\-]+")
# Field names whose values are secrets whatever they look like (compared lower-cased, with
# dashes as underscores, so "X-Api-Key" and "api_key" both match).
SECRET_NAMES = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "api_key",
        "apikey",
        "x_api_key",
        "secret",
        "password",
        "password1",
        "password2",
        "old_password",
        "new_password1",
        "new_password2",
        "csrfmiddlewaretoken",
        "cookie",
        "set_cookie",
        "sessionid",
        "encrypted",
    }
)


def _is_secret_name(name: object) -> bool:
    return isinstance(name, str) and name.lower().replace("-", "_") in SECRET_NAMES


def scrub(value: Any) -> Any:
    """A copy of ``value`` with secrets removed, for any mix of dicts, lists and strings."""
    if isinstance(value, str):
        # Share, invitation and password-reset tokens in URLs and messages, then API keys.
        return API_KEY.sub(FILTERED, redact(value))
    if isinstance(value, dict):
        return {k: FILTERED if _is_secret_name(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Headers sometimes arrive as [name, value] pairs rather than a dict.
        if len(value) == 2 and _is_secret_name(value[0]):
            return type(value)((value[0], FILTERED))
        return type(value)(scrub(item) for item in value)
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's ``before_send``: the event without API keys, passwords or cookies."""
    return scrub(event)


def init(dsn: str, environment: str | None) -> None:
    """Send errors to Sentry. No performance tracing and no personal data by default."""
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        before_send=scrub_event,
        before_breadcrumb=lambda crumb, hint: scrub(crumb),
        send_default_pii=False,
        traces_sample_rate=0.0,
    )
