"""The Dockerfile and compose.yaml say what the README and docs/scaling.md say they do.

No container is built here (the test machines have no container daemon): these read the two
files as text and YAML and check the promises an operator relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
LONG_RUNNING = {"app", "live", "sweeper", "webhooks", "postgres", "redis", "pgbouncer"}
FROM_OUR_IMAGE = {"app", "live", "sweeper", "webhooks"}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_the_image_is_slim_python_311_and_runs_gunicorn_as_a_non_root_user():
    instructions = dockerfile_instructions()
    kinds = [kind for kind, _ in instructions]

    assert instructions[0] == ("FROM", "python:3.11-slim")
    user = [value for kind, value in instructions if kind == "USER"]
    assert user
    assert user[-1] not in {"root", "0"}
    # The user is switched before the command.
    assert kinds.index("USER") < kinds.index("CMD")
    command = json.loads(dict(instructions)["CMD"])
    assert command[0] == "gunicorn"
    assert command[command.index("--config") + 1] == "sessions_project/gunicorn_conf.py"


def test_the_image_installs_the_lock_with_hashes_and_collects_static_files():
    runs = [value for kind, value in dockerfile_instructions() if kind == "RUN"]

    assert any(re.search(r"pip install .*--require-hashes.* -r requirements\.txt", run) for run in runs)
    assert any("manage.py collectstatic --noinput" in run for run in runs)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


def test_compose_runs_every_process_with_a_health_check(compose):
    services = compose["services"]

    assert LONG_RUNNING <= set(services)
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert "/readyz" in " ".join(services["app"]["healthcheck"]["test"])
    assert services["live"]["command"][0] == "uvicorn"
    assert services["sweeper"]["command"][2] == "run_sweeper"
    assert services["webhooks"]["command"][2] == "deliver_webhooks"


def test_compose_sends_the_service_through_pgbouncer_in_transaction_mode(compose):
    services = compose["services"]

    for name in FROM_OUR_IMAGE:
        environment = services[name]["environment"]
        assert "@pgbouncer:6432/" in environment["DATABASE_URL"], name
        assert environment["DATABASE_POOLER"] == "pgbouncer", name
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert re.search(r"^pool_mode = transaction$", compose["configs"]["pgbouncer-ini"]["content"], re.M)
    # Behind pgbouncer the settings send no startup options: the timeouts are the role's.
    assert "ALTER ROLE sessions SET statement_timeout" in compose["configs"]["postgres-init"]["content"]
    # Migrations go straight to PostgreSQL, without those timeouts.
    migrate = services["migrate"]["environment"]
    assert "@postgres:5432/" in migrate["DATABASE_URL"]
    assert "statement_timeout=0" in migrate["PGOPTIONS"]
