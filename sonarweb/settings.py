"""One settings module, driven by the environment.

Secrets may also come from ``<NAME>_FILE`` (a path), so they can be mounted
rather than placed in the process environment. In debug mode, missing secrets
are generated once and kept in the data directory; with debug off a missing
secret stops start-up with a clear message.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from exc


def env_secret(name: str, *, generate: str | None = None) -> str:
    """A secret from NAME, or from the file named by NAME_FILE.

    With ``generate`` set (debug mode), a missing secret is created once and kept
    in the data directory under that file name, so restarts keep sessions and
    stored keys readable.
    """
    value = os.environ.get(name, "").strip()
    if value:
        return value
    path = os.environ.get(f"{name}_FILE", "").strip()
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE points at {path!r}, which cannot be read."
            ) from exc
    if generate is None:
        raise ImproperlyConfigured(
            f"{name} is not set. Set it (or {name}_FILE) in the environment; "
            "see the configuration table in README.md."
        )
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    kept = DATA_DIR / generate
    if not kept.exists():
        fresh = (
            Fernet.generate_key().decode() if name.endswith("KEYS") else secrets.token_urlsafe(50)
        )
        try:
            # Private from the first byte (no moment with the umask's mode), and never over a
            # file another process made meanwhile.
            fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(fresh)
    return kept.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", False)
TESTING = "pytest" in sys.modules or env_bool("SONARWEB_TESTING", False)
DATA_DIR = Path(os.environ.get("SONARWEB_DATA_DIR", BASE_DIR / "data")).resolve()
INSECURE_HTTP = env_bool("SONARWEB_INSECURE_HTTP", False)
_generate = DEBUG or TESTING

SECRET_KEY = env_secret("DJANGO_SECRET_KEY", generate="secret_key" if _generate else None)
ENCRYPTION_KEYS = [
    k.strip()
    for k in env_secret(
        "SONARWEB_ENCRYPTION_KEYS", generate="encryption_keys" if _generate else None
    ).split(",")
    if k.strip()
]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if _generate else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    "sonarweb.tracker",
    "sonarweb.simulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise, which answers static files itself (precompressed at collectstatic),
    # so only the app's own responses are compressed here; above everything that writes
    # the body. Django's gzip pads its header by a random length (BREACH mitigation).
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sonarweb.tracker.middleware.HtmxAwareLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "sonarweb.urls"
WSGI_APPLICATION = "sonarweb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{DATA_DIR / 'sonarweb.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets page views read while the refresher writes; IMMEDIATE avoids
    # lock-upgrade deadlocks between concurrent writers.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
        ),
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if TESTING else DATABASES["default"]["CONN_MAX_AGE"]
    # A file, not memory, so that tests can run refresher processes against it.
    # One file per test run, so that runs at the same time do not share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"sonarweb-test-{os.getpid()}.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("SONARWEB_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("SONARWEB_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security: secure by default; SONARWEB_INSECURE_HTTP=1 is for plain-HTTP local serving.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads no cookie; the token comes from hx-headers
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
_secure = not (DEBUG or INSECURE_HTTP or TESTING)
SESSION_COOKIE_SECURE = _secure
CSRF_COOKIE_SECURE = _secure
SECURE_SSL_REDIRECT = _secure and env_bool("SONARWEB_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SONARWEB_HSTS_SECONDS", 31536000) if _secure else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = _secure
SECURE_HSTS_PRELOAD = _secure
if env_bool("SONARWEB_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "https:", "http:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Perplexity
PERPLEXITY_API_BASE = os.environ.get("PERPLEXITY_API_BASE", "https://api.perplexity.ai").rstrip("/")
PERPLEXITY_CONNECT_TIMEOUT = float(os.environ.get("PERPLEXITY_CONNECT_TIMEOUT", "5"))
PERPLEXITY_READ_TIMEOUT = float(os.environ.get("PERPLEXITY_READ_TIMEOUT", "20"))
# The whole call (connect, headers and body) ends by this many seconds, however slowly the
# bytes arrive. Calls made while a person waits on a page get the shorter interactive one.
PERPLEXITY_TOTAL_TIMEOUT = float(os.environ.get("PERPLEXITY_TOTAL_TIMEOUT", "30"))
PERPLEXITY_INTERACTIVE_TIMEOUT = float(os.environ.get("PERPLEXITY_INTERACTIVE_TIMEOUT", "10"))
# The largest answer accepted from upstream, counted after decompression.
SONARWEB_MAX_RESPONSE_BYTES = env_int("SONARWEB_MAX_RESPONSE_BYTES", 32 * 1024 * 1024)
# Calls made from page views (start research, check a key, import) at once per process, so
# they can never hold every request thread.
SONARWEB_INTERACTIVE_CALLS = env_int("SONARWEB_INTERACTIVE_CALLS", 2)
# How often an open badge asks the server; the server decides whether upstream is due.
SONARWEB_BADGE_POLL_SECONDS = env_int("SONARWEB_BADGE_POLL_SECONDS", 3)

# Calls one API key may make per minute, shared by every process and machine.
SONARWEB_KEY_CALLS_PER_MINUTE = env_int("SONARWEB_KEY_CALLS_PER_MINUTE", 300)
# An IN_PROGRESS job older than this is flagged as running unusually long.
SONARWEB_STUCK_AFTER_MINUTES = env_int("SONARWEB_STUCK_AFTER_MINUTES", 45)
# How often the background refresher looks for due requests.
SONARWEB_REFRESH_SECONDS = float(os.environ.get("SONARWEB_REFRESH_SECONDS", "2"))
# Keys one refresher process works at the same time: a slow upstream holds only its own.
SONARWEB_REFRESH_WORKERS = env_int("SONARWEB_REFRESH_WORKERS", 4)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SONARWEB_LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
