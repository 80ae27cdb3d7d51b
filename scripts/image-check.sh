#!/usr/bin/env bash
# make check-image (CI runs it after the tests): build the image from the Dockerfile with
# Podman and run its three roles as compose.yaml does, against a SQLite data volume:
# `migrate` must succeed, then `web` and `refresher` must pass the image's own HEALTHCHECK
# (and /healthz must answer over HTTP). Then compose.yaml itself runs with podman-compose,
# PostgreSQL included, until db, web and refresher are healthy. Everything it starts is
# removed at the end; the images stay, so the next run reuses their layers.
#
#   bash scripts/image-check.sh [--fresh]    --fresh: remove the built image and base first
#
# No container registry is needed: the base, debian:bookworm-slim, is made here from
# Debian's packages (debootstrap) when it is missing, and tagged with the name users pull,
# so the Dockerfile built here is the one they build. Outside CI, a machine that cannot get
# Podman (not root) skips with a sentence; under CI (CI set, as .ci/run does) that fails.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=docker.io/library/debian:bookworm-slim
IMAGE=localhost/sonarweb:check
# compose.yaml's postgres:17 comes from Docker Hub; here a stand-in from Debian's
# PostgreSQL with the same contract (POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE).
POSTGRES=localhost/sonarweb-check-postgres:15
HOST_NAME=sonarweb.test
WAIT_SECONDS=120
started=$SECONDS

