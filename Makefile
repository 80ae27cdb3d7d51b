# The front door: `make demo` and `make test` work on a fresh machine with python3 and make
# (and, on Debian or Ubuntu, python3-venv, which python3 -m venv needs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1
# Tests spread over the CPUs (pytest-xdist); each test file stays on one worker, so files
# that start servers keep them to themselves. PYTEST_PARALLEL= runs them in one process.
PYTEST_PARALLEL ?= -n auto --dist loadfile

.PHONY: demo test test-sqlite test-postgres test-stress lint lint-docker format bench bench-scale clean check-deploy check-image lock secrets

# The locked versions first (hashes checked), then the project itself; a dependency added
# to pyproject.toml but not yet locked still installs, and tests/test_lock.py says to lock it.
$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -m venv $(VENV) || { echo "$(PYTHON) -m venv failed: on Debian or Ubuntu, install" \
	  "python3-venv first (sudo apt-get install python3-venv), then run make again." >&2; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh

test: $(STAMP)
	@bash scripts/ensure-test-packages.sh
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_PARALLEL)

# `make test` with every CPU kept busy by nproc+2 spinning processes, as on a loaded CI host.
test-stress: $(STAMP)
	@bash scripts/test-stress.sh

# The same suite against PostgreSQL (installed from Debian's packages and started if needed),
# without the browser tests: they drive pages `make test` already drives, and what differs
# between the databases is below the pages (queries, locks, search), which the rest covers.
test-postgres: $(STAMP)
	@bash scripts/ensure-test-packages.sh
	DATABASE_URL="$$(bash scripts/postgres.sh)" $(BIN)/pytest $(PYTEST_PARALLEL) --ignore=tests/e2e

lint: $(STAMP) lint-docker
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

lint-docker: $(STAMP)
	$(BIN)/hadolint --failure-threshold warning Dockerfile

# Pin every dependency with hashes: requirements.lock (runtime, installed by the Dockerfile)
# and requirements-dev.lock (what make test and make demo install). Run after editing
# pyproject.toml; universal, so one lock serves every platform and Python 3.11+. Pins
# already in the files are kept; `make lock LOCK_FLAGS=--upgrade` moves to the newest.
LOCK_FLAGS ?=
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command "make lock" $(LOCK_FLAGS)
lock: $(STAMP)
	$(LOCK) -o requirements.lock
	$(LOCK) --extra s3 -o requirements-s3.lock
	$(LOCK) --extra dev -o requirements-dev.lock

# Random secrets for compose.yaml under ./secrets (kept when they exist).
secrets:
	@bash scripts/compose-secrets.sh secrets

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@bash scripts/bench.sh

# The dashboard, search, /costs/, a permalink and polling on a large archive:
# `make bench-scale ROWS=10000`; with DATABASE_URL set, on that (fresh) PostgreSQL database.
ROWS ?= 100000
bench-scale: $(STAMP)
	@bash scripts/bench-scale.sh --rows $(ROWS) $(BENCH_ARGS)

check-deploy: $(STAMP)
	@bash scripts/check-deploy.sh

# The image built from the Dockerfile with Podman, its three roles run, and compose.yaml run
# with podman-compose (scripts/image-check.sh; installs Podman from Debian's packages as
# root). CI runs it after the tests.
check-image:
	@bash scripts/image-check.sh

clean:
	rm -rf $(VENV) staticfiles .pytest_cache sonarweb.egg-info
