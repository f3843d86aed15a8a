# Everyday commands. `make run` and `make test` work on a fresh clone: they create .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test fuzz bench bench-compare cluster-test lint format check install install-dev lock clean

# The venv's own pip installs the locks; it is not upgraded from the network first (the
# development lock pins pip itself, and install-dev brings it to that release).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# requirements.txt and requirements-dev.txt are locks (every package pinned, with hashes), so
# pip checks every file it installs against them (--require-hashes is implied; it is spelled
# out so that a lock without hashes fails instead of installing unchecked).
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.txt
	touch $@

# The development lock holds the runtime one (same versions), so it stands in for it too.
$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: migrate, make sure the demo accounts and demo data exist, serve on http://127.0.0.1:8000
## (development mode: DEBUG=1, and a random key of this checkout's own in var/ unless SECRET_KEY is set).
## One ASGI process (uvicorn, reloading on code changes) serves HTTP and the live WebSocket and
## Server-Sent Events routes, with the in-memory channel layer unless REDIS_URL is set.
run: export DEBUG = 1
run: export LOG_FORMAT = console
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo_accounts
	$(BIN)/python manage.py seed_demo
	$(BIN)/uvicorn sessions_project.asgi:application --host $(HOST) --port $(PORT) --lifespan off --reload \
		--reload-dir sessions_app --reload-dir players_app --reload-dir sessions_project --reload-dir templates

## serve: the production layout on one machine: gunicorn (WSGI workers, whitenoise) serves the
## REST API, admin and docs on PORT; uvicorn serves the live routes (WebSocket /live, SSE
## /events/stream) on LIVE_PORT (default PORT+1). Refuses to start without SECRET_KEY (50+ random
## characters); set DATABASE_URL, ALLOWED_HOSTS and REDIS_URL (which carries events from the
## gunicorn workers to the live process; without it listeners see them on their keep-alive tick).
LIVE_PORT ?= $(shell echo $$(($(PORT) + 1)))
serve: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput
	@[ -n "$$REDIS_URL" ] || echo "serve: REDIS_URL is not set: live listeners get events on their keep-alive tick only" >&2
	$(BIN)/uvicorn sessions_project.asgi:application --host $(HOST) --port $(LIVE_PORT) --lifespan off & \
		live=$$!; trap 'kill $$live 2>/dev/null' EXIT INT TERM; \
		$(BIN)/gunicorn --config sessions_project/gunicorn_conf.py --bind $(HOST):$(PORT)

## test: the whole suite (SQLite by default, PostgreSQL when DATABASE_URL is set)
test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

## fuzz: schemathesis against a live server on a fresh SQLite database, every check on, as a
## player and as a session:* account (FUZZ_EXAMPLES=200 for a longer run; see .ci/fuzz)
fuzz: install-dev
	.ci/fuzz

## bench: load BENCH_SESSIONS (default 10000) sessions into a PostgreSQL database of its own
## (bench_<N>), serve the project as in production next to bare-Django baseline views, drive
## every endpoint with wrk (Debian package) and write bench/RESULTS.md. Needs PostgreSQL at
## BENCH_PG (postgres://postgres@127.0.0.1:5432). BENCH_DURATION=5 seconds a run, BENCH_ROUNDS=3,
## BENCH_LOAD=0 to reuse the loaded database (see bench/config.py for the rest).
bench: install
	@command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
	$(BIN)/python -m bench.run

## bench-compare: this working tree against BENCH_BASE (a commit), both served at once and
## driven in alternation, for a machine whose speed drifts between runs; BENCH_COMPARE names the
## runs (semicolons between; default the writes), BENCH_ROUNDS=5 (see bench/compare.py)
bench-compare: install
	@command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
	$(BIN)/python -m bench.compare

## cluster-test: the service as several nodes on this machine (bench/cluster.py): pgbouncer in
## transaction mode (Debian package, installed if missing) in front of a PostgreSQL database of
## its own (cluster_test at CLUSTER_PG, postgres://postgres@127.0.0.1:5432), two gunicorn app
## processes, one uvicorn live process, two sweepers and two webhook workers sharing Redis
## (CLUSTER_REDIS_URL, redis://127.0.0.1:6379/0); a mixed load on both app processes with a
## WebSocket listener, then checks (no 5xx, events exactly once, capacity, shared throttles,
## each close and delivery once). Prints a report; exits 1 if a check failed.
cluster-test: install
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { echo "cluster-test: installing pgbouncer"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; }
	$(BIN)/python -m bench.cluster

## lint: ruff (lint and format check) and mypy (types; configured in pyproject.toml)
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: export DEBUG = 1
check: install-dev
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

## lock: regenerate requirements.txt and requirements-dev.txt from requirements.in and
## requirements-dev.in (the direct dependencies) with pip-tools' pip-compile, pinned in the
## development lock. Existing pins are kept where they still satisfy the .in files:
##   make lock                                     after editing a .in file
##   make lock LOCK_ARGS=--upgrade                 every package to its latest allowed release
##   make lock LOCK_ARGS="--upgrade-package ruff"  one package (and what it needs)
## Then `make test`: the .installed markers follow the locks, so it reinstalls. The locks are
## resolved for CPython 3.11 (the project's interpreter; environment markers differ on others)
## against PyPI alone (LOCK_INDEX_URL for a mirror of it), ignoring local pip configuration,
## so their hashes are those of the published files. The development lock is compiled with
## requirements.txt as a constraint: both locks always carry the same runtime versions.
LOCK_INDEX_URL ?= https://pypi.org/simple
LOCK_ARGS ?=
PIP_COMPILE = env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT \
	PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --index-url $(LOCK_INDEX_URL) $(LOCK_ARGS)
lock: install-dev
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
		|| { echo "lock: the locks are made with Python 3.11 (.venv has $$($(BIN)/python -V))" >&2; exit 1; }
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
