from __future__ import annotations

import http.server
import socket
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from sonarweb import healthcheck
from sonarweb.tracker.models import RefresherBeat


@pytest.mark.django_db
def test_healthz_is_public_and_checks_the_database(anon_client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = anon_client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response["Cache-Control"]


# --- the container health check's sentences (sonarweb/healthcheck.py) --------------------

HOST = socket.gethostname()


def beat(seconds_ago: float) -> RefresherBeat:
    return RefresherBeat.objects.create(
        token=f"health-{seconds_ago}"[:32],
        host=HOST,
        pid=1,
        last_pass_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.04, "0 s"),
        (0.4, "0.4 s"),
        (3, "3 s"),
        (12.4, "12 s"),
        (9.96, "10 s"),
        (59.6, "1 min"),
        (60, "1 min"),
        (100, "1 min 40 s"),
        (185, "3 min 5 s"),
        (200.4, "3 min 20 s"),
        (725, "12 min"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (40000, "11 h"),
        (3 * 86400, "3 days"),
    ],
)
def test_durations_read_as_people_say_them(seconds, said):
    assert healthcheck.duration(seconds) == said


@pytest.mark.django_db
def test_a_stale_refresher_is_reported_in_natural_units(settings, capsys):
    settings.SONARWEB_REFRESH_SECONDS = 2
    beat(seconds_ago=185)
    assert healthcheck.check_refresher() == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"The refresher on {HOST} last finished a pass 3 min 5 s ago, longer than "
        "10 refresh intervals (20 s)."
    )
    assert "0 minutes" not in err


@pytest.mark.django_db
def test_a_live_refresher_says_how_long_ago_in_seconds(settings, capsys):
    settings.SONARWEB_REFRESH_SECONDS = 60  # ten intervals: 10 min
    beat(seconds_ago=12)
    assert healthcheck.check_refresher() == 0
    assert capsys.readouterr().out.strip() == (f"The refresher on {HOST} finished a pass 12 s ago.")


@pytest.mark.django_db
def test_no_pass_yet_is_unhealthy_with_a_sentence(capsys):
    assert healthcheck.check_refresher() == 1
    assert capsys.readouterr().err.strip() == f"No refresher on {HOST} has finished a pass yet."


@pytest.mark.parametrize(
    ("allowed", "origins", "host"),
    [
        ("research.example.com", "", "research.example.com"),
        ("*,research.example.com", "", "research.example.com"),
        (".example.com", "", "example.com"),
        ("*", "", "localhost"),
        ("", "", "localhost"),
        # The site's origin is what visitors ask for, whatever ALLOWED_HOSTS lists first.
        ("localhost,127.0.0.1", "https://research.example.com", "research.example.com"),
        ("research.example.com", "https://*.example.com", "research.example.com"),
        ("research.example.com", "https://research.example.com:8443", "research.example.com:8443"),
    ],
)
def test_the_web_check_asks_with_the_host_visitors_use(monkeypatch, allowed, origins, host):
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", allowed)
    monkeypatch.setenv("DJANGO_CSRF_TRUSTED_ORIGINS", origins)
    assert healthcheck.public_host() == host


@pytest.mark.parametrize(
    ("address", "where"),
    [
        ("8123", ("127.0.0.1", 8123, "/healthz")),
        ("0.0.0.0:8000", ("127.0.0.1", 8000, "/healthz")),
        ("127.0.0.1:9000", ("127.0.0.1", 9000, "/healthz")),
        ("[::]:8000", ("::1", 8000, "/healthz")),
        ("[::1]:8001", ("::1", 8001, "/healthz")),
        ("localhost", ("localhost", 8000, "/healthz")),
        ("http://127.0.0.1:8080/healthz", ("127.0.0.1", 8080, "/healthz")),
        ("http://127.0.0.1:8080", ("127.0.0.1", 8080, "/healthz")),
    ],
)
def test_addresses_are_read_as_gunicorn_binds(address, where):
    conn, path = healthcheck.connection_for(address)
    assert (conn.host, conn.port, path) == where


def test_the_bind_is_read_from_gunicorn_conf_and_port(monkeypatch):
    monkeypatch.setenv("PORT", "8765")
    assert healthcheck.gunicorn_bind() == "0.0.0.0:8765"
    monkeypatch.delenv("PORT")
    assert healthcheck.gunicorn_bind() == "0.0.0.0:8000"


class Answer503(http.server.BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_GET(self) -> None:
        self.hosts.append(self.headers["Host"])
        body = b"database unavailable\n"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_unhealthy_answer_is_named_with_its_reason(monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "research.example.com")
    monkeypatch.delenv("DJANGO_CSRF_TRUSTED_ORIGINS", raising=False)
    Answer503.hosts = []
    server = http.server.HTTPServer(("127.0.0.1", 0), Answer503)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        address = f"127.0.0.1:{server.server_port}"
        assert healthcheck.check_web(address) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert Answer503.hosts == ["research.example.com"]
    assert capsys.readouterr().err.strip() == (
        f"GET /healthz for research.example.com at {address} answered 503 (database unavailable)."
    )
