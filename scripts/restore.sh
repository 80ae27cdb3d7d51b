#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh: the database into the instance's database
# (best a new, empty one), media/ into its data directory. docs/deployment.md, "Backups".
#
#   bash scripts/restore.sh [--compose | --systemd] [--yes] BACKUP.tar
#
# The instance is found as scripts/backup.sh finds it (this shell's environment, --systemd
# or --compose). Stop web and the refresher first: the restore refuses to run while it can
# tell they are running (compose services, systemd units, other connections to the
# PostgreSQL database, a refresher that finished a pass in the last two minutes). It asks
# before replacing anything; --yes does not ask (for scripts).
#
# PostgreSQL: pg_restore --clean --if-exists --no-owner --single-transaction, so tables of
# the backup replace those of the same name and nothing changes if any step fails. The
# database must exist (compose creates it; bare metal: createdb -O sonarweb sonarweb).
# SQLite: the file is replaced (the old one is kept beside it). media/: the old folder is
# moved aside to media.before-restore-<time> in the data directory; delete it when done.
#
# The encryption keys are not in the backup: give the restored instance the keys of the one
# that was backed up (SONARWEB_ENCRYPTION_KEYS), or its stored API keys cannot be read.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=local
assume_yes=0
backup=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "$*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --compose) mode=compose ;;
    --systemd) mode=systemd ;;
    --yes) assume_yes=1 ;;
    -h|--help) usage 0 ;;
    -*) echo "Unknown option: $1" >&2; usage 64 >&2 ;;
    *) [ -z "$backup" ] || usage 64 >&2; backup=$1 ;;
  esac
  shift
done
[ -n "$backup" ] || usage 64 >&2

case "$mode" in
  compose) stop_first="docker compose stop web refresher" ;;
  systemd) stop_first="systemctl stop sonarweb-web sonarweb-refresher" ;;
  *) stop_first="stop the web server and the refresher (manage.py refresh_requests)" ;;
esac

# -- where the instance keeps its data (as in scripts/backup.sh) -----------------------------

if [ "$mode" = systemd ]; then
  set -a
  # shellcheck disable=SC1091
  . /etc/sonarweb/env
  DATABASE_URL_FILE=/etc/sonarweb/secrets/database_url
  SONARWEB_DATA_DIR=/var/lib/sonarweb
  set +a
fi
data_dir=${SONARWEB_DATA_DIR:-$root/data}
python=python3
if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; fi

# The database as the app sees it: kind, then a libpq connection string without the
# password (or the SQLite file), then the password (handed over in PGPASSWORD only).
db_from_url() {
  local url=${DATABASE_URL:-}
  if [ -z "$url" ] && [ -n "${DATABASE_URL_FILE:-}" ]; then url=$(<"$DATABASE_URL_FILE"); fi
  if [ -z "$url" ]; then url="sqlite:///$data_dir/sonarweb.sqlite3"; fi
  "$python" - "$url" <<'PY'
import sys
import dj_database_url

libpq = {"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout",
         "application_name", "target_session_attrs", "gssencmode", "channel_binding", "options"}
config = dj_database_url.parse(sys.argv[1].strip())
engine = config.get("ENGINE", "")
if engine.endswith("sqlite3"):
    print("sqlite"); print(config["NAME"]); print("")
elif "postgresql" in engine or "postgis" in engine:
    def quoted(value):
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
    parts = {"dbname": config.get("NAME"), "user": config.get("USER"),
             "host": config.get("HOST"), "port": config.get("PORT")}
    parts.update({k: v for k, v in (config.get("OPTIONS") or {}).items() if k in libpq})
    print("postgresql")
    print(" ".join(f"{k}={quoted(v)}" for k, v in parts.items() if v not in (None, "")))
    print(config.get("PASSWORD") or "")
else:
    sys.exit(f"restore.sh knows SQLite and PostgreSQL, not {engine or 'this DATABASE_URL'}.")
PY
}

