"""deploy/nginx.conf and deploy/Caddyfile, served through for real: Debian's nginx and Caddy
in front of gunicorn run the way the image runs it (see tests/test_image.py), with
production settings.

The examples are used as written, except what a test cannot have: they listen on free
loopback ports instead of 80 and 443, with a throwaway certificate instead of one from
Let's Encrypt, and pass to the port this gunicorn listens on. Each line changed must be
found exactly once, so the tests notice when an example changes shape.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .test_image import (  # noqa: F401 - ``container`` is a fixture
    DEADLINE,
    ROOT,
    container,
    entrypoint,
    free_port,
    healthcheck,
    run_role,
    stop,
    wait_until,
)

HOST = "research.example.com"
REDIRECTS = {301, 308}  # nginx's return 301; Caddy's automatic redirect is a 308
PASSWORD = "proxied-sign-in-0451"


def binary(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )
    if found is None:
        message = f"{name} is not installed (scripts/ensure-test-packages.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def rewritten(name: str, changes: list[tuple[str, str]]) -> str:
    text = (ROOT / "deploy" / name).read_text()
    for old, new in changes:
        assert text.count(old) == 1, f"deploy/{name} no longer has {old!r} once"
        text = text.replace(old, new)
    return text


def nginx_site(web_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    live = f"/etc/letsencrypt/live/{HOST}"
    return rewritten(
        "nginx.conf",
        [
            ("listen 80;", f"listen 127.0.0.1:{http_port};"),
            ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
            (f"{live}/fullchain.pem", str(cert)),
            (f"{live}/privkey.pem", str(key)),
            ("proxy_pass http://127.0.0.1:8000;", f"proxy_pass http://127.0.0.1:{web_port};"),
        ],
    )


def caddyfile(directory: Path, web_port: int, http_port: int, https_port: int) -> str:
    """Caddy's own CA instead of Let's Encrypt (never installed in the system's trust), its
    admin endpoint off, and the certificate chosen for clients that send no SNI."""
    options = (
        f"{{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tdefault_sni {HOST}\n"
        f"\thttp_port {http_port}\n\thttps_port {https_port}\n"
        f"\tstorage file_system {directory / 'data'}\n}}\n\n"
    )
    site = rewritten(
        "Caddyfile",
        [
            (f"{HOST} {{", f"{HOST} {{\n\tbind 127.0.0.1"),
            ("reverse_proxy 127.0.0.1:8000", f"reverse_proxy 127.0.0.1:{web_port}"),
        ],
    )
    return options + site


def main_conf(directory: Path, site_path: Path) -> str:
    """What /etc/nginx/nginx.conf gives a site, with every path nginx writes under here."""
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers then write the temp paths
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
        "error_log stderr warn;\nevents {}\nhttp {\n    access_log off;\n"
        f"    client_body_temp_path {temp['body']};\n    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n    include {site_path};\n}}\n"
    )


def proxy_command(kind: str, conf_dir: Path, web_port: int, http_port: int, https_port: int):
    """The command that runs the proxy in the foreground, after checking its configuration
    the way its documentation says to (``nginx -t``, ``caddy validate``)."""
    if kind == "nginx":
        nginx = binary("nginx")
        cert, key = certificate(conf_dir)
        site_path = conf_dir / "sonarweb.conf"
        site_path.write_text(nginx_site(web_port, http_port, https_port, cert, key))
        main = conf_dir / "nginx.conf"
        main.write_text(main_conf(conf_dir, site_path))
        check = [nginx, "-t", "-c", str(main), "-p", str(conf_dir)]
        run = [nginx, "-c", str(main), "-p", str(conf_dir)]
    else:
        caddy = binary("caddy")
        path = conf_dir / "Caddyfile"
        path.write_text(caddyfile(conf_dir, web_port, http_port, https_port))
        check = [caddy, "validate", "--config", str(path), "--adapter", "caddyfile"]
        run = [caddy, "run", "--config", str(path), "--adapter", "caddyfile"]
    env = {"PATH": os.environ["PATH"], "HOME": str(conf_dir), "XDG_DATA_HOME": str(conf_dir)}
    checked = subprocess.run(
        check, capture_output=True, text=True, timeout=60, env=env, cwd=conf_dir
    )
    assert checked.returncode == 0, checked.stderr
    return run, env


@dataclass
class Proxied:
    kind: str
    secure: httpx.Client  # to the proxy's https port
    plain: httpx.Client  # to its http port


@pytest.fixture(params=["nginx", "caddy"])
def proxied(request, container, tmp_path: Path) -> Iterator[Proxied]:  # noqa: F811
    """gunicorn behind the proxy."""
    kind = request.param
    env = {
        **container,
        "DJANGO_SUPERUSER_USERNAME": "olivia",
        "DJANGO_SUPERUSER_EMAIL": "olivia@example.com",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    for role in (("migrate",), ("manage", "createsuperuser", "--noinput")):
        result = run_role(env, *role)
        assert result.returncode == 0, result.stderr
    conf_dir = tmp_path / kind
    conf_dir.mkdir()
    http_port, https_port = free_port(), free_port()
    command, proxy_env = proxy_command(
        kind, conf_dir, int(container["PORT"]), http_port, https_port
    )
    web = subprocess.Popen(
        entrypoint(), cwd=ROOT, env=container, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        proxy = subprocess.Popen(
            command, cwd=conf_dir, env=proxy_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError:
        stop(web)
        raise
    secure = httpx.Client(
        base_url=f"https://127.0.0.1:{https_port}",
        headers={"Host": HOST},
        verify=False,  # noqa: S501 - the throwaway certificate made above
        timeout=DEADLINE,
    )
    plain = httpx.Client(
        base_url=f"http://127.0.0.1:{http_port}", headers={"Host": HOST}, timeout=DEADLINE
    )

    def ready() -> bool:
        if web.poll() is not None or proxy.poll() is not None:
            return True
        try:
            return secure.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(lambda: healthcheck(container) == 0 or web.poll() is not None, "gunicorn")
        wait_until(ready, f"the app through {kind}")
        assert web.poll() is None, "gunicorn exited"
        assert proxy.poll() is None, proxy.stderr.read().decode()
        yield Proxied(kind, secure, plain)
    finally:
        secure.close()
        plain.close()
        proxy.terminate()
        proxy.communicate(timeout=DEADLINE)
        stop(web)


def test_the_example_checks_and_serves_the_app_over_https(proxied):
    health = proxied.secure.get("/healthz")
    assert health.status_code == 200 and health.text.strip() == "ok"
    # Plain http goes to https on the same name, before it reaches the app.
    moved = proxied.plain.get("/r/some-answer/?x=1")
    assert moved.status_code in REDIRECTS
    assert moved.headers["location"] == f"https://{HOST}/r/some-answer/?x=1"


def test_a_member_signs_in_through_the_proxy(proxied):
    """The app sees https (from X-Forwarded-Proto, which the proxy sets and gunicorn believes
    from loopback): no redirect loop, secure cookies, HSTS, and a CSRF check that accepts
    the https origin."""
    secure = proxied.secure
    page = secure.get("/accounts/login/")
    assert page.status_code == 200
    assert page.headers["strict-transport-security"].startswith("max-age=")
    csrf = next(c for c in secure.cookies.jar if c.name == "csrftoken")
    assert csrf.secure
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed_in = secure.post(
        "/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": "olivia", "password": PASSWORD},
        headers={"Referer": f"https://{HOST}/accounts/login/", "Origin": f"https://{HOST}"},
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    assert signed_in.headers["location"] == "/"
    session = next(c for c in secure.cookies.jar if c.name == "sessionid")
    assert session.secure
    dashboard = secure.get("/")
    assert dashboard.status_code == 200
    assert "olivia" in dashboard.text


def test_a_client_cannot_claim_https_over_plain_http(proxied):
    """The proxy replaces the client's X-Forwarded-Proto with the scheme it saw (and over
    plain http answers with a redirect before the app sees anything)."""
    claimed = proxied.plain.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert claimed.status_code in REDIRECTS
    forged = proxied.secure.get("/accounts/login/", headers={"X-Forwarded-Proto": "http"})
    assert forged.status_code == 200  # not sent to https again: the proxy's value counts


@pytest.mark.parametrize("proxied", ["nginx"], indirect=True)
def test_bodies_over_the_limit_stop_at_nginx(proxied):
    too_big = proxied.secure.post("/accounts/login/", content=b"x" * (3 * 1024 * 1024))
    assert too_big.status_code == 413
