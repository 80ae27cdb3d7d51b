#!/usr/bin/env bash
# manage.py check --deploy with production-like settings (debug off, secrets set).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
env -u DJANGO_DEBUG -u SONARWEB_INSECURE_HTTP \
  DJANGO_SECRET_KEY="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
  SONARWEB_ENCRYPTION_KEYS="$(.venv/bin/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
  DJANGO_ALLOWED_HOSTS=research.example.com \
  SONARWEB_DATA_DIR="$tmp" \
  .venv/bin/python manage.py check --deploy --fail-level WARNING
