"""Across processes, as `make serve` runs: a WebSocket listener connected to the live (ASGI)
process receives the event of a REST request served by another process (gunicorn), through
Redis. Real servers on real ports, on the test's PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
from django.conf import settings
from django.db import connection

from sessions_app.services.sessions import session_create

from .factories import PlayerFactory
from .live_client import access_token

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def servers(tmp_path):
    """gunicorn (REST) and uvicorn (live) on the test database, sharing Redis."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,  # tokens made here verify there
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": REDIS_URL,
        "LIVE_CHANNEL_PREFIX": f"test-live-{os.getpid()}",
        "DJANGO_SETTINGS_MODULE": "sessions_project.settings",
        "WEB_CONCURRENCY": "1",
    }
    rest_port, live_port = free_port(), free_port()
    rest = subprocess.Popen(
        [BIN / "gunicorn", "--config", "sessions_project/gunicorn_conf.py", "--bind", f"127.0.0.1:{rest_port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    live = subprocess.Popen(
        [BIN / "uvicorn", "sessions_project.asgi:application", "--port", str(live_port), "--lifespan", "off"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(rest_port, rest)
        wait_for(live_port, live)
        yield f"http://127.0.0.1:{rest_port}", f"ws://127.0.0.1:{live_port}"
    finally:
        for process in (rest, live):
            process.terminate()
            process.wait(timeout=10)
        connection.close()  # the servers' connections are gone; the test database can be dropped


def post(url: str, token: str) -> int:
    request = urllib.request.Request(url, method="POST", headers={"Authorization": f"jwt {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_a_listener_on_the_live_process_receives_a_join_served_by_another_process(servers, host):
    rest_url, live_url = servers
    session = session_create(actor=host, values={"num_teams": 1, "team_size": 4})
    newcomer = PlayerFactory()
    host_token, newcomer_token = access_token(host), access_token(newcomer)

    async def scenario() -> list[dict]:
        headers = {"Authorization": f"jwt {host_token}"}
        url = f"{live_url}/api/v1/sessions/{session.uid}/live"
        async with websockets.connect(url, additional_headers=headers) as ws:
            received = [json.loads(await asyncio.wait_for(ws.recv(), 10))]  # the replay
            status = await asyncio.to_thread(post, f"{rest_url}/api/v1/sessions/{session.uid}/join", newcomer_token)
            assert status == 200
            received.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return received

    received = asyncio.run(scenario())
    assert [event["type"] for event in received] == ["session.created", "member.joined"]
    assert received[1]["data"]["playerUid"] == str(newcomer.uid)
