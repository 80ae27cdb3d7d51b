"""Reading sonarweb's configuration from the environment (used by settings.py).

Every reader takes the variable's name and a default. A value that cannot be used stops
start-up with ImproperlyConfigured, whose message names the variable and never repeats a
secret's value; ``sonarweb.startup`` prints it as one line, without a traceback.

Secrets may also come from ``<NAME>_FILE`` (a path), so they can be mounted rather than
placed in the process environment.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = ("1", "true", "yes", "on")


def env_str(name: str, default: str = "") -> str:
    """The variable's value, stripped; ``default`` when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool = False) -> bool:
    """True for 1/true/yes/on (any case), False for anything else; ``default`` when unset
    or blank."""
    value = env_str(name)
    return value.lower() in TRUE_WORDS if value else default


def env_list(name: str, default: str = "") -> list[str]:
    """The comma-separated items of the variable (or of ``default`` when it is unset), each
    stripped, blanks left out."""
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    """A whole number; ``default`` when unset or blank. Anything else stops start-up."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from exc


def env_float(name: str, default: float) -> float:
    """A number; ``default`` when unset or blank. Anything else stops start-up."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from exc


def env_file_value(name: str) -> str | None:
    """NAME, or the content of the file named by NAME_FILE; None when neither is set.

    Messages name the variable and never its value: these are secrets.
    """
    value = os.environ.get(name, "").strip()
    if value:
        return value
    path = os.environ.get(f"{name}_FILE", "").strip()
    if not path:
        return None
    try:
        content = Path(path).read_text().strip()
    except OSError:
        raise ImproperlyConfigured(
            f"{name}_FILE points at {path!r}, which this process cannot read."
        ) from None
    if not content:
        raise ImproperlyConfigured(f"{name}_FILE points at {path!r}, which is empty.")
    return content


def env_secret(name: str, *, generate: Path | None = None) -> str:
    """A secret from NAME, or from the file named by NAME_FILE; when neither is set,
    start-up stops, naming the variable.

    ``generate``: the file where a missing secret is created once and kept, so restarts keep
    what it protects readable (debug mode's secrets, and the API tokens' key). A name ending in KEYS
    gets a Fernet key, any other a random token.
    """
    value = env_file_value(name)
    if value is not None:
        return value
    if generate is None:
        raise ImproperlyConfigured(
            f"{name} is not set: set it, or {name}_FILE, in the environment "
            "(see docs/configuration.md)."
        )
    return kept_secret(generate, fernet=name.endswith("KEYS"))


def kept_secret(path: Path, *, fernet: bool) -> str:
    """The secret kept in ``path``, made there first if there is none yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fresh = Fernet.generate_key().decode() if fernet else secrets.token_urlsafe(50)
        try:
            # Private from the first byte (no moment with the umask's mode), and never over a
            # file another process made meanwhile.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(fresh)
    return path.read_text().strip()


def fernet_keys(name: str, raw: str) -> list[str]:
    """The comma-separated Fernet keys in ``raw``; a malformed one stops start-up now
    rather than at the first stored API key it fails to encrypt or decrypt."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured(f"{name} lists no key.")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{name} entry {position} of {len(keys)} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes, as Fernet.generate_key() makes)."
            ) from None
    return keys


def database_from_url(name: str, url: str, *, conn_max_age: int) -> dict[str, Any]:
    """Django's database settings for ``url``; refuses what would otherwise fall back or
    fail later. The URL holds a password, so no message repeats it."""
    try:
        parsed = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    except (ValueError, KeyError, AttributeError):
        parsed = {}
    if not parsed.get("ENGINE") or not parsed.get("NAME"):
        raise ImproperlyConfigured(
            f"{name} cannot be parsed as a database URL "
            "(expected e.g. postgres://user:password@host:5432/name)."
        )
    # PostgreSQL is Django's own back end as it comes: connections kept between requests
    # (CONN_MAX_AGE) and checked before a request uses them (CONN_HEALTH_CHECKS). Django's
    # default client-side binding stays (OPTIONS "server_side_binding" changes how values
    # are typed, and not every query works with it), so statements are never prepared; no
    # OPTIONS "pool" either, which needs psycopg_pool.
    return dict(parsed)
