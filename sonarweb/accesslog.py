"""Secrets that travel in URLs, kept out of the logs.

A public share link (/s/<token>/, and its images under it), an invitation
(/invite/<token>/) and a password-reset link (/accounts/reset/<uid>/<token>/) are each
a way in for whoever holds the URL. Logs are read by more people, and kept longer, than the
links should reach, so each such token is logged as ``[redacted]``, and so is the query
string of such a path. The rest of the line stays as it was, to tell requests apart.

``redact`` does it to any text; ``RedactSecrets`` is a logging filter that does it to a
record's message (Django's LOGGING puts it on the console handler, which catches e.g.
django.request's "Not Found: /s/<token>/"); ``RedactingLogger`` is gunicorn's logger with
it applied to the access log's atoms (the request line, path, query string, Referer and any
header or environ atom a format names) and to gunicorn's own error log, which names the
path of a request that failed. gunicorn.conf.py sets it as ``logger_class``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

REDACTED = "[redacted]"

_SLASH = r"(?:/|%2F)"  # also inside a query string, percent-encoded (?next=%2Fs%2F...)
_END = r"/?#&\s\"'"
SECRET_PATH = re.compile(
    rf"(?P<head>{_SLASH}(?:s|invite){_SLASH}"
    rf"|{_SLASH}accounts{_SLASH}reset{_SLASH}[^%{_END}]+{_SLASH})"
    # Django's reset view moves the token into the session and redirects to set-password/.
    rf"(?!set-password(?:[{_END}%]|$))"
    rf"(?P<token>[^%{_END}]+)"
    rf"(?P<rest>[^?#&\s\"']*)"
    rf"(?P<query>\?[^#\s\"']*)?",
    re.IGNORECASE,
)


def _replace(match: re.Match[str]) -> str:
    query = match["query"]
    return match["head"] + REDACTED + match["rest"] + (f"?{REDACTED}" if query else "")


# An API token a client put where it does not belong (a URL, a log message).
API_TOKEN = re.compile(r"\bsw_[A-Za-z0-9]{48}\b")


def redact(text: str) -> str:
    """``text`` with the token (and query string) of every secret path in it replaced, and
    any API token."""
    return API_TOKEN.sub(REDACTED, SECRET_PATH.sub(_replace, text))


class RedactSecrets(logging.Filter):
    """A logging filter that redacts secret paths in a record's message (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad record is the handler's to report
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_ERRORS_FILTER = RedactSecrets()


class RedactingLogger(Logger):
    """gunicorn's logger, with secret paths redacted in the access and error logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.addFilter(_ERRORS_FILTER)  # the same filter, so added once

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        path = environ.get("PATH_INFO") or ""
        if SECRET_PATH.search(path):
            # Rebuilt from the decoded path, so that a percent-encoded spelling of the same
            # URL cannot carry the token past the pattern.
            query = f"?{REDACTED}" if environ.get("QUERY_STRING") else ""
            uri = redact(path) + query
            method, protocol = environ.get("REQUEST_METHOD"), environ.get("SERVER_PROTOCOL")
            atoms.update(
                {
                    "r": f"{method} {uri} {protocol}",
                    "U": redact(path),
                    "q": REDACTED if query else "",
                    "{raw_uri}e": uri,
                    "{path_info}e": redact(path),
                    "{query_string}e": REDACTED if query else "",
                }
            )
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}
