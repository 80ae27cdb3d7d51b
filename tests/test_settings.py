"""Start-up behaviour of the settings module, run as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from sonarweb.env import env_secret

ROOT = Path(__file__).resolve().parent.parent


def isolated(env: dict[str, str]) -> dict[str, str]:
    """``env`` over this process's environment, less anything that configures sonarweb: nothing
    of the developer's own configuration, or of the test settings', leaks into a start-up."""
    ours = ("DJANGO_", "SONARWEB_", "DATABASE_", "EMAIL_", "SENTRY_", "GUNICORN_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(ours)}, **env}


def manage(*args: str, env: dict[str, str], check: bool = False) -> subprocess.CompletedProcess:
    """``manage.py ARGS`` with sonarweb.settings (manage.py's default) and only ``env``."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=isolated(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def production(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": "x" * 60 + "-not-a-real-secret-but-long-and-random-enough-91f3",
        "SONARWEB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "research.example.com",
        "SONARWEB_DATA_DIR": str(tmp_path / "data"),
        "SONARWEB_STATIC_ROOT": str(tmp_path / "static"),
        **extra,
    }


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "SONARWEB_ENCRYPTION_KEYS"])
def test_missing_secret_stops_start_up_with_a_clear_message(tmp_path, missing):
    env = production(tmp_path)
    env.pop(missing)
    result = manage("check", env=env)
    assert result.returncode != 0
    assert result.stderr.strip().startswith(f"sonarweb cannot start: {missing} is not set")


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_secrets_can_come_from_files(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("f" * 64 + "\n")
    env = production(tmp_path, DJANGO_SECRET_KEY_FILE=str(secret_file))
    env.pop("DJANGO_SECRET_KEY")
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    result = manage("shell", "--no-imports", "-c", code, env=env)
    assert result.stdout.strip() == "f" * 64, result.stderr


def test_debug_generates_secrets_once_and_keeps_them(tmp_path):
    env = {"DJANGO_DEBUG": "1", "SONARWEB_DATA_DIR": str(tmp_path / "data")}
    code = (
        "from django.conf import settings; print(settings.SECRET_KEY, settings.ENCRYPTION_KEYS[0])"
    )
    first = manage("shell", "--no-imports", "-c", code, env=env, check=True).stdout
    second = manage("shell", "--no-imports", "-c", code, env=env, check=True).stdout
    assert first == second and len(first.split()) == 2
    kept = tmp_path / "data" / "encryption_keys"
    assert kept.exists() and oct(kept.stat().st_mode & 0o777) == "0o600"
    Fernet(first.split()[1].encode())


def test_production_defaults_are_secure(tmp_path):
    code = (
        "from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, "
        "s.DATABASES['default']['ENGINE'])"
    )
    out = manage(
        "shell", "--no-imports", "-c", code, env=production(tmp_path), check=True
    ).stdout.split()
    assert out == ["False", "True", "True", "True", "True", "django.db.backends.sqlite3"]
    insecure = manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        env=production(tmp_path, SONARWEB_INSECURE_HTTP="1"),
        check=True,
    ).stdout.split()
    assert insecure[1:4] == ["False", "False", "False"]


def test_database_url_selects_postgresql(tmp_path):
    env = production(tmp_path, DATABASE_URL="postgres://u:p@db.internal:5433/sonar")
    code = (
        "from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(d['ENGINE'], d['HOST'], d['PORT'], d['NAME'], d['CONN_HEALTH_CHECKS'], "
        "d.get('OPTIONS') or {})"
    )
    out = manage("shell", "--no-imports", "-c", code, env=env, check=True).stdout.split()
    assert out == ["django.db.backends.postgresql", "db.internal", "5433", "sonar", "True", "{}"]


def test_accounts_can_be_made_without_a_prompt(tmp_path):
    env = production(
        tmp_path,
        DJANGO_SUPERUSER_USERNAME="admin",
        DJANGO_SUPERUSER_PASSWORD="a-long-password-for-tests-51",
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
    )
    manage("migrate", "--noinput", env=env, check=True)
    result = manage("createsuperuser", "--noinput", env=env)
    assert result.returncode == 0, result.stderr
    code = "from django.contrib.auth.models import User; print(User.objects.get().is_superuser)"
    assert manage("shell", "--no-imports", "-c", code, env=env, check=True).stdout.strip() == "True"


def test_generated_secret_is_created_private_not_made_private_later(tmp_path, monkeypatch):
    monkeypatch.delenv("SONARWEB_TEST_SECRET", raising=False)
    monkeypatch.delenv("SONARWEB_TEST_SECRET_FILE", raising=False)
    # A chmod after the write would leave a moment with the umask's mode; make it show.
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    kept = tmp_path / "data" / "test_secret"
    old_umask = os.umask(0o022)
    try:
        value = env_secret("SONARWEB_TEST_SECRET", generate=kept)
    finally:
        os.umask(old_umask)
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    assert value and kept.read_text() == value
    # A second start keeps it.
    assert env_secret("SONARWEB_TEST_SECRET", generate=kept) == value


