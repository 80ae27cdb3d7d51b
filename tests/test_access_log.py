"""Share, invitation and password-reset tokens never reach the logs (sonarweb/accesslog.py):
not gunicorn's access log, not its error log, not Django's own request warnings."""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from gunicorn.config import Config

from sonarweb.accesslog import RedactingLogger, RedactSecrets, redact

from .test_image import (  # noqa: F401 - ``container`` is a fixture
    ROOT,
    container,
    entrypoint,
    healthcheck,
    run_role,
    stop,
    wait_until,
)

HOST = "research.example.com"
SHA = "0" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/s/AbC-12_x/", "/s/[redacted]/"),
        ("/s/AbC-12_x", "/s/[redacted]"),  # before APPEND_SLASH redirects it
        (f"/s/AbC-12_x/images/{SHA}.webp", f"/s/[redacted]/images/{SHA}.webp"),
        ("/invite/tok3n/?utm=mail", "/invite/[redacted]/?[redacted]"),
        ('GET /invite/tok3n/ HTTP/1.1" 404', 'GET /invite/[redacted]/ HTTP/1.1" 404'),
        ("/accounts/reset/MQ/c4x-9a8b7c/", "/accounts/reset/MQ/[redacted]/"),
        ("/accounts/reset/MQ/set-password/", "/accounts/reset/MQ/set-password/"),
        ("https://research.example.com/s/tok3n/", "https://research.example.com/s/[redacted]/"),
        ("/login/?next=%2Fs%2Ftok3n%2F&x=1", "/login/?next=%2Fs%2F[redacted]%2F&x=1"),
        ("Not Found: /s/tok3n/", "Not Found: /s/[redacted]/"),
        # Everything else as it was.
        ("/r/abc123/answer/?tab=sources", "/r/abc123/answer/?tab=sources"),
        ("/static/css/app.css", "/static/css/app.css"),
        ("/docs/s/", "/docs/s/"),
        ("/links/", "/links/"),
        ("/s/", "/s/"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_the_logging_filter_redacts_the_formatted_message():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", ("/s/tok3n/",), None
    )
    assert RedactSecrets().filter(record) is True
    assert record.getMessage() == "Not Found: /s/[redacted]/"
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "%d%% done", (5,), None)
    assert RedactSecrets().filter(plain) and plain.getMessage() == "5% done"


def atoms(path: str, raw_uri: str, query: str = "", referer: str = "-") -> dict:
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": referer,
    }
    resp = SimpleNamespace(status="404 Not Found", headers=[], sent=0)
    req = SimpleNamespace(headers=[("REFERER", referer)])
    logger = RedactingLogger(Config())
    return logger.atoms(resp, req, environ, timedelta(milliseconds=3))


def test_the_access_log_atoms_of_a_secret_path_hold_no_token():
    # Percent-encoded, the same URL still reaches the share view: the line is rebuilt from
    # the decoded path.
    found = atoms("/s/tok3n/", "/%73/tok%33n/?a=tok3n", query="a=tok3n")
    assert found["r"] == "GET /s/[redacted]/?[redacted] HTTP/1.1"
    assert (found["U"], found["q"]) == ("/s/[redacted]/", "[redacted]")
    assert found["{raw_uri}e"] == "/s/[redacted]/?[redacted]"
    assert "tok3n" not in repr(found) and "tok%33n" not in repr(found)


def test_the_access_log_atoms_of_other_paths_are_as_they_were_but_the_referer():
    found = atoms(
        "/static/css/app.css", "/static/css/app.css?v=2", "v=2", f"https://{HOST}/s/tok3n/"
    )
    assert found["r"] == "GET /static/css/app.css?v=2 HTTP/1.1"
    assert (found["U"], found["q"]) == ("/static/css/app.css", "v=2")
    assert found["f"] == found["{referer}i"] == f"https://{HOST}/s/[redacted]/"


def test_gunicorn_and_django_log_secret_paths_without_their_tokens(container):  # noqa: F811
    env = {**container, "SONARWEB_BEHIND_PROXY": "1"}
    assert run_role(env, "migrate").returncode == 0
    token = {name: secrets.token_urlsafe(32) for name in ("share", "image", "invite", "query")}
    token |= {name: secrets.token_urlsafe(32) for name in ("posted", "reset", "referer")}
    web = subprocess.Popen(
        entrypoint(), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_until(lambda: healthcheck(env) == 0 or web.poll() is not None, "healthy web")
        assert web.poll() is None, "gunicorn exited"
        headers = {"Host": HOST, "X-Forwarded-Proto": "https"}
        base = f"http://127.0.0.1:{env['PORT']}"
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            assert http.get(f"/s/{token['share']}/").status_code == 404
            assert http.get(f"/s/{token['image']}/images/{SHA}.webp").status_code == 404
            invite = http.get(f"/invite/{token['invite']}/", params={"t": token["query"]})
            assert invite.status_code == 404
            assert http.post(f"/invite/{token['posted']}/").status_code == 403  # no CSRF
            assert http.get(f"/accounts/reset/MQ/{token['reset']}/").status_code == 404
            referer = {"Referer": f"https://{HOST}/s/{token['referer']}/"}
            assert http.get("/accounts/login/", headers=referer).status_code == 200
            assert http.get("/accounts/login/?next=/links/").status_code == 200
    finally:
        code, out, err = stop(web)
    logs = out.decode() + err.decode()
    assert code == 0, logs
    for name, value in token.items():
        assert value not in logs, name
    # gunicorn's access log: the path, with the token replaced.
    assert '"GET /s/[redacted]/ HTTP/1.1" 404' in logs
    assert f'"GET /s/[redacted]/images/{SHA}.webp HTTP/1.1" 404' in logs
    assert '"GET /invite/[redacted]/?[redacted] HTTP/1.1" 404' in logs
    assert '"POST /invite/[redacted]/ HTTP/1.1" 403' in logs
    assert '"GET /accounts/reset/MQ/[redacted]/ HTTP/1.1" 404' in logs
    assert '"GET /accounts/login/ HTTP/1.1" 200 ' in logs
    assert f'"https://{HOST}/s/[redacted]/"' in logs  # the Referer
    # Other paths as they are.
    assert '"GET /accounts/login/?next=/links/ HTTP/1.1" 200' in logs
    # Django's own warnings about the same requests.
    assert "Not Found: /s/[redacted]/" in logs
    assert "Not Found: /invite/[redacted]/" in logs
    assert re.search(r"django\.security\.csrf Forbidden \(.*\): /invite/\[redacted\]/\n", logs)


def test_an_api_token_anywhere_is_redacted() -> None:
    from sonarweb.accesslog import redact

    token = "sw_" + "a1B2" * 12
    assert token not in redact(f"GET /api/v1/requests?token={token} HTTP/1.1")
    assert redact("sw_short stays") == "sw_short stays"
