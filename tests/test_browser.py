"""Admin end to end in headless Chromium (Selenium, Django's live server).

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them these
tests skip and say why; under CI a skip fails the run (tests/conftest.py). Each run saves
screenshots of the dashboard and of a session's page to $SCREENSHOT_DIR (default
test-artifacts/screenshots/), and the summary names the folder. docs/screenshots/dashboard.png,
the README's, is written when missing or when UPDATE_DOCS_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.utils import timezone

from sessions_app.models import GameSession, Membership
from sessions_app.services.lifecycle import session_close
from sessions_app.services.membership import session_join
from sessions_app.services.sessions import session_create, session_update

from .conftest import SCREENSHOTS
from .factories import PlayerFactory

pytestmark = pytest.mark.browser

PASSWORD = "pass-word-123"  # PlayerFactory's
DOCS_SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "dashboard.png"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMEDRIVER_PATHS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def screenshot_dir() -> Path:
    return Path(os.environ.get("SCREENSHOT_DIR") or Path(settings.BASE_DIR) / "test-artifacts" / "screenshots")


def find_chromium() -> tuple[str, str] | None:
    browser = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver") or next((p for p in CHROMEDRIVER_PATHS if os.access(p, os.X_OK)), None)
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """Headless Chromium through the system's chromedriver (Selenium never downloads one)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    found = find_chromium()
    if found is None:
        pytest.skip("Chromium and chromedriver are not installed: apt-get install chromium chromium-driver")
    binary, driver_path = found
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not go online
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(request, browser):
    """Save the browser's page as <name>.png in the screenshot folder (and list it)."""

    def save(name: str) -> Path:
        folder = screenshot_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        # The whole page: grow the window to the page's height for the shot.
        width, height = browser.get_window_size()["width"], browser.get_window_size()["height"]
        page_height, chrome = browser.execute_script(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
        )
        browser.set_window_size(width, min(max(page_height, 600), 4000) + chrome)
        try:
            assert browser.save_screenshot(str(path)), path
        finally:
            browser.set_window_size(width, height)
        request.config.stash.setdefault(SCREENSHOTS, []).append(path)
        return path

    return save


class Page:
    """A few steps on top of Selenium, each waiting for what it needs."""

    def __init__(self, driver, base_url: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.driver, self.base_url, self.by = driver, base_url, By
        self._wait, self._ec, self._select = WebDriverWait(driver, 10), expected_conditions, Select

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str):
        return self._wait.until(self._ec.presence_of_element_located((self.by.CSS_SELECTOR, css)))

    def find_all(self, css: str):
        return self.driver.find_elements(self.by.CSS_SELECTOR, css)

    def click(self, css: str) -> None:
        self._wait.until(self._ec.element_to_be_clickable((self.by.CSS_SELECTOR, css))).click()

    def click_link(self, text: str, within: str = "body") -> None:
        self.find(within).find_element(self.by.LINK_TEXT, text).click()

    def choose(self, css: str, label: str) -> None:
        self._select(self.find(css)).select_by_visible_text(label)

    def wait_for_url(self, part: str) -> None:
        self._wait.until(self._ec.url_contains(part))

    def messages(self) -> list[str]:
        self.find("ul.messagelist li")
        return [m.text for m in self.find_all("ul.messagelist li")]

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/?next=/admin/")
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.click("#login-form input[type=submit]")


def seed_a_busy_day() -> GameSession:
    """Sessions of every status created over the last day, players in them, recent joins.
    Returns "Friday finals": open, hosted by alice, with bob and carol in it."""
    players = {name: PlayerFactory(username=name) for name in ("alice", "bob", "carol", "dave", "erin", "frank")}
    now = timezone.now()
    made = []
    # Sessions created per hour, oldest first: a quiet night and a busy evening.
    per_hour = [1, 0, 0, 1, 0, 0, 1, 2, 2, 3, 2, 4, 3, 2, 3, 4, 5, 6, 8, 7, 9, 6, 4, 2]
    names = iter(["Neon Rush", "Sunday Jam", "Retro Cup", "Turbo League", "Cosmic Groove", "Lazy Practice"] * 20)
    hosts = list(players.values())
    for age, count in enumerate(reversed(per_hour)):
        for n in range(count):
            host = hosts[(age + n) % len(hosts)]
            session = session_create(
                actor=host, values={"name": f"{next(names)} {len(made) + 1}", "num_teams": 2, "idle_timeout": 0}
            )
            created = now - timedelta(hours=age, minutes=7 * n)
            GameSession.objects.filter(pk=session.pk).update(date_created=created)
            Membership.objects.filter(session=session).update(joined_at=created)
            made.append(session)
    for index, session in enumerate(made):
        if index % 5 == 1:
            session_update(session_id=session.pk, actor=session.host, values={"status": "in_progress"})
        elif index % 5 == 2:
            session_close(session_id=session.pk, actor=session.host, close_after=0)
        elif index % 9 == 3:
            session_close(session_id=session.pk, actor=session.host, close_after=600)
    finals = session_create(
        actor=players["alice"], values={"name": "Friday finals", "num_teams": 2, "team_size": 2, "idle_timeout": 0}
    )
    for name in ("bob", "carol"):
        session_join(session_id=finals.pk, actor=players[name])
    for name in ("dave", "erin"):
        session_join(session_id=made[0].pk, actor=players[name])
    return finals


