"""Health checks for whichever role this container (or machine) runs.

    python -m sonarweb.healthcheck [web [ADDRESS] | refresher | migrate | manage]
    python -m sonarweb.healthcheck database [--wait SECONDS]

With no argument the role is the one the image's entrypoint recorded (see role_file()),
else ``SONARWEB_ROLE``, else ``web``. A Dockerfile has one HEALTHCHECK for every container
of the image, and Docker runs it as a fresh process with the image's environment, not the
entrypoint's, so a variable exported by the entrypoint would not reach it: a file does.

- web: GET /healthz from the local gunicorn, with the Host visitors send (public_host());
  standard library only, so it runs without importing Django. The address is ADDRESS when
  given (a port, HOST:PORT, unix:PATH or a URL), else gunicorn.conf.py's bind (PORT). The
  systemd unit binds 127.0.0.1:${PORT}, so the same check works on bare metal with
  /etc/sonarweb/env loaded.
- refresher: a refresher on this machine finished a pass within the last ten refresh
  intervals, as recorded in the database (tracker/following/liveness.py); else a sentence says why.
- migrate and manage: one-off commands; nothing to watch, so healthy.
- database: not a role but the entrypoint's first step: wait (up to --wait seconds) until
  the database accepts a connection, saying so once per try, since some Compose tools
  (podman-compose 1.0) ignore depends_on's health conditions.

Exits 0 when healthy, 1 otherwise, with a sentence on standard error saying why.
"""

from __future__ import annotations

import http.client
import os
import runpy
import socket
import sys
import time
import urllib.parse
from pathlib import Path

ROLES = ("web", "refresher", "migrate", "manage")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = "8000"
# Both within Docker's 10 s HEALTHCHECK timeout.
REQUEST_TIMEOUT = 4.0
# The server answered, and said no to the login: waiting would not help. (A connection
# error from libpq carries no SQLSTATE, only the server's sentence.)
LOGIN_REFUSED = ("password authentication failed", "no pg_hba.conf entry")


def role_file() -> Path:
    return Path(os.environ.get("SONARWEB_ROLE_FILE", "/tmp/sonarweb.role"))  # noqa: S108 - the image's own tmp


def current_role() -> str:
    try:
        recorded = role_file().read_text().strip()
    except OSError:
        recorded = ""
    return recorded or os.environ.get("SONARWEB_ROLE", "").strip() or "web"


def say(sentence: str) -> None:
    print(sentence, file=sys.stderr)


def duration(seconds: float) -> str:
    """A span as people say it: "0.4 s", "12 s", "3 min", "1 min 40 s", "2 h", "3 days"."""
    tenths = f"{max(seconds, 0.0):.1f}"
    if float(tenths) < 10:
        return tenths.removesuffix(".0") + " s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {rest} s" if rest and minutes < 10 else "")
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {minutes} min" if minutes and hours < 10 else "")
    return f"{hours // 24} days"


# --- web ---------------------------------------------------------------------------------


def env_items(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def public_host() -> str:
    """The Host visitors send: the site's own origin in DJANGO_CSRF_TRUSTED_ORIGINS when one
    is named (docs/deployment.md asks for both), else the first DJANGO_ALLOWED_HOSTS entry
    that names a host. A health check asking for an allowed host while visitors ask for
    another would answer healthy while every visitor gets 400."""
    for origin in env_items("DJANGO_CSRF_TRUSTED_ORIGINS"):
        netloc = urllib.parse.urlsplit(origin).netloc
        if netloc and "*" not in netloc:
            return netloc
    for host in env_items("DJANGO_ALLOWED_HOSTS"):
        if host != "*":
            return host.removeprefix(".")  # ".example.com" allows example.com itself
    return "localhost"


def gunicorn_bind() -> str:
    """The first address gunicorn binds by gunicorn.conf.py (0.0.0.0:PORT); the systemd
    unit's --bind 127.0.0.1:${PORT} has the same port."""
    bind: object = None
    config = ROOT / "gunicorn.conf.py"
    if config.is_file():
        bind = runpy.run_path(str(config)).get("bind")
    if isinstance(bind, list | tuple) and bind:
        bind = bind[0]
    return bind if isinstance(bind, str) else f"0.0.0.0:{os.environ.get('PORT', DEFAULT_PORT)}"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def connection_for(address: str) -> tuple[http.client.HTTPConnection, str]:
    """(a connection, the path to ask) for a port, HOST:PORT, [V6]:PORT, unix:PATH or URL."""
    if address.startswith("unix:"):
        return UnixHTTPConnection(address.removeprefix("unix:"), REQUEST_TIMEOUT), "/healthz"
    if "://" in address:
        url = urllib.parse.urlsplit(address)
        connection_class = (
            http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        )
        conn = connection_class(url.hostname or "127.0.0.1", url.port, timeout=REQUEST_TIMEOUT)
        return conn, url.path or "/healthz"
    if address.isdigit():
        address = f"127.0.0.1:{address}"
    host, colon, port = address.rpartition(":")
    if not colon or "]" in port:  # a bare host (gunicorn's port is then 8000)
        host, port = address, DEFAULT_PORT
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):  # noqa: S104 - a bind to every address: ask on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT), "/healthz"


