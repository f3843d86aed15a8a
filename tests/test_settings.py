"""Settings from the environment: production refuses the development secret, DEBUG=0 with a
real secret still serves plain HTTP on either database, malformed values stop the start-up,
and createsuperuser needs nothing but a username and a password.

Settings are read once per process, so these start Django in a subprocess with the
environment under test (the real settings module, not the test one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from players_app.models import Player

BASE_DIR = Path(__file__).resolve().parent.parent
REAL_SECRET = "a-real-secret-for-this-test-only-0123456789abcdefghijklmnop"
# Names the settings read; cleared so that the developer's shell cannot leak into a test.
SETTINGS_VARIABLES = (
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "ALLOWED_HOSTS",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "USE_X_FORWARDED_PROTO",
    "CONN_MAX_AGE",
)

# A request through the whole stack, without a database: the landing page and an
# unauthenticated API call (401 comes before any query).
REQUEST_SCRIPT = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
landing = client.get("/")
api = client.get("/api/v1/sessions")
print(json.dumps({
    "debug": settings.DEBUG,
    "landing": landing.status_code,
    "landing_location": landing.get("Location"),
    "hsts": landing.get("Strict-Transport-Security"),
    "api": api.status_code,
    "api_type": api["Content-Type"],
    "database": {k: settings.DATABASES["default"].get(k) for k in ("ENGINE", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS")},
}))
"""


def run_django(tmp_path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    environment.update(
        DJANGO_SETTINGS_MODULE="sessions_project.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PYTHONPATH=str(BASE_DIR),
    )
    environment.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=60
    )


def test_debug_off_refuses_the_development_secret(tmp_path):
    result = run_django(tmp_path, ["manage.py", "check"], DEBUG="0")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_debug_off_refuses_an_explicit_development_secret(tmp_path):
    from sessions_project.settings import DEVELOPMENT_SECRET_KEY

    result = run_django(tmp_path, ["manage.py", "check"], DEBUG="0", SECRET_KEY=DEVELOPMENT_SECRET_KEY)

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_debug_off_with_a_real_secret_passes_the_checks(tmp_path):
    result = run_django(tmp_path, ["manage.py", "check"], DEBUG="0", SECRET_KEY=REAL_SECRET)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_debug_off_with_a_real_secret_serves_plain_http(tmp_path, database):
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        # Nothing here connects: settings and a request that needs no query.
        "postgres": "postgres://postgres@127.0.0.1:5432/unused",
    }[database]

    result = run_django(tmp_path, ["-c", REQUEST_SCRIPT], DEBUG="0", SECRET_KEY=REAL_SECRET, DATABASE_URL=url)

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["debug"] is False
    assert seen["landing"] == 200  # not a 301 to https
    assert seen["landing_location"] is None
    assert seen["hsts"] is None
    assert seen["api"] == 401
    assert seen["api_type"] == "application/problem+json"
    if database == "postgres":
        # Persistent connections with health checks: a new connection per request costs ~8x.
        assert seen["database"] == {
            "ENGINE": "django.db.backends.postgresql",
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    else:
        assert seen["database"]["ENGINE"] == "django.db.backends.sqlite3"


def test_https_only_behaviour_comes_from_its_own_variables(tmp_path):
    result = run_django(
        tmp_path,
        ["-c", REQUEST_SCRIPT],
        DEBUG="0",
        SECRET_KEY=REAL_SECRET,
        SECURE_SSL_REDIRECT="1",
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["landing"] == 301
    assert seen["landing_location"].startswith("https://")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "not a url"),
        ("CONN_MAX_AGE", "forever"),
        ("JWT_ACCESS_SECONDS", "0"),
        ("OPEN_REGISTRATION", "perhaps"),
    ],
)
def test_a_malformed_value_stops_the_start_up_naming_it(tmp_path, variable, value):
    env = {variable: value}
    if variable == "CONN_MAX_AGE":  # read for PostgreSQL only
        env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/unused")

    result = run_django(tmp_path, ["manage.py", "check"], **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_allowed_hosts_come_from_the_environment(tmp_path):
    script = (
        "import django; django.setup(); from django.test import Client; "
        "print(Client().get('/', HTTP_HOST='sessions.example').status_code, "
        "Client().get('/', HTTP_HOST='evil.example').status_code)"
    )

    result = run_django(
        tmp_path, ["-c", script], DEBUG="0", SECRET_KEY=REAL_SECRET, ALLOWED_HOSTS="sessions.example, other.example"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["200", "400"]


@pytest.mark.django_db
def test_createsuperuser_noinput_needs_only_username_and_password(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-root-secret-7")
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)

    call_command("createsuperuser", interactive=False, verbosity=0)

    root = Player.objects.get(username="root")
    assert root.is_superuser
    assert root.is_staff
    assert root.check_password("a-long-root-secret-7")
    assert root.uid is not None
