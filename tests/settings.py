"""The test suite's settings: sonarweb.settings, run as production runs it.

Only the environment a test run needs is set here, before the import, and only where the
person running the tests has not set it: fixed secrets (the tests need no real ones), the
hosts the test client and the live server use, and plain HTTP (the test client and the live
server speak no TLS, so SECURE_SSL_REDIRECT would answer every request with a redirect).
Everything else goes through the same branches as a deployment. The few settings changed
after the import are below, each with its reason. Tests of start-up behaviour run
sonarweb.settings itself in a separate process (tests/test_settings.py).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-any-deployment-4c1e9a7f")
# A fixed Fernet key, only ever used for the keys the tests store.
os.environ.setdefault("SONARWEB_ENCRYPTION_KEYS", "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0wMDAwMDA=")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("SONARWEB_INSECURE_HTTP", "1")
# The test suite never reports to Sentry, whatever the shell it runs from has set.
os.environ.pop("SENTRY_DSN", None)
os.environ.pop("SENTRY_DSN_FILE", None)

from sonarweb.settings import *  # noqa: F403
from sonarweb.settings import DATABASES, STORAGES

# Tests make a few users per test; PBKDF2's deliberate slowness (~0.3 s a hash) would be most
# of the suite's time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The manifest storage needs `collectstatic` to have run; the tests serve static files from
# the source directories instead (the live server through the finders). The manifest storage
# itself is exercised through collectstatic by tests/test_image.py.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that tests can run refresher processes against it; one file per
    # test run, so that runs at the same time do not share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"sonarweb-test-{os.getpid()}.sqlite3")
    }
    # Connections closed after each request, so the live server's and the refresher's threads
    # keep none open on the test database between tests.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
