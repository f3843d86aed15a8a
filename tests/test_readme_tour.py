"""The README's API tour runs as written: its shell blocks (one script), against the real server on a fresh
database, once empty and once with the demo data `make run` seeds, answers every request with
the status the README's comment gives for it.

The expectations come from the README itself: each `curl` command in the block is followed by
a comment that starts with the status (`# 200 ...` at the end of its last line, or a comment
line `#   201 ...` right after it), so editing the tour edits this test. The block runs under
`bash -euo pipefail` with `curl` a shell function that calls the real curl, passes the body
through unchanged and records which command of the block sent each request and what came back.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
README = BASE_DIR / "README.md"

# Sourced by bash (BASH_ENV) before the block, so that the block's line numbers are its own.
# BASH_LINENO[0] is the line of the block that ran curl: inside a function, the line in the
# function's body; inside $(...), a line of the command that holds it.
CURL_RECORDER = r"""
curl() {
  local body written rc=0
  body="$(mktemp)"
  written="$(command curl -o "$body" -w '%{method} %{http_code} %{url_effective}' "$@")" || rc=$?
  cat "$body"
  rm -f "$body"
  printf '%s %s\n' "${BASH_LINENO[0]}" "$written" >>"$TOUR_LOG"
  return "$rc"
}
"""


@dataclass(frozen=True)
class Request:
    """One curl command of the tour: the block's lines it spans and the status its comment gives."""

    first_line: int
    last_line: int
    status: int


