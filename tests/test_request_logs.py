"""One JSON line per request, with its request id on every line of that request and in its
error bodies; the id comes from X-Request-ID when sane and is echoed back."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client

from sessions_project import logs
from sessions_project.logs import formatter_config, gunicorn_logconfig

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db


class Lines:
    """What the service logs, as the production formatter renders it (JSON), line by line."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def __call__(self, event: str | None = None) -> list[dict]:
        parsed = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [line for line in parsed if event is None or line["event"] == event]


@pytest.fixture
def lines(monkeypatch):
    """Both kinds of lines into one stream: structlog's own (the request line) and the
    standard library's (every other logger), each rendered as in production."""
    config = formatter_config("json")
    factory = config.pop("()")
    handler = logging.StreamHandler()
    captured = Lines()
    handler.setStream(captured.stream)
    handler.setFormatter(factory(**config))
    monkeypatch.setattr(logs.OUTPUT, "stream", captured.stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield captured
    finally:
        root.removeHandler(handler)


def test_a_request_logs_one_json_line_with_its_fields(lines, api, session, host):
    response = api.as_(host).get(f"/api/v1/sessions/{session.uid}")

    [line] = lines("request")
    assert line["request_id"] == response["X-Request-ID"]
    assert len(line["request_id"]) == 32  # none was sent: a new one
    assert (line["level"], line["logger"]) == ("info", "sessions.request")
    assert (line["method"], line["route"], line["path"]) == ("GET", "session-detail", f"/api/v1/sessions/{session.uid}")
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["player"] == str(host.uid)
    assert line["time"].endswith("Z")
    assert "code" not in line


def test_a_sane_request_id_is_kept_and_echoed(lines, api, host):
    response = api.as_(host).get("/api/v1/sessions", HTTP_X_REQUEST_ID="lb-7f3a.2_x")

    assert response["X-Request-ID"] == "lb-7f3a.2_x"
    assert lines("request")[0]["request_id"] == "lb-7f3a.2_x"


@pytest.mark.parametrize(
    "sent", ["has spaces", "x" * 129, 'quote"d', "new\nline", ""], ids=["spaces", "long", "quote", "newline", "empty"]
)
def test_an_insane_request_id_is_replaced(api, host, sent):
    response = api.as_(host).get("/api/v1/sessions", HTTP_X_REQUEST_ID=sent)

    assert response["X-Request-ID"] != sent
    assert len(response["X-Request-ID"]) == 32


def test_an_error_names_its_code_and_request_id_in_the_line_and_the_body(lines, api, host, member, make_session):
    session = make_session(host, num_teams=1, team_size=1)

    response = api.as_(member).post(f"/api/v1/sessions/{session.uid}/join", HTTP_X_REQUEST_ID="req-full-1")

    assert response.status_code == 409
    assert response.json()["requestId"] == "req-full-1"
    [line] = lines("request")
    assert (line["level"], line["status"], line["code"], line["request_id"]) == (
        "warning",
        409,
        "session_full",
        "req-full-1",
    )
    assert line["player"] == str(member.uid)


def test_a_problem_built_outside_drf_names_its_code_too(lines):
    response = Client().get("/api/v1/no-such-thing")

    assert response.json()["requestId"] == response["X-Request-ID"]
    assert lines("request")[0]["code"] == "not_found"


def test_every_line_a_request_logs_carries_its_request_id(lines, settings, monkeypatch):
    from sessions_project import health

    settings.REDIS_URL = "redis://127.0.0.1:1/3"  # nothing listens on port 1: the check logs why
    monkeypatch.setattr(health, "_redis_client", None)

    Client().get("/readyz", HTTP_X_REQUEST_ID="probe-42")

    logged = lines()
    assert {line["logger"] for line in logged} >= {"sessions_project.health", "sessions.request"}
    assert {line["request_id"] for line in logged} == {"probe-42"}


def test_neither_a_password_nor_a_token_reaches_the_log(lines, api):
    player = PlayerFactory(username="logged", password="correct-horse-battery")
    issued = api.post("/api/v1/auth/token", {"username": "logged", "password": "correct-horse-battery"}, format="json")
    token = issued.json()["access"]

    response = Client().get("/api/v1/players/me", HTTP_AUTHORIZATION=f"jwt {token}")

    assert response.status_code == 200
    logged = json.dumps(lines())
    assert token not in logged
    assert "correct-horse-battery" not in logged
    assert lines("request")[-1]["player"] == str(player.uid)


def test_an_unread_admin_user_costs_no_query(lines, django_assert_num_queries):
    # The landing page never reads request.user: logging it must not load it.
    with django_assert_num_queries(0):
        Client().get("/")

    assert lines("request")[0]["player"] is None


def test_gunicorn_access_lines_become_fields_without_headers():
    from gunicorn.glogging import SafeAtoms

    formatter_settings = gunicorn_logconfig("json")["formatters"]["structured"]
    factory = formatter_settings.pop("()")
    formatter = factory(**formatter_settings)
    atoms = SafeAtoms(
        {
            "h": "127.0.0.1",
            "m": "GET",
            "U": "/healthz",
            "s": "200",
            "B": 16,
            "D": 1500,
            "a": "curl/8",
            "{x-request-id}o": "abc",
            "{authorization}i": "jwt secret-token",
        }
    )
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(m)s %(U)s", (atoms,), None)

    line = json.loads(formatter.format(record))

    assert line["event"] == "access"
    assert (line["method"], line["path"], line["status"], line["duration_ms"], line["request_id"]) == (
        "GET",
        "/healthz",
        200,
        1.5,
        "abc",
    )
    assert "secret-token" not in json.dumps(line)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"LOG_FORMAT", "LOG_LEVEL", "DATABASE_URL"}}
    environment.update(
        DJANGO_SETTINGS_MODULE="sessions_project.settings", DEBUG="1", PYTHONPATH=str(settings.BASE_DIR), **env
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True, timeout=60
    )


LOG_ONE_LINE = "import django, logging; django.setup(); logging.getLogger('demo').warning('hello %s', 'there')"


def test_lines_are_json_by_default_and_readable_with_log_format_console(tmp_path):
    key = str(tmp_path / "key")

    as_json = run_python(LOG_ONE_LINE, DEVELOPMENT_KEY_FILE=key)
    as_console = run_python(LOG_ONE_LINE, DEVELOPMENT_KEY_FILE=key, LOG_FORMAT="console")

    line = json.loads(as_json.stderr.strip().splitlines()[-1])
    assert (line["event"], line["level"], line["logger"]) == ("hello there", "warning", "demo")
    console = as_console.stderr.strip().splitlines()[-1]
    assert "hello there" in console
    assert "demo" in console
    assert not console.startswith("{")


def test_an_unknown_log_format_is_refused(tmp_path):
    result = run_python("import django; django.setup()", DEVELOPMENT_KEY_FILE=str(tmp_path / "key"), LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be one of json, console" in result.stderr
