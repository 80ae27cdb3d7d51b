# sonarweb: gunicorn behind your TLS proxy. Build: docker build -t sonarweb .
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SONARWEB_DATA_DIR=/data \
    SONARWEB_STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY pyproject.toml README.md ./
COPY sonarweb ./sonarweb
RUN pip install .

COPY manage.py ./
COPY templates ./templates
COPY static ./static
# collectstatic needs settings but no real secrets: throwaway values for the build only.
RUN DJANGO_SECRET_KEY=build-only SONARWEB_ENCRYPTION_KEYS=YnVpbGQtb25seS1rZXktMDAwMDAwMDAwMDAwMDAwMDA= \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --home-dir /app sonarweb \
    && mkdir -p /data && chown sonarweb /data
USER sonarweb
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "sonarweb.healthcheck"]

CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn sonarweb.wsgi:application --bind 0.0.0.0:8000 --workers ${GUNICORN_WORKERS:-3} --access-logfile - --forwarded-allow-ips='*'"]
