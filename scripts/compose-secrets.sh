#!/usr/bin/env bash
# make secrets: the files compose.yaml mounts as secrets, made once with random values.
# Existing files are kept, so running it again never changes a key (a new encryption key
# would make every stored API key unreadable; back these files up with the database).
#
# The directory is private (0700); the files inside are 0644 because Compose bind-mounts
# them as they are, and the containers read them as other users (sonarweb as uid 10001,
# PostgreSQL as uid 999). Nobody else on the host can reach them through the directory.
set -euo pipefail
dir=${1:-secrets}
mkdir -p "$dir"
chmod 700 "$dir"
make_once() {
  local name=$1 value=$2
  if [ -s "$dir/$name" ]; then
    echo "kept    $dir/$name"
  else
    (umask 022 && printf '%s\n' "$value" > "$dir/$name")
    echo "created $dir/$name"
  fi
}
random() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }
# A Fernet key is 32 random bytes in url-safe base64 (what Fernet.generate_key() makes).
fernet() { python3 -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"; }

make_once django_secret_key "$(random 50)"
make_once encryption_keys "$(fernet)"
make_once postgres_password "$(random 24)"
# The app's DATABASE_URL carries the same password as the database's own secret.
make_once database_url "postgres://sonarweb:$(tr -d '\n' < "$dir/postgres_password")@db:5432/sonarweb"