def tour_block(text: str | None = None) -> str:
    """The ```sh blocks under the README's "## API tour" heading (its subsections included),
    in order, as one script: a later block goes on in the shell of the ones before it."""
    text = README.read_text() if text is None else text
    section = text.split("\n## API tour\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)
    assert blocks, 'README.md: no ```sh block under "## API tour"'
    return "".join(blocks)


STATUS_AT_END = re.compile(r"\s#\s+(\d{3})\b")
STATUS_LINE = re.compile(r"^#\s+(\d{3})\b")


def expected_requests(block: str) -> list[Request]:
    """Each curl command of the block with the status its comment announces."""
    lines = block.splitlines()
    requests = []
    number = 0
    while number < len(lines):
        first = number
        while lines[number].endswith("\\"):
            number += 1
        last = number
        number += 1
        command = "\n".join(lines[first : last + 1])
        if lines[first].lstrip().startswith("#") or not re.search(r"\bcurl\s", command):
            continue
        assert len(re.findall(r"\bcurl\s", command)) == 1, f"README tour line {first + 1}: one curl per command"
        at_end = STATUS_AT_END.search(lines[last])
        below = STATUS_LINE.match(lines[number]) if number < len(lines) else None
        assert at_end or below, (
            f"README tour line {first + 1}: a curl command needs its status in a comment "
            "(`# 200 ...` at the end, or `#   200 ...` on the next line)"
        )
        requests.append(Request(first + 1, last + 1, int((at_end or below).group(1))))
    return requests


# A literal identifier where the tour sends one: a number or UUID as a path segment, or as the
# value of a JSON member that names a resource (`"song": 1`, `\"player\": \"<uuid>\"`).
LITERAL_ID = re.compile(
    r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27})(?=[/?\s\"']|$)"
    r'|\\?"(id|uid|\w+Uid|session|player|invite|song|chart)\\?":\s*\\?"?(\d|[0-9a-f]{8}-)'
)


def literal_ids(block: str) -> list[str]:
    """The lines of the block (comments aside) that send an identifier written into the README."""
    return [line for line in block.splitlines() if not line.lstrip().startswith("#") and LITERAL_ID.search(line)]


def test_readme_api_tour_reads_every_id_from_the_answers():
    # Ids written in are the demo data's on a fresh clone (`make run` seeds it): invite 1 and
    # song 1 are someone else's there.
    assert literal_ids(tour_block()) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment(database: Path) -> dict[str, str]:
    """What `make run` sets (development mode), with its own database; nothing else from the caller's shell."""
    environment = {name: os.environ[name] for name in ("HOME", "LANG", "LC_ALL", "TMPDIR") if name in os.environ}
    environment.update(
        # The venv's python3 first: the tour pipes answers into python3.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        DJANGO_SETTINGS_MODULE="sessions_project.settings",
        PYTHONPATH=str(BASE_DIR),
        PYTHONUNBUFFERED="1",
        DEBUG="1",
        SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL=f"sqlite:///{database}",
    )
    return environment


def manage(environment: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory) -> Path:
    """A database as `make run` leaves it before seeding: migrated, with the demo accounts.

    Made once and copied for each run: migrating takes longer than the tour."""
    database = tmp_path_factory.mktemp("tour-template") / "db.sqlite3"
    environment = server_environment(database)
    manage(environment, "migrate", "--noinput")
    manage(environment, "ensure_demo_accounts")
    return database


def wait_until_serving(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server did not start:\n{log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the server did not answer within 30 s:\n{log.read_text()}")


@pytest.mark.parametrize("demo_data", [False, True], ids=["empty-database", "demo-data"])
def test_readme_api_tour_runs_as_written_with_the_statuses_it_shows(tmp_path, migrated_database, demo_data):
    for tool in ("bash", "curl"):
        if shutil.which(tool) is None:
            pytest.fail(f"the README tour needs {tool} on PATH")
    block = tour_block()
    expected = expected_requests(block)
    assert expected, "README tour: no curl command found"
    # Else the block would talk to whatever serves the port it names (a developer's `make run`).
    assert re.search(r"^API=.*\$\{PORT:-\d+\}", block, re.M), "README tour: API must follow PORT"

    database = tmp_path / "db.sqlite3"
    shutil.copyfile(migrated_database, database)
    environment = server_environment(database)
    if demo_data:
        manage(environment, "seed_demo")

    port = free_port()
    server_log = tmp_path / "server.log"
    with server_log.open("w") as log:
        # The production server as `make serve` runs it, one worker: SQLite takes one writer at a time.
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "sessions_project.wsgi", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", "1", "--threads", "4", "--access-logfile", "-"],
            cwd=BASE_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}/api/v1/schema/", server_log)

        script = tmp_path / "tour.sh"
        script.write_text(block)
        recorder = tmp_path / "curl-recorder.sh"
        recorder.write_text(CURL_RECORDER)
        tour_log = tmp_path / "requests.log"
        tour_log.touch()
        # PORT as the README says a reader who ran `make run PORT=...` sets it.
        shell_environment = dict(
            environment, PORT=str(port), BASH_ENV=str(recorder), TOUR_LOG=str(tour_log), TMPDIR=str(tmp_path)
        )
        tour = subprocess.run(
            ["bash", "-euo", "pipefail", str(script)],
            cwd=tmp_path,
            env=shell_environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    sent = []
    for entry in tour_log.read_text().splitlines():
        line, method, status, url = entry.split(" ", 3)
        request = next((r for r in expected if r.first_line <= int(line) <= r.last_line), None)
        assert request, f"a request from README tour line {line} that no annotated curl command covers: {entry}"
        sent.append((request.first_line, method, url, int(status), request.status))

    report = "\n".join(
        f"line {line}: {method} {url} -> {status} (README says {wanted})" for line, method, url, status, wanted in sent
    )
    assert tour.returncode == 0, f"the tour failed (exit {tour.returncode}):\n{tour.stderr}\n{report}"
    assert [status for *_, status, _ in sent] == [wanted for *_, wanted in sent], f"{report}\n{tour.stderr}"
    assert {line for line, *_ in sent} == {r.first_line for r in expected}, "every curl command of the tour runs"
    assert all(url.startswith(f"http://127.0.0.1:{port}/api/v1/") for _, _, url, *_ in sent), report