db_tool() {
  local tool=$1; shift
  if [ "$mode" = compose ]; then
    docker compose exec -T db sh -c \
      'tool=$1; shift; exec "$tool" --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" "$@"' \
      sh "$tool" "$@"
  elif [ -n "$pg_password" ]; then
    PGPASSWORD=$pg_password "$tool" --dbname="$db_target" "$@"
  else
    "$tool" --dbname="$db_target" "$@"
  fi
}
sql() { db_tool psql --no-psqlrc --no-align --tuples-only --no-password -c "$1"; }

in_data_dir() {
  local snippet=$1; shift
  if [ "$mode" = compose ]; then
    docker compose run --rm --no-deps -T --entrypoint sh web -c "$snippet" sh "$@"
  else
    SONARWEB_DATA_DIR=$data_dir sh -c "$snippet" sh "$@"
  fi
}

# media/ from the tar on stdin, the old folder moved aside; exit 3 when the images are in
# an S3 bucket (nothing to put back here).
# shellcheck disable=SC2016
media_untar='set -eu
if [ -n "${SONARWEB_MEDIA_S3_BUCKET:-}" ]; then exit 3; fi
mkdir -p "$SONARWEB_DATA_DIR"
cd "$SONARWEB_DATA_DIR"
if [ -e media ] && ! rmdir media 2>/dev/null; then
  mv media "media.before-restore-$1"
  echo "The media folder that was there is now $SONARWEB_DATA_DIR/media.before-restore-$1." >&2
fi
tar -xf - --no-same-owner media'

# -- the backup --------------------------------------------------------------------------------

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -d "$backup" ]; then
  src=$backup
else
  tar -C "$work" -xf "$backup"
  src=$work
fi
[ -f "$src/manifest.txt" ] || die "$backup is not a backup made by scripts/backup.sh (no manifest.txt)."
field() { sed -n "s/^$1: //p" "$src/manifest.txt" | head -n 1; }
db_kind=$(field db_kind)
db_file=$(field db_file)
[ -f "$src/$db_file" ] || die "The backup has no database file ($db_file)."
echo "Backup of $(field created) from $(field host), version $(field app_version) ($(field git_commit)):"
echo "  $(field counts); media: $(field media)"

if [ "$mode" = compose ]; then
  target_kind=postgresql
  target="the database of the compose service db"
else
  parsed=$(db_from_url)
  { IFS= read -r target_kind; IFS= read -r db_target; IFS= read -r pg_password || true; } <<<"$parsed"
  target="$target_kind: $db_target"
fi
[ "$db_kind" = "$target_kind" ] \
  || die "This is a $db_kind backup and the instance uses $target_kind: restore it into $db_kind."

# -- nothing may be using the instance ---------------------------------------------------------

running=()
if [ "$mode" = compose ]; then
  for service in $(docker compose ps --status running --services); do
    case "$service" in web|refresher) running+=("the compose service $service") ;; esac
  done
elif command -v systemctl >/dev/null; then
  for unit in sonarweb-web sonarweb-refresher; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then running+=("$unit.service"); fi
  done
