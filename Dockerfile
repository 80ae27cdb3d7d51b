# sonarweb: one image, three roles (web, refresher, migrate); see deploy/entrypoint.sh.
# Build: docker build -t sonarweb .   Run it all: docker compose up (compose.yaml)
# Debian's own Python 3.11, the version every test runs on, in a venv (/opt/venv).
# scripts/image-check.sh (make check-image, run by CI) builds and runs this very file.
FROM debian:bookworm-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    SONARWEB_DATA_DIR=/data \
    SONARWEB_STATIC_ROOT=/app/staticfiles \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Versions are not pinned: bookworm's point and security releases replace them, and a pin
# would break the build at the next one. Nothing else comes from apt: the lock's wheels
# carry their own libraries (psycopg-binary, pillow, cryptography).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

# The user first: a numeric uid and gid, so orchestrators can tell it is not root without
# reading /etc/passwd. /data (SQLite, if used) belongs to it; the code does not.
RUN groupadd --system --gid 10001 sonarweb \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin sonarweb \
    && mkdir -p /data \
    && chown 10001:10001 /data

WORKDIR /app

# Dependencies before the code, from the hashed lock: a code change reuses this layer, and
# every file installed is the one that was locked (make lock). requirements-s3.lock is the
# same plus django-storages and boto3, for images kept in an S3 bucket:
#   docker build --build-arg SONARWEB_LOCK=requirements-s3.lock .
ARG SONARWEB_LOCK=requirements.lock
COPY requirements.lock requirements-s3.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r "${SONARWEB_LOCK}"

# The code runs from /app as it does from a checkout (no wheel to build).
COPY manage.py gunicorn.conf.py ./
COPY deploy/entrypoint.sh /usr/local/bin/sonarweb-entrypoint
COPY templates ./templates
COPY static ./static
COPY sonarweb ./sonarweb

# collectstatic needs settings but no real secrets: throwaway values for the build only.
RUN DJANGO_SECRET_KEY=build-only SONARWEB_ENCRYPTION_KEYS=YnVpbGQtb25seS1rZXktMDAwMDAwMDAwMDAwMDAwMDA= \
    DJANGO_ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --noinput

USER 10001:10001
VOLUME ["/data"]
# 8000: the site (gunicorn); 8001: the MCP server it runs beside it (MCP_PORT, docs/mcp.md).
EXPOSE 8000 8001

# One check for every role: it reads the role the entrypoint recorded (web: /healthz;
# refresher: its last pass in the database; migrate: nothing to watch).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "sonarweb.healthcheck"]

ENTRYPOINT ["sonarweb-entrypoint"]
CMD ["web"]
