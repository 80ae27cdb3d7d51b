#!/usr/bin/env bash
# Back up a sonarweb instance into ONE file: the database, the image archive (media/ in the
# data directory: stored images and answer bundles) and a manifest. scripts/restore.sh puts
# it back. docs/deployment.md, "Backups", shows both for compose and bare metal.
#
#   bash scripts/backup.sh [--compose | --systemd] [--output DIR]
#
# Where the instance is:
#   (default)  this shell's environment, as manage.py reads it: DATABASE_URL or
#              DATABASE_URL_FILE (unset: SQLite in the data directory) and SONARWEB_DATA_DIR
#              (unset: data/ in this checkout)
#   --systemd  the layout of deploy/systemd: /etc/sonarweb/env, the database URL in
#              /etc/sonarweb/secrets/database_url, data in /var/lib/sonarweb
#   --compose  the compose.yaml stack (run it in the checkout's directory): the database
#              through `docker compose exec -T db`, the data volume through a one-off `web`
#              container
#
# The app may keep running: the database is dumped first (a consistent snapshot), then
# media/ is copied; the app writes a file before the row that names it, so every row in the
# dump has its file. Writes DIR/sonarweb-backup-<UTC time>.tar (DIR defaults to ./backups),
# readable by you alone: it holds password hashes, sessions and the encrypted API keys.
#
# NOT in the backup: the encryption keys (SONARWEB_ENCRYPTION_KEYS), on purpose. Keep them
# somewhere else; a restore without them cannot read the members' stored API keys.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=local
output=backups

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --compose) mode=compose ;;
    --systemd) mode=systemd ;;
    --output) output=${2:?--output needs a directory}; shift ;;
    --output=*) output=${1#--output=} ;;
    -h|--help) usage 0 ;;
    *) echo "Unknown argument: $1" >&2; usage 64 >&2 ;;
  esac
  shift
done

# -- where the instance keeps its data -------------------------------------------------------

if [ "$mode" = systemd ]; then
  # The same settings the services get (deploy/manage.sh does the same).
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

# The database as the app sees it, split for the PostgreSQL tools: a libpq connection
# string without the password, and the password on its own (handed over in PGPASSWORD, never
# on a command line, where `ps` would show it). For SQLite, the file.
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
    sys.exit(f"backup.sh knows SQLite and PostgreSQL, not {engine or 'this DATABASE_URL'}.")
PY
}

# Runs a PostgreSQL client tool against the app's database: db_tool TOOL ARGS...
db_tool() {
  local tool=$1; shift
  if [ "$mode" = compose ]; then
    # Inside the db container, over its socket, as the role compose.yaml creates. -T: no
    # terminal, so the bytes reach the file unchanged (a TTY turns \n into \r\n).
    docker compose exec -T db sh -c \
      'tool=$1; shift; exec "$tool" --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" "$@"' \
      sh "$tool" "$@"
  elif [ -n "$pg_password" ]; then
    PGPASSWORD=$pg_password "$tool" --dbname="$db_target" "$@"
  else
    "$tool" --dbname="$db_target" "$@"
  fi
}

# Runs the shell snippet $1 where the data directory is, with SONARWEB_DATA_DIR set.
in_data_dir() {
  local snippet=$1; shift
  if [ "$mode" = compose ]; then
    docker compose run --rm --no-deps -T --entrypoint sh web -c "$snippet" sh "$@"
  else
    SONARWEB_DATA_DIR=$data_dir sh -c "$snippet" sh "$@"
  fi
}

# media/ as a tar on stdout; exit 3 when the images are in an S3 bucket instead.
# shellcheck disable=SC2016
media_tar='set -eu
if [ -n "${SONARWEB_MEDIA_S3_BUCKET:-}" ]; then exit 3; fi
cd "$SONARWEB_DATA_DIR"
if [ -d media ]; then exec tar -cf - media; fi
exec tar -cf - --files-from=/dev/null'

counts_sql="SELECT (SELECT count(*) FROM tracker_trackedrequest) || ' requests, ' ||
  (SELECT count(*) FROM tracker_answerarchive) || ' archived answers, ' ||
  (SELECT count(*) FROM media_answerimage WHERE status = 'stored') || ' images shown, ' ||
  (SELECT count(*) FROM media_archivedimage) || ' stored images, ' ||
  (SELECT count(*) FROM media_answerbundle) || ' bundles, ' ||
  (SELECT count(*) FROM auth_user) || ' users'"

# -- the backup -------------------------------------------------------------------------------

