"""Backups are part of the product: scripts/backup.sh writes one file holding the database,
the image archive and a manifest, scripts/restore.sh puts it back, and a restored instance
serves its images and bundles with the same bytes. A restore without the media folder is
noticed (``manage.py check_media``), the page says so, and ``manage.py archive_images`` fetches
the pictures again from where the answer found them.

The source instance is the test database itself (committed rows: transactional tests) with a
data directory of the test's own. The restored instance runs in another process, with its
own DATABASE_URL and SONARWEB_DATA_DIR, as a deployment would. SQLite runs in `make test`,
PostgreSQL (a new database created for the target, and the compose wrappers through a
stand-in `docker`) in `make test-postgres`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from sonarweb.media.background import archive_due_images
from sonarweb.media.integrity import MISSING_REASON
from sonarweb.media.models import AnswerBundle, AnswerImage
from sonarweb.tracker.archive.images import build_due_bundles
from sonarweb.tracker.archive.store import rerender_many
from sonarweb.tracker.models import TrackedRequest

from .conftest import OWNER_KEY, poll

ROOT = Path(__file__).resolve().parent.parent
BACKUP = ROOT / "scripts" / "backup.sh"
RESTORE = ROOT / "scripts" / "restore.sh"

on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite round trip")
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL"
)
pytestmark = pytest.mark.django_db(transaction=True)

# Run in the restored instance: its permalink, every image the page shows and its bundle.
SERVE = r"""
import hashlib, json, re, sys
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.contrib.auth.models import User
from django.test import Client

slug, username = sys.argv[1:3]
client = Client()
client.force_login(User.objects.get(username=username))

def fetched(url):
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.status_code == 200 else b""
    return [response.status_code, hashlib.sha256(body).hexdigest()]

