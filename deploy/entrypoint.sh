#!/bin/sh
# The image's entrypoint: one image, one role per container.
#   web (default)  gunicorn with gunicorn.conf.py; never migrates, so replicas cannot race.
#                  It also serves the MCP server (/mcp) on MCP_PORT, default 8001 (docs/mcp.md)
#   refresher      the background loop that polls upstream and archives answers
#   migrate        apply migrations once and exit (compose runs it before the others)
#   manage ARGS    any manage.py command, e.g. `manage createsuperuser`
set -eu

role="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi

# The health check is a separate process started with the image's environment, not this
# one's, so the role is recorded in a file as well (see sonarweb/healthcheck.py).
SONARWEB_ROLE="$role"
export SONARWEB_ROLE
role_file="${SONARWEB_ROLE_FILE:-/tmp/sonarweb.role}"
printf '%s\n' "$role" 2>/dev/null > "$role_file" \
  || echo "Cannot write $role_file; the health check will go by SONARWEB_ROLE instead." >&2

# Every long-running role and migrate wait for the database first (up to 60 s, a sentence
# per try, then a clear failure): depends_on's health conditions are not honoured by every
# Compose tool (podman-compose 1.0 starts migrate at once). SQLite needs no wait.
case "$role" in
  web | refresher | migrate) python -m sonarweb.healthcheck database --wait 60 ;;
esac

case "$role" in
  web) exec gunicorn --config gunicorn.conf.py "$@" ;;
  refresher) exec python manage.py refresh_requests "$@" ;;
  migrate) exec python manage.py migrate --noinput "$@" ;;
  manage) exec python manage.py "$@" ;;
  *)
    echo "Unknown role '$role': use web, refresher, migrate or manage <command>." >&2
    exit 64
    ;;
esac