umask 077
mkdir -p "$output"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name=sonarweb-backup-$stamp
work=$(mktemp -d "$output/.$name.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The database.
if [ "$mode" = compose ]; then
  db_kind=postgresql
else
  parsed=$(db_from_url)
  { IFS= read -r db_kind; IFS= read -r db_target; IFS= read -r pg_password || true; } <<<"$parsed"
fi
if [ "$db_kind" = postgresql ]; then
  command -v pg_dump >/dev/null || [ "$mode" = compose ] \
    || { echo "pg_dump is missing: apt-get install postgresql-client (its version at least the server's)." >&2; exit 1; }
  db_file=database.pgdump
  db_tool pg_dump --format=custom --no-password > "$work/$db_file"
  counts=$(db_tool psql --no-psqlrc --no-align --tuples-only --no-password -c "$counts_sql" 2>/dev/null \
    || echo "unavailable")
else
  sqlite_path=$db_target
  [ -f "$sqlite_path" ] || { echo "No SQLite database at $sqlite_path." >&2; exit 1; }
  db_file=database.sqlite3
  # SQLite's online backup: a consistent copy that includes what is still in the WAL, taken
  # while the app keeps writing (copying the file alone could miss or tear the last writes).
  counts=$("$python" - "$sqlite_path" "$work/$db_file" "$counts_sql" <<'PY'
import sqlite3, sys
source = sqlite3.connect(sys.argv[1], timeout=30)
copy = sqlite3.connect(sys.argv[2])
source.backup(copy)
source.close()
copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
    sys.exit("The copy of the SQLite database fails its integrity check.")
try:
    print(copy.execute(sys.argv[3]).fetchone()[0])
except sqlite3.Error:
    print("unavailable")
copy.close()
PY
)
  # Run as root, the backup may have made the WAL files; the app's user must keep them.
  for extra in "$sqlite_path-wal" "$sqlite_path-shm"; do
    if [ -e "$extra" ] && [ "$(id -u)" = 0 ]; then chown --reference="$sqlite_path" "$extra"; fi
  done
fi
echo "database ($db_kind): $counts"

# 2. The image archive: media/ in the data directory.
media_note="included (media.tar)"
rc=0
in_data_dir "$media_tar" > "$work/media.tar" || rc=$?
if [ "$rc" = 3 ]; then
  rm -f "$work/media.tar"
  media_note="not included: the images are kept in an S3 bucket (SONARWEB_MEDIA_S3_BUCKET), which its own versioning or replication must back up"
elif [ "$rc" != 0 ]; then
  echo "Copying the media folder failed (exit $rc)." >&2
  exit 1
else
  media_files=$(tar -tf "$work/media.tar" | grep -vc '/$' || true)
  media_note="included (media.tar, $media_files files)"
fi
echo "media: $media_note"

# 3. Secrets generated in the data directory: only debug mode (make demo) keeps them there.
secrets_note=none
if [ "$mode" != compose ]; then
  kept=""
  for secret in secret_key encryption_keys; do
    if [ -f "$data_dir/$secret" ]; then
      mkdir -p "$work/data-secrets"
      cp -p "$data_dir/$secret" "$work/data-secrets/$secret"
      kept="$kept$secret "
    fi
  done
  if [ -n "$kept" ]; then secrets_note="${kept}(generated by debug mode in the data directory)"; fi
fi

# 4. The manifest.
keys_note="NOT included: keep SONARWEB_ENCRYPTION_KEYS apart from this backup, or the stored API keys cannot be read after a restore"
case "$secrets_note" in
  *encryption_keys*) keys_note="only the debug-mode file of the data directory (data-secrets/encryption_keys)" ;;
esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -n 1)
commit=$(git -c safe.directory="$root" -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
cat > "$work/manifest.txt" <<EOF
format: sonarweb-backup 1
created: $(date -u +%Y-%m-%dT%H:%M:%SZ)
host: $(hostname 2>/dev/null || echo unknown)
app_version: ${version:-unknown}
git_commit: $commit
taken_with: $mode
db_kind: $db_kind
db_file: $db_file
counts: $counts
media: $media_note
data_dir_secrets: $secrets_note
encryption_keys: $keys_note
EOF

tar -C "$work" -cf "$output/.$name.tar.partial" .
mv "$output/.$name.tar.partial" "$output/$name.tar"
echo "Backup written: $output/$name.tar ($(du -h "$output/$name.tar" | cut -f1))"
cat >&2 <<'EOF'

  !! The encryption keys are NOT in this backup. Keep SONARWEB_ENCRYPTION_KEYS (compose:
  !! secrets/encryption_keys; systemd: /etc/sonarweb/secrets/encryption_keys) somewhere
  !! else, safely. Without them the restored members' API keys cannot be read, and every
  !! member must save theirs again. Keep django_secret_key too (sessions, reset links).
EOF
