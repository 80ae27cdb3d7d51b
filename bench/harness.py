"""What the benchmarks that run the real server share: production-like settings in a
temporary directory, a gunicorn on a free loopback port, and a signed-in session.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-not-secret-7f3a"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(data_dir: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="sonarweb.settings",
        SONARWEB_DATA_DIR=str(data_dir / "data"),
        SONARWEB_STATIC_ROOT=str(data_dir / "static"),
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        SONARWEB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        SONARWEB_INSECURE_HTTP="1",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SONARWEB_LOG_LEVEL="WARNING",
    )
    return env


def setup_site(env: dict[str, str]) -> Any:
    """Configure Django from ``env`` in this process, migrate, collect static files and
    create (or, in a database kept from an earlier run, reset) the benchmark user, whom it
    returns."""
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    user, _ = User.objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    user.set_password(PASSWORD)
    user.save()
    return user


@contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int, log: Path) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "sonarweb.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    with log.open("wb") as errors:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=errors, stderr=errors)
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"gunicorn exited:\n{log.read_text()}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not answer /healthz:\n{log.read_text()}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sign_in(base: str) -> httpx.Cookies:
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the login page"
        response = client.post(
            "/accounts/login/",
            data={
                "username": "bench",
                "password": PASSWORD,
                "csrfmiddlewaretoken": token.group(1),
            },
        )
        assert response.status_code == 302, f"sign-in failed with {response.status_code}"
        return client.cookies


@contextmanager
def refresher(env: dict[str, str], log: Path, interval: float = 1.0) -> Iterator[Any]:
    """The background refresher as its own process, as in production; ready when it says so."""
    command = [sys.executable, "manage.py", "refresh_requests", "--interval", str(interval)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while b"Refreshing unfinished requests" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the refresher did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
