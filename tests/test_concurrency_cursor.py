"""Cursor paging on PostgreSQL while another connection creates and deletes sessions: a
client walking every page sees each session that existed throughout exactly once."""

from __future__ import annotations

import json
import threading
from urllib.parse import quote

import pytest
from django.db import connection
from rest_framework.test import APIClient

from sessions_app.models import GameSession
from sessions_app.services.sessions import session_create

from .factories import PlayerFactory
from .test_session_cursor import next_link

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("spec", [None, {"dateCreated": "ASC"}, {"status": "ASC"}, {"freePlaces": "DESC"}])
def test_walking_all_pages_while_sessions_come_and_go_sees_each_lasting_one_once(settings, spec):
    settings.QUOTA_LIVE_SESSIONS_PER_HOST = 0
    hosts = PlayerFactory.create_batch(3)
    lasting = {
        str(session_create(actor=hosts[i % 3], values={"num_teams": i % 3, "team_size": 2}).uid) for i in range(60)
    }
    doomed = [session_create(actor=hosts[0], values={}).pk for _ in range(40)]
    reader = PlayerFactory()
    walked = threading.Event()
    churning = threading.Event()  # the walk starts once sessions are coming and going
    failures: list[BaseException] = []

    def churn() -> None:
        try:
            while not walked.is_set():
                session_create(actor=hosts[1], values={"num_teams": 1, "team_size": 4})
                if doomed:
                    GameSession.objects.filter(pk=doomed.pop()).delete()
                churning.set()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)
        finally:
            churning.set()
            connection.close()

    seen: list[str] = []

    def walk() -> None:
        client = APIClient()
        client.force_authenticate(reader)
        sort = f"&sort={quote(json.dumps(spec))}" if spec else ""
        url: str | None = f"/api/v1/sessions?limit=7{sort}"
        try:
            churning.wait(timeout=30)
            while url is not None:
                response = client.get(url)
                assert response.status_code == 200, response.content
                seen.extend(s["uid"] for s in response.json())
                url = next_link(response)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)
        finally:
            walked.set()
            connection.close()

    threads = [threading.Thread(target=churn), threading.Thread(target=walk)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert len(doomed) < 40, "nothing was deleted during the walk"
    assert len(seen) == len(set(seen)), "a session was seen twice"
    assert lasting <= set(seen), "a session that existed throughout was skipped"
