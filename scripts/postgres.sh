#!/usr/bin/env bash
# Make a local PostgreSQL server from Debian's packages available for the test suite:
# install it if missing (as root), start the cluster, and create a role that may
# create the test database. Prints the DATABASE_URL to use.
set -euo pipefail
ROLE=sonarweb
PASSWORD=sonarweb
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  if [ "$(id -u)" != "0" ]; then
    echo "PostgreSQL is not installed; run as root or: sudo apt-get install -y postgresql" >&2
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
  pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | grep -q "^$version main .* online"; then
  pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
as_postgres() { if [ "$(id -u)" = "0" ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
as_postgres "psql -p $port -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$ROLE'\"" | grep -q 1 \
  || as_postgres "psql -p $port -qc \"CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'\"" >&2
as_postgres "psql -p $port -qtAc \"SELECT 1 FROM pg_database WHERE datname='$ROLE'\"" | grep -q 1 \
  || as_postgres "createdb -p $port -O $ROLE $ROLE" >&2
echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$port/$ROLE"
