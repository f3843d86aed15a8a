# Everyday commands. `make run` and `make test` work on a fresh clone: they create .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test fuzz lint format check install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: migrate, make sure the demo accounts and demo data exist, serve on http://127.0.0.1:8000
## (development mode: DEBUG=1, and a random key of this checkout's own in var/ unless SECRET_KEY is set)
run: export DEBUG = 1
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo_accounts
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## serve: the production server (gunicorn + whitenoise); refuses to start without SECRET_KEY
## (50+ random characters); set DATABASE_URL and ALLOWED_HOSTS too
serve: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput
	$(BIN)/gunicorn sessions_project.wsgi --bind $(HOST):$(PORT) --workers $${WEB_CONCURRENCY:-2}

## test: the whole suite (SQLite by default, PostgreSQL when DATABASE_URL is set)
test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

## fuzz: schemathesis against a live server on a fresh SQLite database, every check on, as a
## player and as a session:* account (FUZZ_EXAMPLES=200 for a longer run; see .ci/fuzz)
fuzz: install-dev
	.ci/fuzz

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: export DEBUG = 1
check: install-dev
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