say() { printf 'image check: %s\n' "$*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}

# --- what it needs ---------------------------------------------------------------------
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v podman-compose >/dev/null || need+=(podman-compose)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    say "installing ${need[*]} (apt-get)…"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  elif [ -n "$(printenv CI || true)" ]; then
    fail "${need[*]} missing, and only root can install them here."
  else
    say "skipped: ${need[*]} missing (sudo apt-get install -y ${need[*]})."
    exit 0
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

work=$(mktemp -d /tmp/sonarweb-image-check.XXXXXX)
chmod 0755 "$work"
prefix="sonarweb-check-$$"
project="sonarwebcheck$$" # podman-compose's project: its containers are ${project}_web_1...
remove_containers() { # name...
  for name in "$@"; do
    podman rm --force --volumes --time 0 "$name" >/dev/null 2>&1 || true
  done
}
cleanup() {
  remove_containers "$prefix-migrate" "$prefix-web" "$prefix-refresher"
  podman volume rm --force "$prefix-data" >/dev/null 2>&1 || true
  local labelled
  labelled=$(podman ps --all --quiet --filter "label=io.podman.compose.project=$project" 2>/dev/null || true)
  # shellcheck disable=SC2086 # container ids, one word each
  remove_containers $labelled
  podman volume rm --force "${project}_data" "${project}_pgdata" >/dev/null 2>&1 || true
  podman network rm --force "${project}_default" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ "${1:-}" = "--fresh" ]; then
  say "removing $IMAGE and $BASE first (--fresh)…"
  podman rmi --force "$IMAGE" "$POSTGRES" "$BASE" >/dev/null 2>&1 || true
  podman image prune --force >/dev/null 2>&1 || true
fi

# --- the base ----------------------------------------------------------------------------
make_base() {
  local rootfs="$work/rootfs"
  say "making $BASE from Debian's packages (debootstrap --variant=minbase bookworm)…"
  if ! debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian \
    >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    fail "debootstrap could not make the base (log above)."
  fi
  # As the real image: deb822 sources with updates and security, slim's dpkg exclusions,
  # no package cache.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  # This machine's own certificate authorities, as an organisation's base image carries
  # them: behind a TLS-inspecting proxy (as in CI) pip inside the build trusts it too, once
  # the Dockerfile's ca-certificates runs update-ca-certificates.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  fi
  tar --numeric-owner -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' \
    --exclude='./sys/*' -c . | podman import --quiet --change 'CMD ["bash"]' - "$BASE" >/dev/null
  rm -rf "$rootfs"
}
podman image exists "$BASE" || make_base

# --- a runtime that can run containers here ----------------------------------------------
# Some machines (CI's VM among them) need a lower rlimit than Podman asks for and runc for
# hybrid cgroups: tried only when the defaults fail.
can_run() { podman run --rm --network none "$BASE" true >"$work/probe.log" 2>&1; }
runs=0
if can_run; then runs=1; else
  default_error=$(grep -v systemd "$work/probe.log" | tail -n 1)
  nofile=$(ulimit -Hn)
  if [ "$nofile" = "unlimited" ] || [ "$nofile" -gt 65536 ]; then nofile=65536; fi
  for runtime in crun runc; do
    command -v "$runtime" >/dev/null || continue
    cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "$runtime"
EOF
    export CONTAINERS_CONF="$work/containers.conf"
    if can_run; then
      say "podman runs containers here with $runtime and nofile=$nofile, nproc=4096."
      runs=1
      break
    fi
    unset CONTAINERS_CONF
  done
fi
[ "$runs" = 1 ] || fail "podman cannot run a container here: $default_error"

# --- the build ---------------------------------------------------------------------------
# chroot isolation needs no user namespaces; the docker format keeps the HEALTHCHECK (OCI
# has no field for it); --pull=never proves the base came from here, not a registry.
say "building $IMAGE from the Dockerfile…"
build_start=$SECONDS
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if ! podman build --isolation=chroot --format docker --pull=never --tag "$IMAGE" . \
  >"$work/build.log" 2>&1; then
  tail -n 30 "$work/build.log" >&2
  fail "podman build failed (log above)."
fi
say "built in $((SECONDS - build_start)) s."
# The image this replaced, untagged now: removed, so repeated checks do not fill the disk.
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
health=$(podman image inspect "$IMAGE" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0].get("Healthcheck"))')
case "$health" in
  *sonarweb.healthcheck*) ;;
  *) fail "the built image has no HEALTHCHECK ($health)." ;;
esac

# --- the roles, as compose.yaml runs them --------------------------------------------------
mkdir -m 0755 "$work/secrets"
python3 -c 'import secrets; print(secrets.token_urlsafe(50))' >"$work/secrets/django_secret_key"
python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())' \
  >"$work/secrets/encryption_keys"
chmod 0644 "$work/secrets"/*
podman volume create "$prefix-data" >/dev/null
common=(
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges
  --log-driver json-file --log-opt max-size=10m
  --volume "$prefix-data:/data"
  --volume "$work/secrets/django_secret_key:/run/secrets/django_secret_key:ro"
  --volume "$work/secrets/encryption_keys:/run/secrets/encryption_keys:ro"
  --env DJANGO_SECRET_KEY_FILE=/run/secrets/django_secret_key
  --env SONARWEB_ENCRYPTION_KEYS_FILE=/run/secrets/encryption_keys
  --env "DJANGO_ALLOWED_HOSTS=$HOST_NAME"
  --env "DJANGO_CSRF_TRUSTED_ORIGINS=https://$HOST_NAME"
  --env SONARWEB_REFRESH_SECONDS=1
  --env GUNICORN_WORKERS=1
)

logs() { podman logs "$1" 2>&1 | tail -n 30 >&2 || true; }

wait_healthy() { # name
  local deadline=$((SECONDS + WAIT_SECONDS)) out
  until out=$(podman healthcheck run "$1" 2>&1); do
    if [ "$(podman inspect --format '{{.State.Running}}' "$1")" != "true" ]; then
      logs "$1"
      fail "$1 exited (its log above)."
    fi
    if [ $SECONDS -ge $deadline ]; then
      logs "$1"
      fail "$1 was not healthy within $WAIT_SECONDS s: $out"
    fi
    sleep 1
  done
  status=$(podman inspect --format '{{.State.Health.Status}}' "$1")
  [ "$status" = "healthy" ] || fail "$1's health check passed but its status is $status."
  say "$1 is healthy (podman healthcheck run)."
}

say "running migrate…"
if ! podman run --name "$prefix-migrate" "${common[@]}" "$IMAGE" migrate >"$work/migrate.log" 2>&1; then
  tail -n 30 "$work/migrate.log" >&2
  fail "the migrate role failed (log above)."
fi
grep -q "Applying tracker" "$work/migrate.log" || fail "migrate applied no tracker migration."

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
mcp_port=$(free_port)
say "running web (published on 127.0.0.1:$port, MCP on $mcp_port) and refresher…"
# Without systemd Podman cannot schedule health checks (it says so on stderr, kept in the
# work directory); `podman healthcheck run` below runs the image's HEALTHCHECK itself.
podman run --detach --name "$prefix-web" --publish "127.0.0.1:$port:8000" \
  --publish "127.0.0.1:$mcp_port:8001" "${common[@]}" \
  "$IMAGE" web >/dev/null 2>>"$work/podman-run.log"
podman run --detach --name "$prefix-refresher" "${common[@]}" "$IMAGE" refresher \
  >/dev/null 2>>"$work/podman-run.log"
wait_healthy "$prefix-web"

http_status() { # host
  python3 - "$port" "$1" <<'EOF'
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
conn.request("GET", "/healthz", headers={"Host": sys.argv[2]})
response = conn.getresponse()
print(response.status, response.read().decode().strip())
EOF
}
answer=$(http_status "$HOST_NAME")
[ "$answer" = "200 ok" ] || fail "GET /healthz from the host answered '$answer', not '200 ok'."
answer=$(http_status wrong.example)
[ "${answer%% *}" = "400" ] || fail "a Host outside DJANGO_ALLOWED_HOSTS got '$answer', not 400."
say "/healthz answers 200 over HTTP for $HOST_NAME, 400 for another host."

mcp_status() { # host: POST /mcp without a token, as a client that forgot it does
  python3 - "$mcp_port" "$1" <<'EOF'
import http.client, json, sys, time
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
for _ in range(30):  # the MCP process starts once gunicorn is ready
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
        headers = {"Host": sys.argv[2], "Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}
        conn.request("POST", "/mcp", body, headers)
        response = conn.getresponse()
        print(response.status, response.getheader("WWW-Authenticate", "").split(" ")[0])
        break
    except OSError:
        time.sleep(1)
else:
    print("no answer")
EOF
}
answer=$(mcp_status "$HOST_NAME")
[ "$answer" = "401 Bearer" ] || fail "POST /mcp without a token answered '$answer', not '401 Bearer'."
say "/mcp answers on its own port, asking for a bearer token."

wait_healthy "$prefix-refresher"
say "$(podman exec "$prefix-refresher" python -m sonarweb.healthcheck refresher 2>/dev/null)"
remove_containers "$prefix-web" "$prefix-refresher"

# --- compose.yaml itself, with podman-compose ----------------------------------------------
# podman-compose 1.0 (Debian 12) ignores depends_on's conditions and starts all four at
# once: the roles must wait for the database themselves (deploy/entrypoint.sh).
make_postgres() {
  mkdir "$work/postgres"
  cat >"$work/postgres/postgres-standin" <<'SCRIPT'
#!/bin/sh
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
SCRIPT
  cat >"$work/postgres/Containerfile" <<'CONTAINERFILE'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
COPY postgres-standin /usr/local/bin/postgres-standin
ENV PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data
USER postgres
ENTRYPOINT ["sh", "/usr/local/bin/postgres-standin"]
CONTAINERFILE
  say "building $POSTGRES from Debian's postgresql-15 (compose.yaml's db)…"
  if ! podman build --isolation=chroot --format docker --pull=never --tag "$POSTGRES" \
    "$work/postgres" >"$work/postgres-build.log" 2>&1; then
    tail -n 20 "$work/postgres-build.log" >&2
    fail "could not build the PostgreSQL stand-in (log above)."
  fi
}
podman image exists "$POSTGRES" || make_postgres

dir="$work/compose"
mkdir "$dir"
cp compose.yaml "$dir/"
printf 'services:\n  db:\n    image: %s\n' "$POSTGRES" >"$dir/standin.yaml"
bash scripts/compose-secrets.sh "$dir/secrets" >/dev/null
sed -e "s|^DJANGO_ALLOWED_HOSTS=.*|DJANGO_ALLOWED_HOSTS=$HOST_NAME|" \
  -e "s|^DJANGO_CSRF_TRUSTED_ORIGINS=.*|DJANGO_CSRF_TRUSTED_ORIGINS=https://$HOST_NAME|" \
  -e "s|^SONARWEB_REFRESH_SECONDS=.*|SONARWEB_REFRESH_SECONDS=1|" \
  -e "s|^GUNICORN_WORKERS=.*|GUNICORN_WORKERS=1|" .env.example >"$dir/.env"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
compose_up() { # service...
  if ! (cd "$dir" && SONARWEB_IMAGE="$IMAGE" SONARWEB_PUBLISH="127.0.0.1:$port" \
    SONARWEB_MCP_PUBLISH="127.0.0.1:$mcp_port" \
    podman-compose --project-name "$project" -f compose.yaml -f standin.yaml up -d "$@") \
    >>"$work/compose.log" 2>&1; then
    grep -v systemd "$work/compose.log" | tail -n 30 >&2
    fail "podman-compose up $* failed (log above)."
  fi
}
# In two steps, as docs/deployment.md says for podman-compose: aardvark-dns 1.4 (Debian 12)
# drops name lookups while containers join the network (containers/aardvark-dns#389), so
# migrate could lose `db` for a moment if web and refresher started beside it. The first
# step still starts migrate before PostgreSQL is ready: the entrypoint must wait.
say "podman-compose up -d db migrate (project $project)…"
compose_up db migrate
migrate_code=$(podman wait "${project}_migrate_1")
if [ "$migrate_code" != "0" ]; then
  logs "${project}_migrate_1"
  fail "compose's migrate exited with $migrate_code (its log above)."
fi
podman logs "${project}_migrate_1" 2>&1 | grep "database" >&2 || true
say "compose's migrate succeeded; podman-compose up -d (web on 127.0.0.1:$port)…"
compose_up
wait_healthy "${project}_db_1"
wait_healthy "${project}_web_1"
wait_healthy "${project}_refresher_1"
answer=$(http_status "$HOST_NAME")
[ "$answer" = "200 ok" ] || fail "compose's web answered '$answer' to GET /healthz, not '200 ok'."
say "compose's /healthz answers 200 over HTTP."
answer=$(mcp_status "$HOST_NAME")
[ "$answer" = "401 Bearer" ] || fail "compose's /mcp answered '$answer' without a token, not '401 Bearer'."
say "compose's /mcp answers, asking for a bearer token."

say "passed in $((SECONDS - started)) s."
