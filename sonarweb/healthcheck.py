"""Container health checks.

``python -m sonarweb.healthcheck`` (web): GET /healthz on the local gunicorn with an allowed
Host; exits 0 when the app answers 200, 1 otherwise. Uses only the standard library so it runs
without Django being imported.

``python -m sonarweb.healthcheck refresher``: exits 0 while a refresher on this machine has
finished a pass within the last ten refresh intervals (as recorded in the database), 1 with a
sentence otherwise.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


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
    from sonarweb.tracker.liveness import check_refresher as alive

    ok, sentence = alive()
    print(sentence, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    role = argv[0] if argv else "web"
    if role == "refresher":
        return check_refresher()
    return check_web()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
