"""Container health check for whichever role the container runs.

    python -m sonarweb.healthcheck [web|refresher|migrate|manage]

With no argument the role is the one the image's entrypoint recorded (see role_file()),
else ``SONARWEB_ROLE``, else ``web``. A Dockerfile has one HEALTHCHECK for every container
of the image, and Docker runs it as a fresh process with the image's environment, not the
entrypoint's, so a variable exported by the entrypoint would not reach it: a file does.

- web: GET /healthz on the local gunicorn with an allowed Host; standard library only, so
  it runs without importing Django.
- refresher: a refresher on this machine finished a pass within the last ten refresh
  intervals, as recorded in the database (tracker/liveness.py); else a sentence says why.
- migrate and manage: one-off commands; nothing to watch, so healthy.

Exits 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROLES = ("web", "refresher", "migrate", "manage")


def role_file() -> Path:
    return Path(os.environ.get("SONARWEB_ROLE_FILE", "/tmp/sonarweb.role"))  # noqa: S108 - the image's own tmp


def current_role() -> str:
    try:
        recorded = role_file().read_text().strip()
    except OSError:
        recorded = ""
    return recorded or os.environ.get("SONARWEB_ROLE", "").strip() or "web"


def check_web() -> int:
    hosts = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h.strip()]
    host = next((h for h in hosts if h != "*" and not h.startswith(".")), "localhost")
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 - fixed local URL
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


def check_refresher() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sonarweb.settings")
    import django

    django.setup()
    from sonarweb.tracker.liveness import check_refresher as last_pass_is_recent

    healthy, sentence = last_pass_is_recent()
    print(sentence, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def main(argv: list[str]) -> int:
    role = argv[0] if argv else current_role()
    if role == "web":
        return check_web()
    if role == "refresher":
        return check_refresher()
    if role in ROLES:
        return 0
    print(f"Unknown role {role!r}: expected one of {', '.join(ROLES)}.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