def test_a_missing_secret_is_refused_unless_generating_is_asked_for(monkeypatch):
    monkeypatch.delenv("SONARWEB_TEST_SECRET", raising=False)
    monkeypatch.delenv("SONARWEB_TEST_SECRET_FILE", raising=False)
    with pytest.raises(ImproperlyConfigured, match=r"^SONARWEB_TEST_SECRET is not set: "):
        env_secret("SONARWEB_TEST_SECRET")


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "SONARWEB_ENCRYPTION_KEYS"])
def test_a_production_process_refuses_to_start_without_secrets_whatever_says_testing(
    tmp_path, missing
):
    # The switches that once made any process a test run: SONARWEB_TESTING=1, and pytest
    # imported. Neither may generate a secret outside debug mode.
    env = production(tmp_path, SONARWEB_TESTING="1")
    env.pop(missing)
    result = manage("check", env=env)
    assert result.returncode != 0
    assert result.stderr.strip().startswith(f"sonarweb cannot start: {missing} is not set")

    probe = subprocess.run(
        [sys.executable, "-c", "import pytest, django; django.setup()"],
        cwd=ROOT,
        env={**isolated(env), "DJANGO_SETTINGS_MODULE": "sonarweb.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode != 0
    assert f"ImproperlyConfigured: {missing} is not set" in probe.stderr
    data = tmp_path / "data"
    assert not (data / "secret_key").exists() and not (data / "encryption_keys").exists()


# --- refusals: one sentence naming the variable, never its value --------------------------

# Fixed, so that parallel workers collect the same test ids.
GOOD_KEY = "wrrgn3UU1Wsc8jSi2toO8ZXoeMNjVeqGjLA420Wp7VY="


def refused(result: subprocess.CompletedProcess, variable: str, value: str) -> str:
    """The complaint, checked: non-zero exit, one line naming the variable, no value, no
    traceback."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"sonarweb cannot start: {variable} ")
    assert value not in result.stderr + result.stdout
    return lines[0]


@pytest.mark.parametrize("command", [("check",), ("migrate", "--noinput"), ("refresh_requests",)])
def test_empty_allowed_hosts_is_refused_by_every_command(tmp_path, command):
    result = manage(*command, env=production(tmp_path, DJANGO_ALLOWED_HOSTS=" , "))
    assert "DJANGO_ALLOWED_HOSTS is empty" in refused(result, "DJANGO_ALLOWED_HOSTS", " , ")


@pytest.mark.parametrize(
    "keys",
    [
        "notakey",
        f"{GOOD_KEY},c2hvcnQ=",  # valid base64, but 5 bytes
        f"{GOOD_KEY},{GOOD_KEY[:-2]}!!",
    ],
)
def test_a_malformed_encryption_key_is_refused(tmp_path, keys):
    result = manage("check", env=production(tmp_path, SONARWEB_ENCRYPTION_KEYS=keys))
    bad = keys.split(",")[-1]
    line = refused(result, "SONARWEB_ENCRYPTION_KEYS", bad)
    assert "not a valid Fernet key" in line


@pytest.mark.parametrize(
    "url",
    [
        "notaurl-with-s3cr3t",
        "postgres://sonarweb:s3cr3t@db:notaport/sonarweb",
        "postgres://sonarweb:s3cr3t@db:5432/",
        "http://sonarweb:s3cr3t@db/sonarweb",
    ],
)
def test_an_unparsable_database_url_is_refused_without_its_password(tmp_path, url):
    result = manage("check", env=production(tmp_path, DATABASE_URL=url))
    refused(result, "DATABASE_URL", "s3cr3t")


def test_an_unparsable_database_url_file_is_refused_too(tmp_path):
    url_file = tmp_path / "database_url"
    url_file.write_text("postgres://sonarweb:s3cr3t@db:port/x\n")
    result = manage("check", env=production(tmp_path, DATABASE_URL_FILE=str(url_file)))
    refused(result, "DATABASE_URL", "s3cr3t")


def test_database_url_can_come_from_a_file(tmp_path):
    url_file = tmp_path / "database_url"
    url_file.write_text("postgres://u:p@db.internal:5433/from_file\n")
    env = production(tmp_path, DATABASE_URL_FILE=str(url_file))
    code = "from django.conf import settings as s; print(s.DATABASES['default']['NAME'])"
    out = manage("shell", "--no-imports", "-c", code, env=env, check=True).stdout.strip()
    assert out == "from_file"


def test_an_unreadable_secret_file_is_refused(tmp_path):
    env = production(tmp_path, DJANGO_SECRET_KEY_FILE=str(tmp_path / "missing"))
    env.pop("DJANGO_SECRET_KEY")
    line = refused(manage("check", env=env), "DJANGO_SECRET_KEY_FILE", "\x00")
    assert "cannot read" in line


def test_an_empty_secret_file_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    env = production(tmp_path, SONARWEB_ENCRYPTION_KEYS_FILE=str(empty))
    env.pop("SONARWEB_ENCRYPTION_KEYS")
    assert "is empty" in refused(manage("check", env=env), "SONARWEB_ENCRYPTION_KEYS_FILE", "\x00")


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PERPLEXITY_READ_TIMEOUT", "soon", "must be a number"),
        ("SONARWEB_REFRESH_SECONDS", "2s", "must be a number"),
        ("SONARWEB_REFRESH_WORKERS", "four", "must be a whole number"),
    ],
)
def test_a_malformed_number_is_refused(tmp_path, variable, value, says):
    result = manage("check", env=production(tmp_path, **{variable: value}))
    assert result.returncode != 0
    line = result.stderr.strip()
    assert line == f"sonarweb cannot start: {variable} {says}, not {value!r}.", result.stderr


def test_an_unparsable_email_url_is_refused_without_its_password(tmp_path):
    result = manage("check", env=production(tmp_path, EMAIL_URL="smtp://me:s3cr3t@mail:port"))
    refused(result, "EMAIL_URL", "s3cr3t")


def test_sentry_gets_the_scrubber(tmp_path):
    # A DSN on this machine's loopback: nothing is sent unless an error is captured.
    env = production(tmp_path, SENTRY_DSN="http://public@127.0.0.1:9/1")
    code = (
        "import django, sentry_sdk; django.setup(); "
        "print(sentry_sdk.get_client().options['before_send'].__qualname__)"
    )
    out = manage("shell", "--no-imports", "-c", code, env=env, check=True).stdout.strip()
    assert out == "scrub_event"
