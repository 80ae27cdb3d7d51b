"""One settings module, driven by the environment.

Secrets may also come from ``<NAME>_FILE`` (a path), so they can be mounted
rather than placed in the process environment. In debug mode, missing secrets
are generated once and kept in the data directory; with debug off a missing
secret stops start-up with a clear message.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
import tempfile
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from sonarweb import sentry
from sonarweb.mailurl import parse_email_url
from sonarweb.media.conf import media_storage, settings_from_env

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


def env_float(name: str, default: float) -> float:
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


def env_secret(name: str, *, generate: str | None = None) -> str:
    """A secret from NAME, or from the file named by NAME_FILE.

    With ``generate`` set (debug mode), a missing secret is created once and kept
    in the data directory under that file name, so restarts keep sessions and
    stored keys readable.
    """
    value = env_file_value(name)
    if value is not None:
        return value
    if generate is None:
        raise ImproperlyConfigured(
            f"{name} is not set: set it, or {name}_FILE, in the environment "
            "(see the configuration table in README.md)."
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


def database_from_url(name: str, url: str, *, conn_max_age: int) -> dict:
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
    if parsed["ENGINE"] == "django.db.backends.postgresql":
        # Django's, with a health check that needs no round trip on a quiet connection, and
        # a cursor for the few statements every request runs, prepared after 5 runs on a
        # connection (Django's own cursors bind on the client and never prepare). Off behind
        # a pooler that cannot keep prepared statements (PgBouncer in transaction mode
        # before 1.21): DATABASE_PREPARED_STATEMENTS=0.
        parsed["ENGINE"] = "sonarweb.db.postgresql"
        prepared = env_bool("DATABASE_PREPARED_STATEMENTS", True)
        parsed.setdefault("OPTIONS", {})["prepare_threshold"] = 5 if prepared else None
    return parsed


DEBUG = env_bool("DJANGO_DEBUG", False)
TESTING = "pytest" in sys.modules or env_bool("SONARWEB_TESTING", False)
DATA_DIR = Path(os.environ.get("SONARWEB_DATA_DIR", BASE_DIR / "data")).resolve()
INSECURE_HTTP = env_bool("SONARWEB_INSECURE_HTTP", False)
_generate = DEBUG or TESTING

SECRET_KEY = env_secret("DJANGO_SECRET_KEY", generate="secret_key" if _generate else None)
ENCRYPTION_KEYS = fernet_keys(
    "SONARWEB_ENCRYPTION_KEYS",
    env_secret("SONARWEB_ENCRYPTION_KEYS", generate="encryption_keys" if _generate else None),
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if _generate else "")
if not ALLOWED_HOSTS and not DEBUG:
    # Django would start and answer 400 to every request.
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is empty: list the host names this site answers to, "
        "comma-separated (e.g. research.example.com)."
    )
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
    "axes",
    "sonarweb.tracker",
    "sonarweb.accounts",
    "sonarweb.media",
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
    # Django's, with the member read in the same statement as the session.
    "sonarweb.accounts.middleware.MemberAuthenticationMiddleware",
    "sonarweb.tracker.middleware.HtmxAwareLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
                "sonarweb.passwords.offers",
            ],
        },
    },
]

DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": database_from_url(
        "DATABASE_URL",
        env_file_value("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'sonarweb.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
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

if TESTING:
    # Tests make a few users per test; PBKDF2's deliberate slowness (~0.3 s a hash) would be
    # most of the suite's time. Production keeps Django's default hashers.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Axes first: it refuses a locked-out sign-in before any password is checked. The member
# back end is Django's ModelBackend with a cheaper read of the member behind a session.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "sonarweb.accounts.backends.MemberBackend",
]
# Database sessions, read with one plain SQL statement (sonarweb/accounts/sessions.py).
SESSION_ENGINE = "sonarweb.accounts.sessions"

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
        # Answers' images are archived and served from here: nothing loads from elsewhere.
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# The image archive (sonarweb/media): fetch limits, and where the images are kept.
# Defaults and meanings are in sonarweb/media/conf.py.
_images = settings_from_env()
SONARWEB_IMAGES_ALLOW_PRIVATE = _images["SONARWEB_IMAGES_ALLOW_PRIVATE"]
SONARWEB_IMAGE_MAX_BYTES = _images["SONARWEB_IMAGE_MAX_BYTES"]
SONARWEB_IMAGE_MAX_PIXELS = _images["SONARWEB_IMAGE_MAX_PIXELS"]
SONARWEB_IMAGE_CONNECT_TIMEOUT = _images["SONARWEB_IMAGE_CONNECT_TIMEOUT"]
SONARWEB_IMAGE_TIMEOUT = _images["SONARWEB_IMAGE_TIMEOUT"]
SONARWEB_IMAGES_ANSWER_SECONDS = _images["SONARWEB_IMAGES_ANSWER_SECONDS"]
STORAGES["media"] = media_storage(DATA_DIR)

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
# The longest one search statement may run before it is stopped and the page says so.
SONARWEB_SEARCH_SECONDS = env_float("SONARWEB_SEARCH_SECONDS", 3.0)

# Calls one API key may make per minute, shared by every process and machine.
SONARWEB_KEY_CALLS_PER_MINUTE = env_int("SONARWEB_KEY_CALLS_PER_MINUTE", 300)
# An IN_PROGRESS job older than this is flagged as running unusually long.
SONARWEB_STUCK_AFTER_MINUTES = env_int("SONARWEB_STUCK_AFTER_MINUTES", 45)
# How often the background refresher looks for due requests.
SONARWEB_REFRESH_SECONDS = float(os.environ.get("SONARWEB_REFRESH_SECONDS", "2"))
# Keys one refresher process works at the same time: a slow upstream holds only its own.
SONARWEB_REFRESH_WORKERS = env_int("SONARWEB_REFRESH_WORKERS", 4)

# Sign-in throttling (django-axes; see sonarweb/accounts/throttle.py). Both the app's and
# the admin's sign-in count. Failures are remembered until the window passes with none.
SONARWEB_LOGIN_FAILURES_PER_USER = env_int("SONARWEB_LOGIN_FAILURES_PER_USER", 10)
SONARWEB_LOGIN_FAILURES_PER_ADDRESS = env_int("SONARWEB_LOGIN_FAILURES_PER_ADDRESS", 50)
SONARWEB_LOGIN_LOCKOUT_MINUTES = env_float("SONARWEB_LOGIN_LOCKOUT_MINUTES", 15.0)
if min(SONARWEB_LOGIN_FAILURES_PER_USER, SONARWEB_LOGIN_FAILURES_PER_ADDRESS) < 1:
    raise ImproperlyConfigured("SONARWEB_LOGIN_FAILURES_PER_* must be 1 or more.")
if SONARWEB_LOGIN_LOCKOUT_MINUTES <= 0:
    raise ImproperlyConfigured("SONARWEB_LOGIN_LOCKOUT_MINUTES must be more than 0.")
AXES_ENABLED = True
AXES_HANDLER = "sonarweb.accounts.throttle.TeamSignInHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = "sonarweb.accounts.throttle.failure_limit"
AXES_COOLOFF_TIME = "sonarweb.accounts.throttle.lockout_window"
AXES_LOCKOUT_CALLABLE = "sonarweb.accounts.throttle.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Attempts refused during a lockout are not counted, so the lock ends on time.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Logs name the username and the address (axes masks them by default); the password is
# always masked.
AXES_SENSITIVE_PARAMETERS: list[str] = []
# The client's address is the socket's, unless the socket is the TLS proxy's (the addresses
# gunicorn also believes X-Forwarded-Proto from): then it is the right-most X-Forwarded-For
# entry that is not a proxy of ours. Entries further left come from the client, forgeable.
SONARWEB_PROXY_IPS = env_list("SONARWEB_PROXY_IPS", "127.0.0.1,::1")
try:
    for _network in SONARWEB_PROXY_IPS:
        ipaddress.ip_network(_network, strict=False)
except ValueError as exc:
    raise ImproperlyConfigured(
        "SONARWEB_PROXY_IPS must list the proxy's addresses or CIDR networks (never *)."
    ) from exc
AXES_CLIENT_IP_CALLABLE = "sonarweb.accounts.throttle.client_address"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SONARWEB_LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# Mail. Without EMAIL_URL nothing is sent, so password reset is not offered at all (its pages
# answer 404) rather than saying "sent" while nothing leaves; `manage.py changepassword` is the
# way then. The URL is not kept as a setting: it holds the mail password.
_email_url = env_file_value("EMAIL_URL")
SONARWEB_MAIL_ENABLED = _email_url is not None
if _email_url:
    globals().update(parse_email_url("EMAIL_URL", _email_url))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "").strip() or "sonarweb@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
PASSWORD_RESET_TIMEOUT = 60 * 60 * 3  # a reset link works for three hours

# Errors to Sentry, with API keys scrubbed (sonarweb/sentry.py). Never from the test suite.
_sentry_dsn = env_file_value("SENTRY_DSN")
if _sentry_dsn and not TESTING:
    sentry.init(_sentry_dsn, os.environ.get("SENTRY_ENVIRONMENT", "").strip())
