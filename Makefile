# The front door: `make demo` and `make test` work on a fresh machine with python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test test-sqlite test-postgres lint format bench bench-scale clean check-deploy

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh

test: $(STAMP)
	@bash scripts/ensure-chromium.sh
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

# The same suite against PostgreSQL (installed from Debian's packages and started if needed).
test-postgres: $(STAMP)
	@bash scripts/ensure-chromium.sh
	DATABASE_URL="$$(bash scripts/postgres.sh)" $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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

clean:
	rm -rf $(VENV) staticfiles .pytest_cache sonarweb.egg-info
