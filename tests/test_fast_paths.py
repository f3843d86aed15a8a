"""The hot paths' own machinery answers exactly what Django's stock parts would: the orjson
renderer writes DRF's bytes, the orjson JSON column reads what the standard library reads,
a prepared read returns the queryset's rows (and is counted like any query), a cached token
verification still refuses an expired or foreign token, and on PostgreSQL the C timestamp
loader gives the values Django's own loader gives."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.db.models import JSONField as StockJSONField
from django.db.transaction import TransactionManagementError
from rest_framework.renderers import JSONRenderer
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import AccessToken

from players_app.authentication import StatelessJWTAuthentication, player_claims
from sessions_app.api.serializers import SESSION_ROW_BY_UID, document_values
from sessions_app.event_models import EventType, SessionEvent
from sessions_app.models import GameSession
from sessions_app.services import documents, events
from sessions_app.services.documents import LOCKED_HOST_UID
from sessions_project.errors import NotFound
from sessions_project.jsonfield import JSONField
from sessions_project.prepared import (
    Parameter,
    PreparedInstances,
    PreparedRows,
    insert_rows,
    update_and_insert,
    update_fields,
)
from sessions_project.renderers import OrjsonRenderer

from .conftest import as_token
from .factories import PlayerFactory

RENDERED_VALUES = [
    {"a": 1, "b": [1.5, None, True, False], "c": {"d": "é ü 漢字 🎮"}},
    {"when": datetime(2026, 11, 30, 12, 1, 2, 345678, tzinfo=UTC), "day": date(2026, 11, 30)},
    {"money": Decimal("12.50"), "uid": uuid.UUID(int=7), "span": timedelta(seconds=90)},
    {"separators": "a\u2028b\u2029c", "control": "tab\tnew\nline \x00 \x1f"},
    {"huge": 2**70, "negative": -(2**63) - 1},  # beyond 64 bits: DRF's encoder writes them
    {1: "a non-string key"},
    [],
    "plain",
    12,
    None,
]


@pytest.mark.parametrize("value", RENDERED_VALUES, ids=range(len(RENDERED_VALUES)))
def test_orjson_renderer_writes_the_bytes_drf_writes(value):
    assert OrjsonRenderer().render(value) == JSONRenderer().render(value)


def test_orjson_renderer_pretty_prints_as_drf_does_when_asked():
    value = {"a": [1, 2], "b": "c"}
    media_type = "application/json; indent=2"

    assert OrjsonRenderer().render(value, media_type) == JSONRenderer().render(value, media_type)


@pytest.mark.parametrize(
    "text",
    [
        '{"map": "dust", "n": 3, "f": 1.25, "x": null, "l": [true, false]}',
        '"a string"',
        "[]",
        '{"huge": 123456789012345678901234567890}',  # beyond 64 bits: orjson refuses
        '{"nan": NaN, "inf": Infinity}',  # not JSON; the standard library reads it
        '{"escaped": "\\u00e9\\ud83c\\udfae"}',
        "not json at all",  # a stock JSONField hands such text back as it is
    ],
)
def test_json_column_reads_what_the_standard_library_reads(text):
    ours = JSONField().from_db_value(text, None, connection)
    stock = StockJSONField().from_db_value(text, None, connection)

    assert json.dumps(ours, sort_keys=True) == json.dumps(stock, sort_keys=True)
    assert type(ours) is type(stock)


def test_json_column_is_recorded_in_migrations_as_djangos_own():
    name, path, args, kwargs = JSONField(default=dict).deconstruct()

    assert path == "django.db.models.JSONField"
    assert kwargs == {"default": dict}


@pytest.mark.django_db
def test_prepared_read_returns_the_querysets_rows(make_session, host, member, django_assert_num_queries):
    made = make_session(host, data={"map": "dust"}, numTeams=2, teamSize=2)
    expected = document_values(GameSession.objects.filter(uid=made.uid)).get()

    with django_assert_num_queries(1):  # the session row with its host's uid
        row = SESSION_ROW_BY_UID.first(made.uid)

    # data and teams_doc come as their stored JSON text (orjson fragments), the same values.
    for column in ("data", "teams_doc"):
        assert isinstance(row[column], orjson.Fragment)
        assert orjson.loads(orjson.dumps(row.pop(column))) == expected.pop(column)
    assert row == expected
    assert SESSION_ROW_BY_UID.first(uuid.uuid4()) is None


@pytest.mark.django_db
def test_list_and_get_answer_the_same_documents_as_the_orm_path(make_session, host, member, api):
    made = make_session(host, data={"map": "dust", "n": [1, 2.5, None], "é": "ü"}, num_teams=2, team_size=2)
    api.as_(member)

    listed = api.get("/api/v1/sessions").json()
    filtered = api.get(f"/api/v1/sessions?workspaceId={made.workspace_id}").json()  # the ORM path
    one = api.get(f"/api/v1/sessions/{made.uid}").json()

    assert listed == filtered == [one]
    assert one["data"] == {"map": "dust", "n": [1, 2.5, None], "é": "ü"}
    assert [team["index"] for team in one["teams"]] == [0, 1]


@pytest.mark.django_db
def test_prepared_read_takes_each_argument_wherever_the_query_uses_it(make_session, host, member, outsider):
    make_session(host, name="by host")
    make_session(member, name="by member")
    both = PreparedRows(
        lambda a, b: (
            GameSession.objects.filter(Q(host_id=a) | Q(host_id=b))
            .exclude(host_id=a, name="x")
            .order_by("name")
            .values("name")
        ),
        Parameter(lambda value, connection: value, (-101, -102)),
        Parameter(lambda value, connection: value, (-201, -202)),
    )

    assert [row["name"] for row in both.rows(host.pk, member.pk)] == ["by host", "by member"]
    assert [row["name"] for row in both.rows(outsider.pk, member.pk)] == ["by member"]


@pytest.mark.django_db
def test_prepared_read_refuses_a_query_that_writes_its_argument_into_the_sql():
    inlined = PreparedRows(
        lambda limit: GameSession.objects.order_by("id").values("id")[:limit],
        Parameter(lambda value, connection: value, (3, 4)),
    )

    with pytest.raises(ValueError, match="SQL text"):
        inlined.rows(5)


@pytest.mark.django_db
def test_prepared_locked_read_builds_the_instance_the_queryset_builds(make_session, host, member):
    made = make_session(host, data={"map": "dust"}, num_teams=2, team_size=2)
    with transaction.atomic():
        expected = (
            GameSession.objects.select_for_update(of=("self",))
            .annotate(**{LOCKED_HOST_UID: F("host__uid")})
            .get(pk=made.pk)
        )
        by_id = documents.lock_session(made.pk)
        by_uid = documents.lock_session(uid=made.uid)

    for locked in (by_id, by_uid):
        assert type(locked) is GameSession
        assert locked.pk == made.pk
        assert {f.attname: getattr(locked, f.attname) for f in GameSession._meta.concrete_fields} == {
            f.attname: getattr(expected, f.attname) for f in GameSession._meta.concrete_fields
        }
        assert documents.locked_host_uid(locked) == host.uid
        assert not locked._state.adding
        assert locked._state.db == "default"


@pytest.mark.django_db
def test_prepared_locked_read_answers_404_for_a_session_that_is_not_there():
    with transaction.atomic(), pytest.raises(NotFound):
        documents.lock_session(uid=uuid.uuid4())


@pytest.mark.django_db(transaction=True)
def test_prepared_locked_read_is_refused_outside_a_transaction_as_djangos_is(make_session, host):
    made = make_session(host)
    with transaction.atomic():
        documents.lock_session(made.pk)  # compiled here, inside a transaction

    with pytest.raises(TransactionManagementError):
        documents.lock_session(made.pk)


def test_prepared_instances_refuse_a_query_that_follows_a_relation():
    related = PreparedInstances(
        lambda pk: GameSession.objects.select_related("host").filter(pk=pk),
        Parameter(lambda value, connection: value, (-101, -102)),
    )

    with pytest.raises(ValueError, match="plain model query"):
        related.instances(1)


@pytest.mark.django_db
def test_prepared_update_writes_only_the_named_fields(make_session, host, member):
    made = make_session(host, name="before", data={"map": "dust"})
    stale = GameSession.objects.get(pk=made.pk)
    GameSession.objects.filter(pk=made.pk).update(desc="changed elsewhere")
    stale.name, stale.host_id, stale.desc = "after", member.pk, "not written"

    update_fields(stale, ["name", "host", "host_id"])  # host and host_id: one column, set once

    fresh = GameSession.objects.get(pk=made.pk)
    assert (fresh.name, fresh.host_id, fresh.desc) == ("after", member.pk, "changed elsewhere")
    assert fresh.data == {"map": "dust"}


@pytest.mark.django_db
def test_prepared_update_of_a_row_that_is_gone_fails_as_save_does(make_session, host):
    made = make_session(host)
    GameSession.objects.filter(pk=made.pk).delete()

    with pytest.raises(DatabaseError, match="did not affect any rows"):
        update_fields(made, ["name"])


@pytest.mark.django_db
def test_prepared_insert_stores_what_bulk_create_stores_and_sets_the_ids_in_order(make_session, host):
    made = make_session(host)
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

    def batch() -> list[SessionEvent]:
        return [
            events.build(
                EventType.MEMBER_JOINED,
                session_uid=made.uid,
                private=False,
                actor=host,
                at=at,
                version=n,
                player_uid=host.uid,
                data={"team": n, "é": [1.5, None]},
            )
            for n in range(3)
        ]

    ours, theirs = batch(), batch()
    insert_rows(ours)
    SessionEvent.objects.bulk_create(theirs)

    assert [event.pk for event in ours] == sorted(event.pk for event in ours)
    assert all(not event._state.adding for event in ours)
    fields = [f.attname for f in SessionEvent._meta.concrete_fields if f.attname != "id"]
    stored = {row.pk: row for row in SessionEvent.objects.all()}
    for mine, other in zip(ours, theirs, strict=True):
        assert [getattr(stored[mine.pk], f) for f in fields] == [getattr(stored[other.pk], f) for f in fields]
        assert stored[mine.pk].version == mine.version


def _joined_events(session, player, count: int) -> list[SessionEvent]:
    return [
        events.build(
            EventType.MEMBER_JOINED, session_uid=session.uid, private=False, actor=player, player_uid=player.uid
        )
        for _ in range(count)
    ]


@pytest.mark.django_db
def test_a_rows_update_and_its_events_are_one_statement_on_postgresql(make_session, host, django_assert_num_queries):
    made = make_session(host)
    made.name = "renamed"
    logged = _joined_events(made, host, 2)

    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):  # UPDATE (+) INSERT
        update_and_insert(made, ["name"], logged)

    assert GameSession.objects.get(pk=made.pk).name == "renamed"
    joined = SessionEvent.objects.filter(type=EventType.MEMBER_JOINED)
    assert sorted(joined.values_list("pk", flat=True)) == [event.pk for event in logged]


@pytest.mark.django_db
def test_a_rows_update_with_events_fails_for_a_row_that_is_gone_and_keeps_no_event(make_session, host):
    made = make_session(host)
    GameSession.objects.filter(pk=made.pk).delete()

    with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():
        update_and_insert(made, ["name"], _joined_events(made, host, 1))

    assert not SessionEvent.objects.filter(type=EventType.MEMBER_JOINED).exists()


def _raw(token: AccessToken) -> bytes:
    return str(token).encode()


@pytest.mark.django_db
def test_a_verified_token_is_refused_once_it_expires():
    player = PlayerFactory(username="token-holder")
    token = AccessToken.for_user(player)
    for claim, value in player_claims(player).items():
        token[claim] = value
    token.set_exp(lifetime=timedelta(seconds=1))
    auth = StatelessJWTAuthentication()
    assert auth.get_validated_token(_raw(token))["uid"] == str(player.uid)  # verified, and kept

    time.sleep(1.1)  # the token's own clock: its exp claim is in whole seconds

    with pytest.raises(InvalidToken):
        auth.get_validated_token(_raw(token))


@pytest.mark.django_db
def test_a_tampered_token_is_refused_after_the_genuine_one_verified():
    player = PlayerFactory(username="token-holder")
    token = AccessToken.for_user(player)
    for claim, value in player_claims(player).items():
        token[claim] = value
    auth = StatelessJWTAuthentication()
    genuine = _raw(token)
    assert auth.get_validated_token(genuine)
    header, payload, signature = genuine.split(b".")
    forged = b".".join([header, payload, signature[:-4] + (b"AAAA" if signature[-4:] != b"AAAA" else b"BBBB")])

    with pytest.raises(InvalidToken):
        auth.get_validated_token(forged)


@pytest.mark.postgres
@pytest.mark.django_db
def test_timestamps_from_postgresql_are_utc_datetimes_read_by_the_c_loader(make_session, host):
    made = make_session(host)
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(1184, 0)  # timestamptz, text format

    read = GameSession.objects.values_list("date_created", flat=True).get(pk=made.pk)

    assert loader.__name__ == "UTCTimestamptzLoader"
    assert read == made.date_created
    assert read.tzinfo is UTC


@pytest.mark.django_db
def test_count_without_filters_counts_what_the_filtered_path_counts_for_every_caller(
    make_session, host, member, outsider, game_server, api, django_assert_num_queries
):
    from sessions_app.services.invites import invite_create

    make_session(host)
    private = make_session(host, visibility="private")
    make_session(member, visibility="private")
    invite_create(session_id=private.pk, actor=host, player_uid=str(outsider.uid))

    for player in (host, member, outsider, game_server):
        api.force_authenticate(user=as_token(player))  # as production: scopes from the token
        with django_assert_num_queries(1):  # the public and private counts, one UNION ALL
            prepared = api.get("/api/v1/sessions/count").json()["count"]
        through_filters = api.get("/api/v1/sessions/count?workspaceId=").json()["count"]  # the ORM path
        listed = len(api.get("/api/v1/sessions?limit=1000").json())
        assert prepared == through_filters == listed, player.username
