"""`manage.py run_sweeper` as the process operators run: it closes what is due pass after pass,
stops on SIGTERM with exit status 0, and two of them at once close each due session once.
On PostgreSQL: the processes share the test database, which the test commits to."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from sessions_app.event_models import EventType, SessionEvent
from sessions_app.models import GameSession

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return f"postgres://{params['USER']}{password}@{params['HOST']}:{params['PORT'] or 5432}/{params['NAME']}"


def start_sweeper(*args: str) -> subprocess.Popen:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PROMETHEUS")}
    environment.update(
        DJANGO_SETTINGS_MODULE="sessions_project.settings",
        PYTHONPATH=str(settings.BASE_DIR),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL=database_url(),
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_sweeper", *args],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen) -> tuple[int, list[dict]]:
    """SIGTERM, then its exit status and its log lines."""
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return process.returncode, lines


def wait_until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail("timed out")


@pytest.fixture
def due_sessions(host, make_session, clock, settings):
    """Sessions whose idle deadline passed a minute ago in real time (made with the clock set
    back), the sweeper's to close."""
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 0  # one host makes them all

    def make(count: int) -> list[GameSession]:
        clock.now = clock.now - timedelta(minutes=5)
        return [make_session(host, idle_timeout=60) for _ in range(count)]

    return make


def scrape(port: int) -> str:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return ""


def open_count(sessions: list[GameSession]) -> int:
    return GameSession.objects.filter(pk__in=[s.pk for s in sessions], closed_at__isnull=True).count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_sweeper_closes_what_is_due_and_stops_cleanly_on_sigterm(due_sessions, host, make_session):
    due = due_sessions(3)
    port = free_port()
    process = start_sweeper("--interval", "1", "--metrics-port", str(port))

    wait_until(lambda: open_count(due) == 0)
    # What it closed, as its own metrics say (a sweeper on a host of its own is scraped so).
    wait_until(lambda: "sessions_sweeper_closed_total 3.0" in scrape(port))
    code, lines = stop(process)

    assert code == 0, lines
    assert [line["event"] for line in lines if line["event"].startswith("sweeper s")] == [
        "sweeper started",
        "sweeper stopping",
        "sweeper stopped",
    ]
    assert sum(line.get("closed", 0) for line in lines if line["event"] == "sweeper pass") == 3
    for session in GameSession.objects.filter(pk__in=[s.pk for s in due]):
        assert (session.status, session.closed_at) == ("closed", session.idle_deadline)


def test_two_sweepers_at_once_close_each_due_session_once(due_sessions):
    due = due_sessions(120)
    # Small batches: each sweeper takes many turns, so their passes overlap.
    sweepers = [start_sweeper("--interval", "1", "--batch-size", "5") for _ in range(2)]

    wait_until(lambda: open_count(due) == 0, seconds=60)
    results = [stop(process) for process in sweepers]

    assert [code for code, _ in results] == [0, 0]
    closed_by_each = [
        sum(line.get("closed", 0) for line in lines if line["event"] == "sweeper pass") for _, lines in results
    ]
    assert sum(closed_by_each) == 120, closed_by_each
    closes = Counter(
        SessionEvent.objects.filter(type=EventType.SESSION_CLOSED, session_uid__in=[s.uid for s in due]).values_list(
            "session_uid", flat=True
        )
    )
    assert set(closes.values()) == {1}
    assert len(closes) == 120
