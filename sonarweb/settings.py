"""One settings module, driven by the environment (the readers are in sonarweb/env.py).

Every process runs these settings as they are, the tests' included: tests/settings.py sets
the environment a test run needs, imports this module and changes only what tests must
(nothing here knows it is under test). Secrets may also come from ``<NAME>_FILE``. With
debug off a missing secret stops start-up with a clear message; only in debug mode
(DJANGO_DEBUG=1, as `make demo` runs) are missing secrets generated once and kept in the
data directory.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sonarweb import sentry
from sonarweb.env import (
    database_from_url,
    env_bool,
    env_file_value,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    fernet_keys,
)
from sonarweb.mailurl import parse_email_url
from sonarweb.media.conf import media_storage, settings_from_env

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
DATA_DIR = Path(env_str("SONARWEB_DATA_DIR", str(BASE_DIR / "data"))).resolve()
INSECURE_HTTP = env_bool("SONARWEB_INSECURE_HTTP", False)

# Debug mode alone generates a missing secret (kept in the data directory); any other
# process refuses to start without it.
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", generate=DATA_DIR / "secret_key" if DEBUG else None)
ENCRYPTION_KEYS = fernet_keys(
    "SONARWEB_ENCRYPTION_KEYS",
    env_secret(
        "SONARWEB_ENCRYPTION_KEYS", generate=DATA_DIR / "encryption_keys" if DEBUG else None
    ),
)
# API tokens are kept as HMAC-SHA256 under their own secret, never SECRET_KEY, so rotating that
# revokes no token (sonarweb/api/tokens.py). When it is not set, the web process makes one the
# first time a token is made or checked, and keeps it in the data directory (0600): tokens are
# 48 random characters, so the key guards nothing a stolen database would give away, and the
# API and /mcp work from the first start. Set it where web processes share no data directory.
SONARWEB_TOKEN_SECRET = env_file_value("SONARWEB_TOKEN_SECRET") or ""
API_TOKEN_SECRET_PATH = DATA_DIR / "token_secret"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
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
    "sonarweb.api",
    "sonarweb.webhooks",
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

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Axes first: it refuses a locked-out sign-in before any password is checked. Then each
# sign-in reserves its password check, so sign-ins sent at once cannot outrun axes' count
# (sonarweb/accounts/signin.py). Django's ModelBackend refuses an inactive member, at
# sign-in and on every request after it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "sonarweb.accounts.signin.SignInAllowanceBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Django's database sessions (django_session).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("SONARWEB_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("SONARWEB_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
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
_secure = not (DEBUG or INSECURE_HTTP)
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

# The image archive (sonarweb/media): fetch limits, and where the images are kept. Each
# SONARWEB_IMAGE* setting, its default and its meaning are in sonarweb/media/conf.py.
globals().update(settings_from_env())
STORAGES["media"] = media_storage(DATA_DIR)

# Perplexity
PERPLEXITY_API_BASE = env_str("PERPLEXITY_API_BASE", "https://api.perplexity.ai").rstrip("/")
PERPLEXITY_CONNECT_TIMEOUT = env_float("PERPLEXITY_CONNECT_TIMEOUT", 5.0)
PERPLEXITY_READ_TIMEOUT = env_float("PERPLEXITY_READ_TIMEOUT", 20.0)
# The whole call (connect, headers and body) ends by this many seconds, however slowly the
# bytes arrive. Calls made while a person waits on a page get the shorter interactive one.
PERPLEXITY_TOTAL_TIMEOUT = env_float("PERPLEXITY_TOTAL_TIMEOUT", 30.0)
PERPLEXITY_INTERACTIVE_TIMEOUT = env_float("PERPLEXITY_INTERACTIVE_TIMEOUT", 10.0)
# The largest answer a call made while a person waits may read (a start, a cancel, a key
# check, a list page: each a few kilobytes), so that a huge one costs a web worker little.
PERPLEXITY_INTERACTIVE_MAX_BYTES = env_int("PERPLEXITY_INTERACTIVE_MAX_BYTES", 4 * 1024 * 1024)
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
SONARWEB_REFRESH_SECONDS = env_float("SONARWEB_REFRESH_SECONDS", 2.0)
# Keys one refresher process works at the same time: a slow upstream holds only its own.
SONARWEB_REFRESH_WORKERS = env_int("SONARWEB_REFRESH_WORKERS", 4)

# Webhooks (docs/webhooks.md). 0 forbids the per-endpoint opt-in to loopback and private
# addresses. The site's address for the links events carry: when unset, the first origin in
# DJANGO_CSRF_TRUSTED_ORIGINS, else the first allowed host (sonarweb/webhooks/conf.py).
SONARWEB_WEBHOOKS_ALLOW_PRIVATE = env_bool("SONARWEB_WEBHOOKS_ALLOW_PRIVATE", True)
SONARWEB_BASE_URL = env_str("SONARWEB_BASE_URL", "").rstrip("/")

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
AXES_COOLOFF_TIME = "sonarweb.accounts.signin.window"
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

# Share, invitation and password-reset tokens in a logged path (django.request's "Not Found:
# /s/<token>/", a CSRF refusal) are logged as [redacted] (sonarweb/accesslog.py): by the
# console handler, and on Django's own loggers for the handlers Django adds itself.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "sonarweb.accesslog.RedactSecrets"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("SONARWEB_LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "django.request": {"filters": ["redact_secrets"]},
        "django.security.csrf": {"filters": ["redact_secrets"]},
    },
}

# Mail. Without EMAIL_URL nothing is sent, so password reset is not offered at all (its pages
# answer 404) rather than saying "sent" while nothing leaves; `manage.py changepassword` is the
# way then. The URL is not kept as a setting: it holds the mail password.
_email_url = env_file_value("EMAIL_URL")
SONARWEB_MAIL_ENABLED = _email_url is not None
if _email_url:
    globals().update(parse_email_url("EMAIL_URL", _email_url))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "sonarweb@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
PASSWORD_RESET_TIMEOUT = 60 * 60 * 3  # a reset link works for three hours

# Errors to Sentry, with API keys scrubbed (sonarweb/sentry.py). tests/settings.py unsets
# the DSN, so the test suite never reports.
_sentry_dsn = env_file_value("SENTRY_DSN")
if _sentry_dsn:
    sentry.init(_sentry_dsn, env_str("SENTRY_ENVIRONMENT"))