page = client.get(f"/r/{slug}/").content.decode()
summary = re.search(r"<summary>(Images:[^<]*)</summary>", page)
print(json.dumps({
    "summary": summary.group(1) if summary else None,
    "page": page,
    "images": {sha: fetched(f"/images/{sha}.webp")
               for sha in re.findall(r'<img src="/images/([0-9a-f]{64})\.webp"', page)},
    "bundle": fetched(f"/r/{slug}/archive.zip"),
}))
"""


@dataclass
class Source:
    data_dir: Path
    url: str  # DATABASE_URL of the test database
    tracked: TrackedRequest
    images: dict[str, str]  # sha256 of every stored rendition -> sha256 of its file
    bundle: str  # sha256 of the bundle's file


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{path}"


def postgres_url(settings: dict, name: str | None = None) -> str:
    user, password = quote(settings["USER"], safe=""), quote(settings["PASSWORD"], safe="")
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{name or settings['NAME']}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def source(settings, tmp_path, sim_server, simulator, owner) -> Source:
    """An archived answer with three stored images and its bundle, in a data directory."""
    data_dir = tmp_path / "source"
    media = settings.STORAGES["media"]
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {**media, "OPTIONS": {**media["OPTIONS"], "location": str(data_dir / "media")}},
    }
    settings.SONARWEB_IMAGES_ALLOW_PRIVATE = True
    job_id = simulator.add_job(
        OWNER_KEY, queue_seconds=0, run_seconds=0, words=200, sources=2, images=3
    )
    tracked = poll(TrackedRequest.objects.create(request_id=job_id, added_by=owner))
    rerender_many(archive_due_images(10))
    build_due_bundles(10)
    rows = AnswerImage.objects.filter(tracked=tracked).stored().select_related("image")
    assert rows.count() == 3
    images = {}
    for row in rows:
        for name, sha in (
            (row.image.name, row.image.sha256),
            (row.image.thumb_name, row.image.thumb_sha256),
        ):
            images[sha] = digest(data_dir / "media" / name)
    bundle = AnswerBundle.objects.get(tracked=tracked)
    if connection.vendor == "sqlite":
        url = sqlite_url(connection.settings_dict["NAME"])
    else:
        url = postgres_url(connection.settings_dict)
    return Source(data_dir, url, tracked, images, digest(data_dir / "media" / bundle.name))


def environment(database_url: str | None, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"DATABASE_URL", "DATABASE_URL_FILE", "SONARWEB_MEDIA_S3_BUCKET", "DJANGO_DEBUG"}
    }
    # The suite's settings are production's, with static files served from the sources (no
    # collectstatic) and the fixed test secrets: the data comes from the environment.
    env.update(SONARWEB_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="tests.settings")
    # The simulator serves the answers' images on loopback.
    env.update(SONARWEB_IMAGES_ALLOW_PRIVATE="1", **extra)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def run(args: list[str], env: dict[str, str], *, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        args,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if ok:
        assert done.returncode == 0, f"{args[:2]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def backup(source: Source, out: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    done = run(
        ["bash", str(BACKUP), "--output", str(out), *args],
        env or environment(source.url, source.data_dir),
    )
    assert "The encryption keys are NOT in this backup" in done.stderr
    [archive] = out.glob("sonarweb-backup-*.tar")
    return archive


def restore(
    archive: Path, env: dict[str, str], *args: str, ok: bool = True
) -> subprocess.CompletedProcess:
    return run(["bash", str(RESTORE), *args, str(archive)], env, ok=ok)


def manage(env: dict[str, str], *args: str) -> str:
    return run([sys.executable, "manage.py", *args], env).stdout


def serve(env: dict[str, str], source: Source) -> dict:
    """The restored instance's permalink, images and bundle, as a member gets them."""
    done = run([sys.executable, "-c", SERVE, source.tracked.slug, "olivia"], env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def files(source: Source) -> int:
    """How many files the source's media folder holds: renditions and the bundle."""
    return len(source.images) + 1


def manifest(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("./manifest.txt")
        assert member is not None
        return member.read().decode()


def assert_serves_its_images(served: dict, source: Source) -> None:
    assert served["summary"] == "Images: 3 archived"
    assert len(served["images"]) == 3
    for sha, (status, body) in served["images"].items():
        # The same bytes as the source instance kept under that name.
        assert status == 200 and body == sha == source.images[sha]
    assert served["bundle"] == [200, source.bundle]


# -- SQLite --------------------------------------------------------------------------------------


@on_sqlite
def test_a_restored_sqlite_instance_serves_its_images(source, tmp_path):
    archive = backup(source, tmp_path / "backups")
    assert archive.stat().st_mode & 0o077 == 0  # private: password hashes, sessions, keys
    text = manifest(archive)
    assert (
        "db_kind: sqlite" in text and f"media: included (media.tar, {files(source)} files)" in text
    )
    assert "1 archived answers" in text and "3 images shown" in text
    assert "encryption_keys: NOT included" in text
    with tarfile.open(archive) as tar:
        assert {"./database.sqlite3", "./media.tar", "./manifest.txt"} <= set(tar.getnames())

    target = tmp_path / "target"
    env = environment(None, target)  # SQLite in the data directory, as by default
    # Without a terminal it asks nothing and changes nothing unless told --yes.
    refused = restore(archive, env, ok=False)
    assert refused.returncode == 1 and "add --yes" in refused.stderr
    assert not (target / "sonarweb.sqlite3").exists()

    done = restore(archive, env, "--yes")
    assert "Database restored." in done.stdout and "Media folder restored." in done.stdout
    manage(env, "migrate", "--noinput")
    assert_serves_its_images(serve(env, source), source)


@on_sqlite
def test_a_restore_refuses_while_a_refresher_is_running(source, tmp_path):
    archive = backup(source, tmp_path / "backups")
    env = environment(None, tmp_path / "target")
    restore(archive, env, "--yes")
    now = timezone.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(tmp_path / "target" / "sonarweb.sqlite3") as db:
        db.execute(
            "INSERT INTO tracker_refresherbeat (token, host, pid, started_at, last_pass_at, "
            "last_pass_ms, passes, interval_seconds, keys_in_flight) "
            "VALUES ('t', 'h', 1, ?, ?, 5, 1, 2.0, 0)",
            (now, now),
        )
    refused = restore(archive, env, "--yes", ok=False)
    assert refused.returncode == 1
    assert "a refresher (it finished a pass in the last two minutes)" in refused.stderr
    assert "Stop web and the refresher first" in refused.stderr


@on_sqlite
def test_restored_without_the_media_folder_the_page_says_so_and_archive_images_fetches_them(
    source, tmp_path
):
    archive = backup(source, tmp_path / "backups")
    # The backup as the newcomer's: the database without the media folder.
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    (unpacked / "media.tar").unlink()
    env = environment(None, tmp_path / "target")
    done = restore(unpacked, env, "--yes")
    assert "The backup holds no media folder" in done.stdout
    manage(env, "migrate", "--noinput")

    checked = manage(env, "check_media")
    assert "Checked 3 stored image(s) and 1 bundle(s): 3 image(s) and 1 bundle(s)" in checked
    served = serve(env, source)
    assert served["summary"] == "Images: 0 archived, 3 could not be archived"
    assert MISSING_REASON in served["page"] and served["images"] == {}
    assert served["bundle"][0] == 404

    fetched = manage(env, "archive_images")
    assert "3 images stored, 0 failed" in fetched
    served = serve(env, source)
    assert served["summary"] == "Images: 3 archived" and MISSING_REASON not in served["page"]
    for sha, (status, body) in served["images"].items():
        assert status == 200 and body == sha == source.images[sha]


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
def target_database() -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    params = connection.settings_dict
    name = f"sonarweb_restore_{uuid.uuid4().hex[:10]}"
    admin = {**connection.get_connection_params(), "autocommit": True}
    with psycopg.connect(**admin) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(params, name)
    finally:
        with psycopg.connect(**admin) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def logging_tools(bin_dir: Path, log: Path) -> None:
    """pg_dump, pg_restore and psql that note their arguments, then run the real ones."""
    bin_dir.mkdir(exist_ok=True)
    for tool in ("pg_dump", "pg_restore", "psql"):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True)
        path = bin_dir / tool
        path.write_text(
            f'#!/bin/sh\necho "{tool} $* password=${{PGPASSWORD:+set}}" >> {log}\n'
            f'exec {real.stdout.strip()} "$@"\n'
        )
        path.chmod(0o755)


@on_postgresql
def test_a_restored_postgresql_instance_serves_its_images(source, tmp_path, target_database):
    bin_dir, log = tmp_path / "bin", tmp_path / "tools.log"
    logging_tools(bin_dir, log)
    path = f"{bin_dir}:{os.environ['PATH']}"
    archive = backup(
        source, tmp_path / "backups", env=environment(source.url, source.data_dir, PATH=path)
    )
    text = manifest(archive)
    assert "db_kind: postgresql" in text and "db_file: database.pgdump" in text
    assert "1 archived answers" in text
    assert f"media: included (media.tar, {files(source)} files)" in text

    env = environment(target_database, tmp_path / "target", PATH=path)
    restore(archive, env, "--yes")
    calls = log.read_text()
    assert "pg_dump --dbname=" in calls and "--format=custom" in calls
    assert "pg_restore --dbname=" in calls and "--clean --if-exists --no-owner" in calls
    # The password went in PGPASSWORD, never on a command line.
    assert "password=set" in calls and "password=" not in calls.replace("password=set", "")
    assert f":{connection.settings_dict['PASSWORD']}@" not in calls

    manage(env, "migrate", "--noinput")
    assert_serves_its_images(serve(env, source), source)

    # Restoring again over the restored database works too (--clean --if-exists), but not
    # while something is connected to it.
    with psycopg.connect(target_database.replace("postgres://", "postgresql://")):
        refused = restore(archive, env, "--yes", ok=False)
    assert "1 other connection(s) to the database" in refused.stderr
    restore(archive, env, "--yes")
    assert_serves_its_images(serve(env, source), source)


# What `docker compose` does for the wrappers, here: `exec -T db` runs the command on this
# machine as the db container would (its POSTGRES_USER and POSTGRES_DB), `run ... web` runs
# the snippet with the data directory the data volume would be. Anything else fails, and so
# does any exec or run without -T (a TTY turns the dump's \n into \r\n).
FAKE_DOCKER = r"""#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$FAKE_LOG"
[ "$1" = compose ] || exit 90
shift
case "$1" in
  ps) [ "$*" = "ps --status running --services" ] || exit 91; printf '%s\n' $FAKE_RUNNING ;;
  exec)
    [ "$2" = -T ] && [ "$3" = db ] || { echo "not: exec -T db" >&2; exit 92; }
    shift 3
    POSTGRES_USER=$FAKE_PG_USER POSTGRES_DB=$FAKE_PG_DB exec "$@" ;;
  run)
    [ "${*:1:7}" = "run --rm --no-deps -T --entrypoint sh web" ] \
      || { echo "not: run -T" >&2; exit 93; }
    shift 7
    SONARWEB_DATA_DIR=$FAKE_DATA_DIR exec sh "$@" ;;
  *) exit 94 ;;
esac
"""


@on_postgresql
def test_the_compose_wrappers_back_up_and_restore_through_docker_compose(
    source, tmp_path, target_database
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    params = connection.settings_dict

    def compose_env(database: str, data_dir: Path, running: str = "db") -> dict[str, str]:
        env = environment(None, tmp_path / "unused", PATH=f"{bin_dir}:{os.environ['PATH']}")
        env.update(
            FAKE_LOG=str(tmp_path / "docker.log"),
            FAKE_RUNNING=running,
            FAKE_PG_USER=params["USER"],
            FAKE_PG_DB=database,
            FAKE_DATA_DIR=str(data_dir),
            PGHOST=params["HOST"] or "127.0.0.1",
            PGPORT=str(params["PORT"] or 5432),
            PGPASSWORD=params["PASSWORD"],
        )
        return env

    archive = backup(
        source, tmp_path / "backups", "--compose", env=compose_env(params["NAME"], source.data_dir)
    )
    assert "taken_with: compose" in manifest(archive)
    target_name = target_database.rsplit("/", 1)[1]
    target_dir = tmp_path / "volume"

    refused = restore(
        archive,
        compose_env(target_name, target_dir, "db web refresher"),
        "--compose",
        "--yes",
        ok=False,
    )
    assert (
        "the compose service web" in refused.stderr
        and "the compose service refresher" in refused.stderr
    )
    assert "docker compose stop web refresher" in refused.stderr

    done = restore(archive, compose_env(target_name, target_dir), "--compose", "--yes")
    assert "docker compose up -d" in done.stdout
    calls = (tmp_path / "docker.log").read_text()
    assert "compose exec -T db sh -c" in calls and "pg_restore --clean --if-exists" in calls

    env = environment(target_database, target_dir)
    manage(env, "migrate", "--noinput")
    assert_serves_its_images(serve(env, source), source)
