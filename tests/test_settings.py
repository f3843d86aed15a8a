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
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "DEVELOPMENT_KEY_FILE",
    "REDIS_URL",
    "LOGIN_FAILURE_RATE",
    "REGISTRATION_RATE",
    "TRUSTED_PROXIES",
    "CORS_ALLOWED_ORIGINS",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_STATEMENT_TIMEOUT",
    "DATABASE_LOCK_TIMEOUT",
    "SESSIONS_MANAGEMENT_COMMAND",
    "DATABASE_POOLER",
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
        # Development mode unless a test says otherwise, with its key file in the test's folder.
        DEBUG="1",
        DEVELOPMENT_KEY_FILE=str(tmp_path / "development-secret-key"),
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


# The key that was written in settings.py, and any key Django itself calls insecure.
FORMER_DEVELOPMENT_KEY = "django-insecure-development-only-do-not-use-in-production"


@pytest.mark.parametrize(
    "key",
    [FORMER_DEVELOPMENT_KEY, "django-insecure-" + "x7Qk2" * 10],
    ids=["former-settings-key", "django-insecure"],
)
def test_debug_off_refuses_a_known_development_secret(tmp_path, key):
    result = run_django(tmp_path, ["manage.py", "check"], DEBUG="0", SECRET_KEY=key)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "known development key" in result.stderr


def test_without_debug_or_secret_the_server_refuses_to_start(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    environment.update(
        DJANGO_SETTINGS_MODULE="sessions_project.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PYTHONPATH=str(BASE_DIR),
    )

    # Nothing set at all: what `make serve` (and gunicorn) start with on a careless deploy.
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr
    assert "DEBUG=1" in result.stderr


@pytest.mark.parametrize(
    "key", ["a-short-secret-0123456789", "a" * 60], ids=["shorter-than-50", "one-character-repeated"]
)
def test_debug_off_refuses_a_short_or_trivial_secret(tmp_path, key):
    result = run_django(tmp_path, ["manage.py", "check"], DEBUG="0", SECRET_KEY=key)

    assert result.returncode != 0
    assert "too short or too simple" in result.stderr


def test_debug_is_off_unless_asked_for(tmp_path):
    script = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    environment = {"SECRET_KEY": REAL_SECRET}

    result = run_django(tmp_path, ["-c", script], **environment, DEBUG="")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "False"


def test_debug_without_a_secret_makes_a_development_key_once_and_reuses_it(tmp_path):
    script = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    key_file = tmp_path / "development-secret-key"

    first = run_django(tmp_path, ["-c", script], DEBUG="1")
    second = run_django(tmp_path, ["-c", script], DEBUG="1")
    # Copied into production by mistake: refused like any development key.
    production = run_django(tmp_path, ["manage.py", "check"], DEBUG="0", SECRET_KEY=key_file.read_text().strip())

    assert first.returncode == 0, first.stderr
    key = first.stdout.split()[-1]
    assert key == second.stdout.split()[-1] == key_file.read_text().strip()
    assert len(key) >= 50
    assert key != FORMER_DEVELOPMENT_KEY
    assert production.returncode != 0
    assert "development key" in production.stderr


def test_check_deploy_with_production_variables_reports_nothing(tmp_path):
    result = run_django(
        tmp_path,
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        SECRET_KEY=REAL_SECRET,
        ALLOWED_HOSTS="sessions.example",
        SECURE_SSL_REDIRECT="1",
        SESSION_COOKIE_SECURE="1",
        CSRF_COOKIE_SECURE="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


DATABASE_OPTIONS_SCRIPT = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
)


def test_postgresql_gets_connect_statement_and_lock_timeouts(tmp_path):
    result = run_django(
        tmp_path,
        ["-c", DATABASE_OPTIONS_SCRIPT],
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        DATABASE_STATEMENT_TIMEOUT="2500",
    )

    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout.strip().splitlines()[-1])
    assert options["connect_timeout"] == 3
    assert options["options"] == "-c statement_timeout=2500 -c lock_timeout=3000"


POOLED_DATABASE_SCRIPT = (
    "import json, django; django.setup(); from django.conf import settings; "
    "database = settings.DATABASES['default']; "
    "print(json.dumps({'options': database.get('OPTIONS', {}), "
    "'server_side_cursors_disabled': database.get('DISABLE_SERVER_SIDE_CURSORS', False), "
    "'conn_max_age': database['CONN_MAX_AGE']}))"
)


def test_behind_pgbouncer_nothing_outlives_a_transaction_on_the_server(tmp_path):
    # Transaction mode: no WITH HOLD cursors, and no startup `options` (pgbouncer refuses it;
    # the timeouts go on the database role instead).
    result = run_django(
        tmp_path,
        ["-c", POOLED_DATABASE_SCRIPT],
        DATABASE_URL="postgres://postgres@127.0.0.1:6432/unused",
        DATABASE_POOLER="pgbouncer",
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"options": {"connect_timeout": 3}, "server_side_cursors_disabled": True, "conn_max_age": 600}


def test_without_a_pooler_server_side_cursors_stay_on(tmp_path):
    result = run_django(
        tmp_path, ["-c", POOLED_DATABASE_SCRIPT], DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused"
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["server_side_cursors_disabled"] is False


def test_an_unknown_pooler_stops_the_start_up(tmp_path):
    result = run_django(tmp_path, ["manage.py", "check"], DATABASE_POOLER="pgpool")

    assert result.returncode != 0
    assert "DATABASE_POOLER" in result.stderr


def test_management_commands_get_no_statement_timeout(tmp_path):
    # migrate, seed_demo and purge_sessions may run long; runserver serves requests.
    script = (
        "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    )
    command = ["manage.py", "shell", "-c", script]

    result = run_django(tmp_path, command, DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused")

    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout.strip().splitlines()[-1])
    assert options == {"connect_timeout": 3}


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
        ("LOGIN_FAILURE_RATE", "lots"),
        ("REGISTRATION_RATE", "5/fortnight"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, the-load-balancer"),
        ("DATABASE_STATEMENT_TIMEOUT", "soon"),
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


@pytest.mark.parametrize(
    ("redis_url", "backend"),
    [
        ("", "django.core.cache.backends.db.DatabaseCache"),
        ("redis://127.0.0.1:6379/0", "django.core.cache.backends.redis.RedisCache"),
    ],
    ids=["database", "redis"],
)
def test_throttle_counts_go_to_a_cache_every_worker_shares(tmp_path, redis_url, backend):
    script = "import django; django.setup(); from django.conf import settings; print(settings.CACHES['default'])"

    result = run_django(tmp_path, ["-c", script], REDIS_URL=redis_url)

    assert result.returncode == 0, result.stderr
    assert backend in result.stdout
    if redis_url:
        assert redis_url in result.stdout
