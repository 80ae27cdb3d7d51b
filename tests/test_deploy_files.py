"""The deployment files themselves: the proxy examples, the systemd units, .env.example.

Moved out of tests/test_docs.py unchanged (they check deploy files, not the docs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
