"""compose.yaml and .env.example, checked without Docker: the Compose Specification's own
schema, then the structure sonarweb relies on, then the secrets script it mounts."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
SECRET_VARIABLES = {
    "DJANGO_SECRET_KEY": "django_secret_key",
    "SONARWEB_ENCRYPTION_KEYS": "encryption_keys",
    "DATABASE_URL": "database_url",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_matches_the_compose_specification(compose):
    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_catches_a_broken_file(compose):
    """The validation above can fail: a typo in a condition is an error."""
    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_postgres_with_a_named_volume_and_pg_isready(compose):
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"]
    assert "pgdata" in compose["volumes"]
    assert "pg_isready" in db["healthcheck"]["test"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in db["environment"]


def test_migrate_runs_once_and_the_others_wait_for_it(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("web", "refresher"):
        assert services[name]["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name


def test_each_role_has_its_health_check(compose):
    for role in ("web", "refresher"):
        service = compose["services"][role]
        assert service["command"] == [role]
        assert service["healthcheck"]["test"] == [
            "CMD",
            "python",
            "-m",
            "sonarweb.healthcheck",
            role,
        ]


def test_secrets_are_files_never_values(compose):
    declared = compose["secrets"]
    assert set(declared) == {*SECRET_VARIABLES.values(), "postgres_password"}
    for name, secret in declared.items():
        assert secret == {"file": f"./secrets/{name}"}
    for name in ("migrate", "web", "refresher"):
        service = compose["services"][name]
        assert set(service["secrets"]) == set(SECRET_VARIABLES.values())
        environment = service["environment"]
        for variable, secret in SECRET_VARIABLES.items():
            assert variable not in environment
            assert environment[f"{variable}_FILE"] == f"/run/secrets/{secret}"
        assert "data:/data" in service["volumes"]
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]


def test_env_file_uses_the_plain_form_every_compose_reads(compose):
    """The long form (path:, required:) needs Compose 2.24 and crashes podman-compose 1.0."""
    for name in ("migrate", "web", "refresher"):
        env_file = compose["services"][name]["env_file"]
        files = [env_file] if isinstance(env_file, str) else env_file
        assert files == [".env"], name
        assert all(isinstance(f, str) for f in files)


def test_every_service_keeps_its_logs_small(compose):
    for name, service in compose["services"].items():
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert logging["options"] == {"max-size": "10m", "max-file": "3"}, name


def test_the_compose_version_it_needs_is_stated():
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    assert "Docker Compose v2.3 or newer" in deployment
    assert "Docker Compose v2.3 or newer" in (ROOT / "compose.yaml").read_text()


def test_web_is_published_on_loopback_and_trusts_only_the_gateway(compose):
    web = compose["services"]["web"]
    assert web["ports"] == [
        "${SONARWEB_PUBLISH:-127.0.0.1:8000}:8000",
        "${SONARWEB_MCP_PUBLISH:-127.0.0.1:8001}:8001",
    ]
    proxy = web["environment"]["SONARWEB_PROXY_IPS"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert proxy == "${SONARWEB_PROXY_IPS:-172.30.47.1}"
    assert subnet == "${SONARWEB_SUBNET:-172.30.47.0/24}"


def test_make_secrets_writes_matching_files_once(tmp_path, compose):
    target = tmp_path / "secrets"
    script = ROOT / "scripts" / "compose-secrets.sh"
    subprocess.run(["bash", str(script), str(target)], check=True, capture_output=True)
    first = {p.name: p.read_text() for p in target.iterdir()}
    assert set(first) == set(compose["secrets"])
    assert oct(target.stat().st_mode & 0o777) == "0o700"
    Fernet(first["encryption_keys"].strip().encode())
    password = first["postgres_password"].strip()
    assert first["database_url"].strip() == f"postgres://sonarweb:{password}@db:5432/sonarweb"
    assert len(first["django_secret_key"].strip()) >= 50
    again = subprocess.run(["bash", str(script), str(target)], check=True, capture_output=True)
    assert b"kept" in again.stdout
    assert {p.name: p.read_text() for p in target.iterdir()} == first


# --- .env.example lists every variable the code reads -----------------------------------

READERS = re.compile(
    r"""(?:env_str|env_float|env_bool|env_list|env_int|env_secret|env_file_value|os\.environ\.get|os\.getenv"""
    r"""|os\.environ\.setdefault)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|os\.environ\[["']([A-Z][A-Z0-9_]+)["']\]"""
    r"""|\$\{([A-Z][A-Z0-9_]+)"""
)
FILE_READERS = re.compile(r"""(?:env_secret|env_file_value)\(\s*["']([A-Z][A-Z0-9_]+)["']""")
# Set by the test suite or by Django itself, not by whoever deploys.
NOT_CONFIGURATION = {"DJANGO_SETTINGS_MODULE"}


def variables_the_code_reads() -> set[str]:
    sources = [
        *(ROOT / "sonarweb").rglob("*.py"),
        ROOT / "gunicorn.conf.py",
        ROOT / "compose.yaml",
        ROOT / "deploy" / "entrypoint.sh",
    ]
    names: set[str] = set()
    for source in sources:
        text = source.read_text()
        names.update(n for match in READERS.findall(text) for n in match if n)
        names.update(f"{n}_FILE" for n in FILE_READERS.findall(text))
    return names - NOT_CONFIGURATION


def listed_in(path: Path) -> set[str]:
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", path.read_text(), re.M))


def test_env_example_lists_every_variable_the_code_reads():
    read = variables_the_code_reads()
    assert {"DATABASE_URL_FILE", "GUNICORN_WORKERS", "SONARWEB_PROXY_IPS", "PORT"} <= read
    missing = read - listed_in(ROOT / ".env.example")
    assert not missing, f"add these to .env.example (and README.md): {sorted(missing)}"


def test_docs_document_every_variable_in_env_example():
    readme = (ROOT / "docs" / "configuration.md").read_text()
    # <NAME>_FILE is explained once for every secret, not row by row.
    names = {n.removesuffix("_FILE") for n in listed_in(ROOT / ".env.example")}
    undocumented = {n for n in names if f"`{n}`" not in readme}
    assert not undocumented, sorted(undocumented)
