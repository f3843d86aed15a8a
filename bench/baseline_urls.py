"""Baseline views: the cheapest way Django allows on the project's own tables, to measure the
API against (same gunicorn, database and rows). No authentication, no serializer, no
middleware: one query (or one transaction) and a JSON encoding of the row.

    B_get     GET  /b/get/<uid>               one session row by uid
    B_list    GET  /b/list?limit=N[&skip=M]   a page by dateCreated (B_skip: at an OFFSET)
    B_count   GET  /b/count                   count() of the table
    B_write   POST /b/write/<uid>             lock one session row, bump version and date_modified
    B_insert  POST /b/insert?player=<id>      one session row and one membership
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone

from sessions_app.models import GameSession, Membership

try:
    import orjson

    def dumps(value) -> bytes:
        return orjson.dumps(value)

except ImportError:  # the standard library, as the project uses
    import json

    def dumps(value) -> bytes:
        return json.dumps(value, default=str).encode()


COLUMNS = (
    "uid",
    "date_created",
    "date_modified",
    "version",
    "data",
    "host_id",
    "server_uid",
    "status",
    "visibility",
    "num_teams",
    "team_size",
    "type",
    "name",
    "desc",
    "highlight",
    "workspace_id",
    "idle_timeout",
    "closes_at",
    "users_doc",
    "teams_doc",
    "invites_doc",
)


def json_response(value, status: int = 200) -> HttpResponse:
    return HttpResponse(dumps(value), status=status, content_type="application/json")


def b_get(request, uid):
    row = GameSession.objects.filter(uid=uid).values(*COLUMNS).first()
    return json_response(row) if row else json_response({"detail": "not found"}, 404)


def b_list(request):
    limit = int(request.GET.get("limit", 20))
    skip = int(request.GET.get("skip", 0))
    rows = GameSession.objects.order_by("-date_created").values(*COLUMNS)[skip : skip + limit]
    return json_response(list(rows))


def b_count(request):
    return json_response({"count": GameSession.objects.count()})


def b_write(request, uid):
    with transaction.atomic():
        row = GameSession.objects.select_for_update().filter(uid=uid).values("id", *COLUMNS).first()
        if row is None:
            return json_response({"detail": "not found"}, 404)
        row["version"] += 1
        row["date_modified"] = now = timezone.now()
        GameSession.objects.filter(id=row.pop("id")).update(version=F("version") + 1, date_modified=now)
    return json_response(row)


def b_insert(request):
    player_id = int(request.GET["player"])
    with transaction.atomic():
        session = GameSession.objects.create(host_id=player_id, creator_id=player_id, data={"map": "dust"})
        Membership.objects.create(session=session, player_id=player_id)
    return json_response({"uid": session.uid, "version": session.version}, 201)


urlpatterns = [
    path("b/get/<uuid:uid>", b_get),
    path("b/list", b_list),
    path("b/count", b_count),
    path("b/write/<uuid:uid>", b_write),
    path("b/insert", b_insert),
]