fi
if [ "$target_kind" = postgresql ]; then
  others=$(sql "SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()") \
    || die "Cannot reach the database ($target)$([ "$mode" = compose ] && echo "; start it: docker compose up -d db")."
  if [ "$others" != 0 ]; then running+=("$others other connection(s) to the database"); fi
  beats=$(sql "SELECT count(*) FROM tracker_refresherbeat WHERE stopped_at IS NULL
    AND last_pass_at > now() - interval '2 minutes'" 2>/dev/null || echo 0)
else
  beats=$("$python" - "$db_target" <<'PY'
import sqlite3, sys
from pathlib import Path
if not Path(sys.argv[1]).exists():
    print(0); sys.exit()
try:
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
    print(db.execute("SELECT count(*) FROM tracker_refresherbeat WHERE stopped_at IS NULL"
                     " AND last_pass_at > datetime('now', '-2 minutes')").fetchone()[0])
except sqlite3.Error:
    print(0)
PY
)
fi
if [ "${beats:-0}" != 0 ]; then running+=("a refresher (it finished a pass in the last two minutes)"); fi
if [ ${#running[@]} -gt 0 ]; then
  echo "Refusing to restore while the instance is in use:" >&2
  printf '  - %s\n' "${running[@]}" >&2
  die "Stop web and the refresher first ($stop_first), then run this again."
fi

# -- ask ---------------------------------------------------------------------------------------

stamp=$(date -u +%Y%m%dT%H%M%SZ)
cat <<EOF
This replaces
  the database ($target), and
  the media folder in the data directory ($([ "$mode" = compose ] && echo "the volume at /data" || echo "$data_dir")).
Web and the refresher must stay stopped until it is done ($stop_first).
EOF
if [ "$assume_yes" != 1 ]; then
  [ -t 0 ] || die "Not asking without a terminal: add --yes to restore."
  read -r -p "Type 'restore' to go on: " answer
  [ "$answer" = restore ] || die "Nothing was changed."
fi

# -- the database ------------------------------------------------------------------------------

if [ "$db_kind" = postgresql ]; then
  # --if-exists: a new database has none of the tables --clean drops. --no-owner and
  # --no-privileges: the objects belong to the role restoring them, whatever the old name.
  db_tool pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
    --exit-on-error --no-password < "$src/$db_file"
else
  mkdir -p "$(dirname "$db_target")"
  cp "$src/$db_file" "$db_target.restoring"
  chmod 600 "$db_target.restoring"
  if [ -e "$db_target" ]; then mv "$db_target" "$db_target.before-restore-$stamp"; fi
  # A WAL left by the old file would be replayed into the new one.
  rm -f "$db_target-wal" "$db_target-shm"
  mv "$db_target.restoring" "$db_target"
fi
echo "Database restored."

# -- the media folder and the data directory's secrets ------------------------------------------

if [ ! -f "$src/media.tar" ]; then
  echo "The backup holds no media folder: $(field media)."
elif [ -z "$(tar -tf "$src/media.tar" | head -n 1)" ]; then
  echo "The backed-up instance had no media folder yet: nothing to put back."
else
  rc=0
  in_data_dir "$media_untar" "$stamp" < "$src/media.tar" || rc=$?
  if [ "$rc" = 3 ]; then
    echo "This instance keeps its images in an S3 bucket (SONARWEB_MEDIA_S3_BUCKET): the media folder is not restored; the bucket's own versioning or replication brings its files back."
  elif [ "$rc" != 0 ]; then
    die "Restoring the media folder failed (exit $rc); the database is restored already."
  else
    echo "Media folder restored."
  fi
fi
if [ -d "$src/data-secrets" ] && [ "$mode" != compose ]; then
  for secret in "$src"/data-secrets/*; do
    dest=$data_dir/$(basename "$secret")
    if [ -e "$dest" ] && ! cmp -s "$secret" "$dest"; then mv "$dest" "$dest.before-restore-$stamp"; fi
    cp -p "$secret" "$dest"
  done
  echo "Restored the secrets debug mode generated in the data directory."
fi
if [ "$mode" != compose ] && [ "$(id -u)" = 0 ] && [ -d "$data_dir" ]; then
  # Restored by root, the files must still belong to the app's user (the data directory's).
  owner=$(stat -c %u:%g "$data_dir")
  for path in "$data_dir/media" "$data_dir/secret_key" "$data_dir/encryption_keys"; do
    if [ -e "$path" ]; then chown -R "$owner" "$path"; fi
  done
  if [ "$db_kind" = sqlite ]; then chown "$owner" "$db_target"; fi
fi

case "$mode" in
  compose) start="docker compose up -d   # migrate runs first, then web and the refresher"
    check="docker compose run --rm web manage check_media" ;;
  systemd) start="systemctl start sonarweb-web sonarweb-refresher   # sonarweb-migrate runs first"
    check="sudo -u sonarweb deploy/manage.sh check_media" ;;
  *) start="python manage.py migrate, then start web and the refresher"
    check="python manage.py check_media" ;;
esac
cat <<EOF

Restored. Next:
  1. Give the instance the encryption keys of the one that was backed up
     (SONARWEB_ENCRYPTION_KEYS), or the members' stored API keys cannot be read.
  2. $start
  3. $check   # images or bundles the backup lacked are fetched or built again
EOF
