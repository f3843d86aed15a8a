"""The test harness's own rules: under CI a skip fails the run (but a PostgreSQL-only test on
the SQLite pass); without Chromium the browser tests skip and say why, and never under CI; each
browser run saves screenshots to the folder its log names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


# --- under CI nothing may skip, but a PostgreSQL test on the SQLite pass ----------------------


class _Report:
    skipped = True
    outcome = "skipped"
    longrepr = "skipped for a reason"


class _Item:
    def __init__(self, postgres: bool):
        self.postgres = postgres

    def get_closest_marker(self, name):
        return object() if name == "postgres" and self.postgres else None


def _after_hook(monkeypatch, *, ci: bool, postgres_marked: bool) -> str:
    """Run conftest's makereport hookwrapper around a skipped report; the outcome it leaves."""
    from . import conftest

    monkeypatch.setattr(conftest, "IN_CI", ci)
    report = _Report()

    class Outcome:
        def get_result(self):
            return report

    hook = conftest.pytest_runtest_makereport(_Item(postgres_marked), None)
    next(hook)
    with pytest.raises(StopIteration):
        hook.send(Outcome())
    return report.outcome


def test_under_ci_a_skip_fails_the_run(monkeypatch):
    assert _after_hook(monkeypatch, ci=True, postgres_marked=False) == "failed"


def test_outside_ci_a_skip_stays_a_skip(monkeypatch):
    assert _after_hook(monkeypatch, ci=False, postgres_marked=False) == "skipped"


def test_under_ci_only_a_postgres_test_on_sqlite_may_skip(monkeypatch):
    expected = "failed" if connection.vendor == "postgresql" else "skipped"

    assert _after_hook(monkeypatch, ci=True, postgres_marked=True) == expected


# --- browser tests: skipped without Chromium and said so; never skipped under CI; screenshots ---


def run_browser_tests(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """tests/test_browser.py in a pytest of its own, on SQLite (a database of its own: it cannot
    collide with this run's)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CI", "SCREENSHOT_DIR")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_browser.py", "-p", "no:cacheprovider", "-rs", *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def no_chromium_path(tmp_path: Path) -> str:
    """A PATH on which no Chromium and no chromedriver can be found."""
    empty = tmp_path / "bin"
    empty.mkdir()
    return str(empty)


def test_without_chromium_the_browser_tests_skip_and_say_why(tmp_path):
    result = run_browser_tests(tmp_path, PATH=no_chromium_path(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 skipped" in result.stdout
    assert "Chromium and chromedriver are not installed" in result.stdout


def test_under_ci_a_skipped_browser_test_fails_the_run(tmp_path):
    result = run_browser_tests(tmp_path, PATH=no_chromium_path(tmp_path), CI="true")

    assert result.returncode == 1, result.stdout + result.stderr
    # A skip in a fixture is reported in setup: it fails as an error.
    assert re.search(r"\b2 (failed|errors)\b", result.stdout), result.stdout
    assert "skipped under CI, which is not allowed" in result.stdout


@pytest.mark.browser
def test_each_browser_run_saves_screenshots_to_the_folder_its_log_names(tmp_path):
    from .test_browser import find_chromium

    if find_chromium() is None:
        pytest.skip("Chromium and chromedriver are not installed: apt-get install chromium chromium-driver")
    folder = tmp_path / "shots"

    result = run_browser_tests(tmp_path, "-k", "staff_filter", SCREENSHOT_DIR=str(folder))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"browser screenshots in {folder}" in result.stdout
    for name in ("dashboard", "session"):
        path = folder / f"{name}.png"
        assert str(path) in result.stdout
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
