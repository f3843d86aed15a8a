"""/metrics under gunicorn as `make serve` runs it (sessions_project/gunicorn_conf.py): with
several workers, any worker's scrape reports the requests of all of them."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from .test_readme_tour import wait_until_serving


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthz_count(text: str) -> float:
    match = re.search(r'^http_requests_total\{method="GET",route="healthz",status="200"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_every_workers_requests_are_in_any_scrape(tmp_path):
    port = free_port()
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(settings.BASE_DIR),
        "DJANGO_SETTINGS_MODULE": "sessions_project.settings",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "WEB_CONCURRENCY": "3",
    }
    (tmp_path / "metrics").mkdir()
    log = tmp_path / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "sessions_project/gunicorn_conf.py",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # Waited for on /metrics: a readiness poll of /healthz that a loaded machine answers
        # late would be counted among the 60.
        wait_until_serving(server, f"{base}/metrics", log)
        before = healthz_count(urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode())
        # Side by side, so that every worker takes some.
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(lambda _: urllib.request.urlopen(f"{base}/healthz", timeout=10).status, range(60)))
        scrapes = [urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode() for _ in range(6)]
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert statuses == [200] * 60
    # Whichever worker answered each scrape, it counted all 60 (one worker alone would have
    # counted only those it served).
    assert [healthz_count(text) - before for text in scrapes] == [60] * 6