def make_operator():
    operator = PlayerFactory(username="ops", is_staff=True)
    codenames = ["view_gamesession", "change_gamesession", "view_membership", "view_team", "view_player"]
    codenames += ["view_invite", "view_reservation"]
    operator.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return operator


def test_staff_filter_open_remove_a_player_and_close_a_session(live_server, browser, screenshot):
    finals = seed_a_busy_day()
    operator = make_operator()
    bob = finals.memberships.get(player__username="bob").player
    page = Page(browser, live_server.url)

    # Log in: admin opens with the dashboard.
    page.log_in("ops", PASSWORD)
    dashboard = page.find("#session-dashboard")
    assert "Sessions at a glance" in dashboard.text
    assert len(page.find_all("#sd-hourly .sd-bar")) == 24
    live = GameSession.objects.exclude(status="closed").count()
    assert (
        int(page.find("#sd-status-open .sd-number").text)
        + int(page.find("#sd-status-in_progress .sd-number").text)
        + int(page.find("#sd-status-closing .sd-number").text)
        == live
    )
    path = screenshot("dashboard")
    if not DOCS_SCREENSHOT.exists() or os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOT)

    # Filter sessions by status: only open ones are listed.
    page.open("/admin/sessions_app/gamesession/")
    page.click_link("open", within="#changelist-filter details[data-filter-title='status']")
    page.wait_for_url("status=open")
    page.find("#result_list")
    statuses = {cell.text for cell in page.find_all("#result_list td.field-status_now")}
    assert statuses == {"open"}
    screenshot("sessions")

    # Open "Friday finals": its members are on its page.
    row = page.find(f"#result_list input.action-select[value='{finals.pk}']").find_element(page.by.XPATH, "../..")
    row.find_element(page.by.CSS_SELECTOR, "th.field-title a").click()
    page.find("#memberships-group")
    members = [cell.text for cell in page.find_all("#memberships-group td.field-player")]
    assert members == ["alice", "bob", "carol"]
    screenshot("session")

    # Remove bob through the session's button and its form.
    page.click("#session-remove-player")
    page.choose("#id_player", "bob")
    screenshot("remove-player")
    page.click("#session-action-form input[name=apply]")
    page.wait_for_url(f"/{finals.pk}/change/")
    assert "Removed bob from 1 session." in page.messages()
    assert [cell.text for cell in page.find_all("#memberships-group td.field-player")] == ["alice", "carol"]

    # Close it with the change list's action.
    page.open("/admin/sessions_app/gamesession/?q=Friday+finals")
    page.click(f"#result_list input.action-select[value='{finals.pk}']")
    page.choose("select[name=action]", "Close now")
    page.click("#changelist-form button[name=index]")
    page.find("ul.messagelist")
    assert "Closed 1 session." in page.messages()
    assert page.find("#result_list td.field-status_now").text == "closed"

    # The database agrees, and the admin log has both changes by the operator.
    finals.refresh_from_db()
    assert finals.status == "closed"
    assert str(bob.uid) not in finals.users_doc
    assert not Membership.objects.filter(session=finals, player=bob).exists()
    assert finals.version == 4  # create 0, two joins, the kick, the close
    log = list(LogEntry.objects.filter(object_id=str(finals.pk)).order_by("action_time"))
    assert [e.get_change_message() for e in log] == [
        f"Removed player bob ({bob.uid}) (admin action).",
        "Closed now (admin action).",
    ]
    assert {e.user_id for e in log} == {operator.pk}


def test_a_player_without_staff_rights_is_refused_admin(live_server, browser):
    PlayerFactory(username="mallory")
    page = Page(browser, live_server.url)
    page.log_in("mallory", PASSWORD)
    error = page.find("#content .errornote")
    assert "staff account" in error.text
    assert "/admin/login/" in browser.current_url

    page.open("/admin/sessions_app/gamesession/")
    page.find("#login-form")
    assert "/admin/login/" in browser.current_url
