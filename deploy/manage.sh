#!/bin/sh
# manage.py on a bare-metal install, with the settings and secrets the services get.
# Run it as the service's user:  sudo -u sonarweb /opt/sonarweb/deploy/manage.sh createsuperuser
set -eu
cd "$(dirname "$0")/.."
set -a
. /etc/sonarweb/env
DJANGO_SECRET_KEY_FILE=/etc/sonarweb/secrets/django_secret_key
SONARWEB_ENCRYPTION_KEYS_FILE=/etc/sonarweb/secrets/encryption_keys
DATABASE_URL_FILE=/etc/sonarweb/secrets/database_url
SONARWEB_DATA_DIR=/var/lib/sonarweb
SONARWEB_STATIC_ROOT=/var/cache/sonarweb/static
set +a
exec .venv/bin/python manage.py "$@"
