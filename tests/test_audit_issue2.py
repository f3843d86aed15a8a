"""Audit of issue 2 against the code: the behaviours the other test files left unshown.

Error precedence (401, 404, 403, 400, 412, 409, 429) on updates, deletes, joins and kicks; a
404 for a hidden session that reads exactly as one for a missing session; which joins the
password throttle counts and refuses (and that it holds under a burst of concurrent guesses);
that reads, tokens and registration are never throttled; and the CI rule that nothing skips.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from sessions_app.models import GameSession, JoinPasswordFailure, Membership
from sessions_app.services.membership import session_join, session_leave
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

STALE = '"stale-etag"'


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def version_of(session) -> int:
    return GameSession.objects.values_list("version", flat=True).get(pk=session.pk)


def failures(session, player) -> int:
    return JoinPasswordFailure.objects.filter(session=session, player=player).count()


# --- update: 403, then 400, then 412, then 409 -----------------------------------------------


@pytest.fixture
def shared(host, member, make_session):
    """A session of host and member, moved to version 1 so that version 0 is stale."""
    session = make_session(host)
    session_join(session_id=session.pk, actor=member)
    assert version_of(session) == 1
    return session


@pytest.mark.parametrize("precondition", ["if_match", "version"])
@pytest.mark.parametrize("target", ["non_member", "unknown"])
def test_handing_the_host_to_a_non_member_is_400_before_412_and_409(api, host, outsider, shared, precondition, target):
    # Given a stale If-Match or a stale version, and a hostUid the host may not hand over to
    new_host = str(outsider.uid) if target == "non_member" else str(uuid.uuid4())
    body = {"hostUid": new_host}
    headers = {}
    if precondition == "if_match":
        headers["HTTP_IF_MATCH"] = STALE
    else:
        body["version"] = 0

    # When the host asks for it
    response = api.as_(host).patch(url(shared), body, format="json", **headers)

    # Then the malformed request is judged before its preconditions
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == "hostUid"
    stored = GameSession.objects.get(pk=shared.pk)
    assert (stored.host_id, stored.version) == (host.pk, 1)


@pytest.mark.parametrize("precondition", ["if_match", "version", "invalid_member"])
def test_the_host_dropping_the_host_is_403_before_400_412_and_409(api, host, shared, precondition):
    body = {"hostUid": None}
    headers = {}
    if precondition == "if_match":
        headers["HTTP_IF_MATCH"] = STALE
    elif precondition == "version":
        body["version"] = 0
    else:
        body["numTeams"] = -1

    response = api.as_(host).patch(url(shared), body, format="json", **headers)

    assert (response.status_code, response.json()["code"]) == (403, "host_forbidden")
    assert GameSession.objects.get(pk=shared.pk).host_id == host.pk


def test_the_current_host_who_is_no_longer_a_member_may_be_named_again(api, host, make_session):
    # A hosted session whose last member left is closed and keeps its host, who is no longer
    # a member: a PUT of the current values (hostUid included) changes nothing and is 200.
    session = make_session(host)
    session_leave(session_id=session.pk, actor=host)
    current = api.as_(host).get(url(session)).json()

    response = api.put(url(session), {"version": current["version"], "hostUid": str(host.uid)}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["version"] == current["version"]


def test_session_star_may_hand_the_host_to_a_non_member(api, host, outsider, game_server, shared):
    response = api.as_(game_server).patch(url(shared), {"hostUid": str(outsider.uid)}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["hostUid"] == str(outsider.uid)
    assert GameSession.objects.get(pk=shared.pk).host_id == outsider.pk


@pytest.mark.parametrize("precondition", ["if_match", "version"])
def test_a_non_host_is_403_before_412_and_409(api, member, shared, precondition):
    body = {"data": {"x": 1}}
    headers = {"HTTP_IF_MATCH": STALE} if precondition == "if_match" else {}
    if precondition == "version":
        body["version"] = 0

    response = api.as_(member).patch(url(shared), body, format="json", **headers)

    assert (response.status_code, response.json()["code"]) == (403, "not_host")


@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_invalid_value_is_400_before_a_stale_if_match(api, host, shared, method):
    response = getattr(api.as_(host), method)(
        url(shared), {"version": 1, "numTeams": -1}, format="json", HTTP_IF_MATCH=STALE
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "numTeams"


def test_put_without_version_is_400_before_a_stale_if_match(api, host, shared):
    response = api.as_(host).put(url(shared), {"data": {"x": 1}}, format="json", HTTP_IF_MATCH=STALE)

    assert (response.status_code, response.json()["code"]) == (400, "version_required")


def test_users_naming_only_the_current_members_is_nothing_to_update(api, host, member, shared):
    # `users` naming the current members is ignored: a body with nothing else updates nothing.
    response = api.as_(host).patch(url(shared), {"users": [str(member.uid), str(host.uid)]}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "nothing_to_update")
    assert version_of(shared) == 1


# --- 404 reveals nothing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("put", "", {"version": 0, "data": {}}),
        ("patch", "", {"data": {}}),
        ("delete", "", None),
        ("get", "/join", None),
        ("post", "/join", {"password": "x"}),
        ("post", "/leave", None),
        ("post", "/kick", {"player": str(uuid.uuid4())}),
        ("post", "/invites", {"player": str(uuid.uuid4())}),
        ("post", "/reservations", {"player": str(uuid.uuid4())}),
        ("post", "/teams/0/join", None),
    ],
)
def test_a_hidden_session_answers_exactly_as_a_missing_one(api, host, outsider, make_session, method, suffix, body):
    hidden = make_session(host, visibility="private", num_teams=1)
    missing = uuid.uuid4()
    api.as_(outsider)

    seen = getattr(api, method)(f"/api/v1/sessions/{hidden.uid}{suffix}", body, format="json")
    absent = getattr(api, method)(f"/api/v1/sessions/{missing}{suffix}", body, format="json")

    assert seen.status_code == absent.status_code == 404
    assert seen.json() == absent.json()
    assert seen["Content-Type"] == absent["Content-Type"] == "application/problem+json"
    assert version_of(hidden) == 0


def test_a_hidden_session_is_404_before_a_malformed_body(api, host, outsider, make_session):
    hidden = make_session(host, visibility="private")

    responses = [
        api.as_(outsider).post(f"{url(hidden)}/join", ["not", "an", "object"], format="json"),
        api.patch(url(hidden), {"numTeams": -1}, format="json"),
        api.delete(f"{url(hidden)}?closeAfter=soon"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]


def test_without_credentials_a_missing_session_is_401_not_404(api):
    assert api.get(f"/api/v1/sessions/{uuid.uuid4()}").status_code == 401
    assert api.post(f"/api/v1/sessions/{uuid.uuid4()}/join", {"team": "x"}, format="json").status_code == 401


# --- delete and kick: 403 before 400 ---------------------------------------------------------


def test_a_member_deleting_with_a_malformed_close_after_is_403(api, member, shared):
    response = api.as_(member).delete(f"{url(shared)}?closeAfter=soon")

    assert (response.status_code, response.json()["code"]) == (403, "not_host")
    assert GameSession.objects.get(pk=shared.pk).status == "open"


def test_a_member_kicking_with_a_malformed_body_is_403(api, member, shared):
    response = api.as_(member).post(f"{url(shared)}/kick", {"player": "nope"}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "not_host")


# --- join: password before capacity; the throttle and what it counts ------------------------


@pytest.fixture
def locked_full(host, make_session):
    """A password session of one place, which the host holds."""
    return make_session(host, password="open sesame", num_teams=1, team_size=1)


def test_a_wrong_password_on_a_full_session_is_403_not_409(api, member, locked_full):
    response = api.as_(member).post(f"{url(locked_full)}/join", {"password": "guess"}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "wrong_password")
    assert failures(locked_full, member) == 1


def test_the_right_password_on_a_full_session_is_409(api, member, locked_full):
    response = api.as_(member).post(f"{url(locked_full)}/join", {"password": "open sesame"}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "session_full")
    assert failures(locked_full, member) == 0


def test_while_throttled_a_full_session_answers_429_whatever_the_password(api, member, locked_full, clock):
    # 429 comes last in the order, but a throttled join must not learn whether its password
    # was right: a right one on a full session would otherwise answer 409 and a wrong one 429.
    api.as_(member)
    for _ in range(5):
        assert api.post(f"{url(locked_full)}/join", {"password": "guess"}, format="json").status_code == 403

    right = api.post(f"{url(locked_full)}/join", {"password": "open sesame"}, format="json")
    wrong = api.post(f"{url(locked_full)}/join", {"password": "guess"}, format="json")

    assert (right.status_code, wrong.status_code) == (429, 429)
    assert right.json()["code"] == wrong.json()["code"] == "join_throttled"
    assert right["Retry-After"] == wrong["Retry-After"]
    assert right.json()["detail"] == wrong.json()["detail"]


def test_a_join_that_needs_no_password_records_no_failure(api, host, member, make_session):
    open_session = make_session(host)
    locked = make_session(host, password="open sesame")
    session_join(session_id=locked.pk, actor=member, password="open sesame")

    # A member re-joining with a wrong password, and anyone joining a session without one.
    rejoin = api.as_(member).post(f"{url(locked)}/join", {"password": "guess"}, format="json")
    joined = api.post(f"{url(open_session)}/join", {"password": "guess"}, format="json")

    assert (rejoin.status_code, joined.status_code) == (200, 200)
    assert not JoinPasswordFailure.objects.exists()
    assert Membership.objects.filter(player=member).count() == 2


# --- reads are never throttled; sign-ins and registrations only past their limits ---------


def test_reads_are_never_throttled_and_sign_ins_and_registrations_only_past_their_limits(api, host, make_session):
    session = make_session(host)

    reads = [api.as_(host).get(url(session)).status_code for _ in range(40)]
    lists = [api.get("/api/v1/sessions").status_code for _ in range(40)]
    api.force_authenticate(user=None)
    wrong_tokens = [
        api.post("/api/v1/auth/token", {"username": "host", "password": "nope"}, format="json").status_code
        for _ in range(9)  # LOGIN_FAILURE_RATE allows 10 a minute (tests/test_login_throttle.py)
    ]
    token = api.post("/api/v1/auth/token", {"username": "host", "password": "pass-word-123"}, format="json")
    registrations = [
        api.post(
            "/api/v1/players", {"username": f"newcomer{i}", "password": "a-long-pass-phrase-9"}, format="json"
        ).status_code
        for i in range(15)
    ]

    assert set(reads) == set(lists) == {200}
    assert set(wrong_tokens) == {401}
    assert token.status_code == 200
    assert set(registrations) == {201}


# --- concurrency: a burst of guesses is throttled like a sequence ----------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_concurrent_guesses_gets_no_more_than_five_answers(host):
    """Twelve wrong passwords sent at once by one player on its own connections: five are
    answered 403 and recorded, the rest are throttled, as if they had come one by one."""
    session = session_create(actor=host, values={"password": "open sesame"})
    guesser = PlayerFactory()
    barrier = threading.Barrier(12)
    statuses: list[int] = [0] * 12

    def guess(index: int) -> None:
        client = APIClient()
        client.force_authenticate(guesser)
        try:
            barrier.wait(timeout=30)
            statuses[index] = client.post(
                f"{url(session)}/join", {"password": f"guess-{index}"}, format="json"
            ).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(t.is_alive() for t in threads), "a join hung"
    assert Counter(statuses) == {403: 5, 429: 7}
    assert failures(session, guesser) == 5
    assert not Membership.objects.filter(player=guesser).exists()


# --- CI: nothing may skip on the PostgreSQL pass ---------------------------------------------


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
