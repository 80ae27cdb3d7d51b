"""Outgoing mail from one URL (``EMAIL_URL``), parsed strictly.

Schemes: ``smtp://`` (plain, e.g. a local relay), ``smtp+tls://`` (STARTTLS, port 587 by
default), ``smtps://`` (implicit TLS, port 465 by default) and ``console://`` (prints each
message to standard output, for trying things out). User and password are percent-decoded,
so a password with ``@`` or ``/`` is written ``%40`` or ``%2F``.

A URL that cannot be understood stops start-up rather than making password reset say
"sent" while nothing leaves; since it holds a password, messages never repeat it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

SMTP = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE = "django.core.mail.backends.console.EmailBackend"

# scheme -> (use STARTTLS, use implicit TLS, default port)
SMTP_SCHEMES = {
    "smtp": (False, False, 25),
    "smtp+tls": (True, False, 587),
    "smtps": (False, True, 465),
    "smtp+ssl": (False, True, 465),
}


def parse_email_url(name: str, url: str) -> dict[str, Any]:
    """Django's EMAIL_* settings for ``url``; ``name`` is the variable it came from."""
    problem = ImproperlyConfigured(
        f"{name} cannot be parsed as a mail URL "
        "(expected e.g. smtp+tls://user:password@mail.example.com:587)."
    )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise problem from None
    scheme = parts.scheme.lower()
    if scheme == "console":
        return {"EMAIL_BACKEND": CONSOLE}
    if scheme not in SMTP_SCHEMES or not parts.hostname:
        raise problem
    starttls, implicit_tls, default_port = SMTP_SCHEMES[scheme]
    return {
        "EMAIL_BACKEND": SMTP,
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port or default_port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": starttls,
        "EMAIL_USE_SSL": implicit_tls,
        # A mail server that hangs must not hold a request thread for long.
        "EMAIL_TIMEOUT": 10,
    }
