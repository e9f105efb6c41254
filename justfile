# todo-svc task runner: `just --list` shows every recipe.

set dotenv-load := false

venv := ".venv"
bin := venv / "bin"
# CONTAINER_ENGINE; else podman where it is installed and no docker daemon answers; else docker
container_engine := env("CONTAINER_ENGINE", `command -v podman >/dev/null && ! docker info >/dev/null 2>&1 && echo podman || echo docker`)

# List the recipes
default:
    @just --list

# Create the virtual environment with the dev tools
setup:
    python3 -m venv {{venv}}
    {{bin}}/pip install -q -e '.[dev]'

# Serve the API (migrates first outside production)
serve:
    {{bin}}/todo-svc serve

# Run the whole test suite (PostgreSQL on 127.0.0.1:5432)
test *args:
    {{bin}}/pytest {{args}}

# Benchmark todo-svc against the raw ceiling app (PostgreSQL, wrk)
bench *args:
    {{bin}}/python bench/run.py {{args}}

# The same benchmark with the rate-limit counters in Redis (127.0.0.1:6379 or BENCH_REDIS_URL)
bench-redis *args:
    {{bin}}/python bench/run.py --redis {{args}}

# The same benchmark with both apps behind PgBouncer in transaction mode (deploy/pgbouncer)
bench-pgbouncer *args:
    {{bin}}/python bench/run.py --pgbouncer {{args}}

# The same benchmark with todo-svc reading from a streaming replica (a primary and replica made for the run)
bench-replica *args:
    {{bin}}/python bench/run.py --replica {{args}}

# How list and sync requests cost with 20 tasks and with 100,000 (PostgreSQL): just bench-sync --tasks 20000
bench-sync *args:
    {{bin}}/python bench/sync.py {{args}}

# Lint and type-check
lint:
    {{bin}}/ruff check todo_svc tests migrations
    {{bin}}/ruff format --check todo_svc tests migrations
    {{bin}}/mypy
    {{bin}}/hadolint Containerfile

# Format the code
fmt:
    {{bin}}/ruff format todo_svc tests migrations
    {{bin}}/ruff check --fix todo_svc tests migrations

# The one local gate: lint, then tests
check: lint test

# Apply migrations up to head
migrate:
    {{bin}}/todo-svc db upgrade

# Development data in bulk: just seed --users 100 --tasks 50
seed *args:
    {{bin}}/todo-svc seed {{args}}

# Build the container image (podman in Docker format, which keeps the HEALTHCHECK): just container todo-svc:dev
container tag="todo-svc:latest":
    {{container_engine}} build {{ if container_engine =~ 'podman' { "--format docker " } else { "" } }}-f Containerfile -t {{tag}} .

# Build the image and run it: health check, secret required, migrate, serve, stop on SIGTERM (PostgreSQL)
container-test:
    CONTAINER_ENGINE='{{container_engine}}' deploy/container-test.sh

# Write the OpenAPI document the service serves to docs/openapi.json (commit it with the change)
openapi:
    {{bin}}/todo-svc openapi -o docs/openapi.json

# Fetch the docs pages' vendored Swagger UI and ReDoc again (npm, the versions in todo_svc/docs_assets/VERSIONS)
docs-assets:
    {{bin}}/python todo_svc/docs_assets/refresh.py

# Create a migration from model changes: just revision "add a column"
revision message:
    {{bin}}/todo-svc db revision -m "{{message}}"

# Per-statement cost of the executors: the driver path vs SQLAlchemy Core vs the ORM session (PostgreSQL)
bench-executors *args:
    {{bin}}/python bench/executors.py {{args}}

# Microseconds per access line: the msgspec writer vs structlog, configured and at its cheapest (a real file)
bench-access-log *args:
    {{bin}}/python bench/access_log.py {{args}}

# Instructions per GET of a task and of a list, counted by callgrind (--against REV compares a revision)
bench-instructions *args:
    {{bin}}/python bench/instructions.py {{args}}
