"""The README's promises about deployment, and the deployment files it points to."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block and README.index(block.group(0)) < README.index("\n## ")
    commands = [line.split("#")[0].strip() for line in block.group(1).strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_never_suggests_a_non_editable_install():
    """The package does not carry templates and static files: only a checkout runs."""
    commands = [
        line
        for block in re.findall(r"```sh\n(.*?)```", README, re.S)
        for line in block.splitlines()
        if "pip install" in line
    ]
    assert commands, "the README shows how dependencies are installed"
    for line in commands:
        assert "--require-hashes -r requirements" in line or " -e " in line, line


def test_deployment_shows_compose_before_bare_metal():
    deployment = README[README.index("## Deployment") :]
    assert deployment.index("docker compose up") < deployment.index("### Bare metal")
    for promise in ("Backups", "Upgrades", "encryption keys", "uid 10001", "X-Forwarded-Proto"):
        assert promise in deployment, promise
    assert "TEST_WALL_TIME" not in README


def test_proxy_examples_set_forwarded_proto_and_stay_on_loopback():
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx
    assert "proxy_pass http://127.0.0.1:8000;" in nginx
    caddy = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy 127.0.0.1:8000" in caddy and "X-Forwarded-Proto" in caddy


def test_systemd_units_run_the_roles_and_verify(tmp_path):
    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    names = [u.name for u in units]
    assert names == [
        "sonarweb-migrate.service",
        "sonarweb-refresher.service",
        "sonarweb-web.service",
    ]
    text = {u.name: u.read_text() for u in units}
    assert "manage.py migrate --noinput" in text["sonarweb-migrate.service"]
    assert "gunicorn --config gunicorn.conf.py" in text["sonarweb-web.service"]
    assert "migrate" not in text["sonarweb-web.service"].split("[Service]")[1]
    assert "manage.py refresh_requests" in text["sonarweb-refresher.service"]
    for name in ("sonarweb-web.service", "sonarweb-refresher.service"):
        assert "Requires=sonarweb-migrate.service" in text[name]
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # Verified against this checkout instead of /opt/sonarweb, so the commands exist.
    for unit in units:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/sonarweb", str(ROOT)))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(map(str, tmp_path.iterdir()))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_env_example_is_valid_shell_and_systemd_environment(tmp_path):
    # deploy/manage.sh sources it with sh; systemd reads it as EnvironmentFile=.
    result = subprocess.run(
        [
            "sh",
            "-c",
            'set -a; . "$1"; set +a; echo "$DJANGO_ALLOWED_HOSTS"',
            "sh",
            "./.env.example",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout.strip() == "research.example.com"
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S*", line), line
