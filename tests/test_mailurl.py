"""EMAIL_URL parsing: what each scheme means, and refusals that never repeat the password."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from sonarweb.mailurl import CONSOLE, SMTP, parse_email_url


def test_starttls_with_percent_encoded_credentials():
    parsed = parse_email_url("EMAIL_URL", "smtp+tls://me%40example.com:p%2Fw%40rd@mail.example.com")
    assert parsed["EMAIL_BACKEND"] == SMTP
    assert parsed["EMAIL_HOST"] == "mail.example.com"
    assert parsed["EMAIL_PORT"] == 587
    assert parsed["EMAIL_HOST_USER"] == "me@example.com"
    assert parsed["EMAIL_HOST_PASSWORD"] == "p/w@rd"
    assert (parsed["EMAIL_USE_TLS"], parsed["EMAIL_USE_SSL"]) == (True, False)


@pytest.mark.parametrize(
    ("url", "port", "tls", "ssl"),
    [
        ("smtp://relay.internal", 25, False, False),
        ("smtp://relay.internal:2525", 2525, False, False),
        ("smtps://u:p@mail.example.com", 465, False, True),
        ("smtp+ssl://u:p@mail.example.com:4650", 4650, False, True),
    ],
)
def test_ports_and_encryption_by_scheme(url, port, tls, ssl):
    parsed = parse_email_url("EMAIL_URL", url)
    assert (parsed["EMAIL_PORT"], parsed["EMAIL_USE_TLS"], parsed["EMAIL_USE_SSL"]) == (
        port,
        tls,
        ssl,
    )


def test_console_prints_mail():
    assert parse_email_url("EMAIL_URL", "console://") == {"EMAIL_BACKEND": CONSOLE}


@pytest.mark.parametrize(
    "url",
    [
        "smtp://me:s3cr3t@mail.example.com:port",
        "imap://me:s3cr3t@mail.example.com",
        "smtp://me:s3cr3t@",
        "s3cr3t",
    ],
)
def test_what_cannot_be_understood_is_refused_without_the_password(url):
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_email_url("EMAIL_URL", url)
    assert str(caught.value).startswith("EMAIL_URL cannot be parsed")
    assert "s3cr3t" not in str(caught.value)
    # No chained exception that would print the URL in a traceback.
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