def check_web(address: str | None = None) -> int:
    address = address or gunicorn_bind()
    if address.startswith("fd://"):
        say(f"gunicorn binds {address}: give the health check an address to ask instead.")
        return 1
    host = public_host()
    try:
        conn, path = connection_for(address)
    except ValueError:
        say(f"Cannot read {address!r} as a port, HOST:PORT, unix:PATH or URL.")
        return 1
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        status = response.status
        said = response.read(200).decode("utf-8", "replace").strip().splitlines()
    except OSError as exc:
        say(f"Nothing answered at {address} ({exc.strerror or exc}).")
        return 1
    finally:
        conn.close()
    if status == 200:
        return 0
    if status == 400:
        say(
            f"GET {path} for {host} answered 400: DJANGO_ALLOWED_HOSTS does not allow {host}, "
            "so every visitor to it gets 400 too."
        )
    else:
        because = f" ({said[0][:100]})" if said else ""
        say(f"GET {path} for {host} at {address} answered {status}{because}.")
    return 1


# --- refresher ---------------------------------------------------------------------------


def check_refresher() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sonarweb.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db.models import Max
    from django.utils import timezone

    from sonarweb.tracker.following.liveness import INTERVALS
    from sonarweb.tracker.models import RefresherBeat

    host = socket.gethostname()
    horizon = INTERVALS * float(settings.SONARWEB_REFRESH_SECONDS)
    beats = RefresherBeat.objects.filter(host=host[:255])
    last = beats.aggregate(last=Max("last_pass_at"))["last"]
    if last is None:
        say(f"No refresher on {host} has finished a pass yet.")
        return 1
    age = (timezone.now() - last).total_seconds()
    if age > horizon:
        say(
            f"The refresher on {host} last finished a pass {duration(age)} ago, longer than "
            f"{INTERVALS} refresh intervals ({duration(horizon)})."
        )
        return 1
    print(f"The refresher on {host} finished a pass {duration(age)} ago.")
    return 0


# --- database ----------------------------------------------------------------------------


def database_place(params: dict) -> str:
    host = params.get("HOST") or "the local socket"
    port = params.get("PORT")
    return f"{host}:{port}" if port and not str(host).startswith("/") else str(host)


def why(exc: Exception) -> str:
    """The driver's reason in a few words: 'Connection refused', not its whole paragraph."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    reason = lines[0].rpartition("failed: ")[2].removeprefix("FATAL:").strip().rstrip(".")
    return reason or lines[0]


def wait_for_database(seconds: float) -> int:
    """0 once the database accepts a connection (at once for SQLite); 1 after ``seconds``."""
    from sonarweb.startup import require_valid_settings

    require_valid_settings()  # a bad setting: its one sentence, and exit
    from django.db import OperationalError, connections

    connection = connections["default"]
    if connection.vendor == "sqlite":
        return 0
    place = database_place(connection.settings_dict)
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            reason = why(exc)
            if any(words in reason for words in LOGIN_REFUSED):
                say(f"The database at {place} refused the login ({reason}): check DATABASE_URL.")
                return 1
            left = deadline - time.monotonic()
            if left <= 0:
                say(
                    f"The database at {place} did not answer within {duration(seconds)} "
                    f"({reason}): check DATABASE_URL and that the database is running."
                )
                return 1
            say(f"Waiting for the database at {place} ({reason}); {duration(left)} left.")
            time.sleep(min(2.0, max(left, 0.1)))
        else:
            connection.close()
            return 0


# --- command line ------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    role = argv[0] if argv else current_role()
    rest = argv[1:]
    if role == "web":
        return check_web(rest[0] if rest else None)
    if role == "refresher":
        return check_refresher()
    if role == "database":
        seconds = float(rest[1]) if rest[:1] == ["--wait"] and len(rest) > 1 else 0.0
        return wait_for_database(seconds)
    if role in ROLES:
        return 0
    say(f"Unknown role {role!r}: expected one of {', '.join(ROLES)}.")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
