"""The catalog (songs and charts), a session's scores (seed 002's GET), and score imports.

Thin views as in `views.py`: find what the caller may see (404), check who may act (403),
validate the body (400) and call one service (`sessions_app.services.scores`). Catalog writes are plain
saves of one row: no service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Model
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from players_app.authentication import caller
from sessions_app import permissions
from sessions_app.filters import ChartFilterSet, SongFilterSet
from sessions_app.models import Chart, GameSession, Score, Song, row_visible_to
from sessions_app.places import open_places
from sessions_app.services import scores
from sessions_app.services.scores import MAX_ID
from sessions_project.errors import NotFound
from sessions_project.pagination import PAGING_PARAMETERS, LimitSkipPagination, page_of
from sessions_project.query import DeclaredQueryParametersMixin
from sessions_project.schema import error_responses

from .score_serializers import (
    CHART_COLUMNS,
    SCORE_COLUMNS,
    SONG_COLUMNS,
    ChartSerializer,
    ScoreImportResultSerializer,
    ScoreImportSerializer,
    ScoreSerializer,
    ScoreSubmitSerializer,
    SessionScoresSerializer,
    SongSerializer,
    chart_document,
    import_result_document,
    score_document,
    song_document,
)
from .serializers import DOCUMENT_COLUMNS, session_document, viewer_of
from .views import UID_PARAMETER, parse_uid, request_object, visible_session

# Named as the path template names it ({id}): a "pk" beside it is a parameter the path
# does not have, which fails validation and makes client generators drop the operation.
ID_PARAMETER = OpenApiParameter(
    "id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH, description="The id (404 past the last)."
)


_M = TypeVar("_M", bound=Model)


# --- catalog --------------------------------------------------------------------------------


class CatalogViewSet(DeclaredQueryParametersMixin, viewsets.GenericViewSet[_M]):
    """List, create, read and update one kind of catalog row; subclasses name the kind and
    document its routes (`extend_schema_view`: the actions carry no docstring, so a route
    without its own description shows the subclass's)."""

    permission_classes = [IsAuthenticated, permissions.IsOperatorOrReadOnly]
    pagination_class = LimitSkipPagination
    columns: tuple[str, ...] = ()
    document: Callable[[dict[str, Any]], dict[str, Any]]
    ordering: tuple[str, ...] = ("id",)
    not_found_code = "not_found"

    def _not_found(self, pk: int) -> NotFound:
        return NotFound(f"No {self.get_queryset().model._meta.verbose_name} with id {pk}.", code=self.not_found_code)

    def _row(self, pk: int) -> dict[str, Any]:
        row = self.get_queryset().filter(pk=pk).values(*self.columns).first()
        if row is None:
            raise self._not_found(pk)
        return row

    def _instance(self, request: Request, pk: int) -> _M:
        instance = self.get_queryset().filter(pk=pk).first()
        if instance is None:
            raise self._not_found(pk)
        self.check_object_permissions(request, instance)  # 404 before 403
        return instance

    def list(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset()).order_by(*self.ordering)
        page = page_of(queryset.values(*self.columns), request)
        return Response([type(self).document(row) for row in page])

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request_object(request))
        serializer.is_valid(raise_exception=True)
        instance = serializer.save()
        return Response(type(self).document(self._row(instance.pk)), status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(type(self).document(self._row(pk)))

    def update(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=False)

    def partial_update(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: int, *, partial: bool) -> Response:
        instance = self._instance(request, pk)
        serializer = self.get_serializer(instance, data=request_object(request), partial=partial)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(type(self).document(self._row(instance.pk)))


@extend_schema_view(
    list=extend_schema(
        operation_id="songs_list",
        description="Songs by title, then artist; `search` matches part of the title or of the artist.",
        responses={200: SongSerializer(many=True), **error_responses(400)},
    ),
    create=extend_schema(
        operation_id="songs_create",
        description="Add a song (session:* only): title and artist required.",
        request=SongSerializer,
        responses={201: SongSerializer, **error_responses(400, 403)},
        examples=[
            OpenApiExample("Create", value={"title": "Max 300", "artist": "Omega", "bpm": 300}, request_only=True)
        ],
    ),
    retrieve=extend_schema(
        operation_id="songs_retrieve",
        parameters=[ID_PARAMETER],
        responses={200: SongSerializer, **error_responses(404)},
    ),
    update=extend_schema(
        operation_id="songs_update",
        description="Replace a song (session:* only): title and artist required; members left out keep their values.",
        parameters=[ID_PARAMETER],
        request=SongSerializer,
        responses={200: SongSerializer, **error_responses(400, 403, 404)},
    ),
    partial_update=extend_schema(
        operation_id="songs_partial_update",
        description="Change some members of a song (session:* only).",
        parameters=[ID_PARAMETER],
        request=SongSerializer,
        responses={200: SongSerializer, **error_responses(400, 403, 404)},
    ),
)
class SongViewSet(CatalogViewSet[Song]):
    """Songs: every player lists and reads them; session:* accounts add and change them."""

    queryset = Song.objects.all()
    serializer_class = SongSerializer
    filterset_class = SongFilterSet
    columns = SONG_COLUMNS
    document = staticmethod(song_document)
    ordering = ("title", "artist", "id")
    not_found_code = "song_not_found"
    query_parameters = {"list": frozenset(SongFilterSet.base_filters) | PAGING_PARAMETERS}


@extend_schema_view(
    list=extend_schema(
        operation_id="charts_list",
        description="Charts by song, then difficulty; filter by `song` (its id) and `difficulty` (any case).",
        parameters=[
            OpenApiParameter("song", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description="The song's id.")
        ],
        responses={200: ChartSerializer(many=True), **error_responses(400)},
    ),
    create=extend_schema(
        operation_id="charts_create",
        description="Add a chart (session:* only): song (its id) and difficulty required.",
        request=ChartSerializer,
        responses={201: ChartSerializer, **error_responses(400, 403)},
        examples=[OpenApiExample("Create", value={"song": 1, "difficulty": "HARD", "level": 12.5}, request_only=True)],
    ),
    retrieve=extend_schema(
        operation_id="charts_retrieve",
        parameters=[ID_PARAMETER],
        responses={200: ChartSerializer, **error_responses(404)},
    ),
    update=extend_schema(
        operation_id="charts_update",
        description="Replace a chart (session:* only): song and difficulty required.",
        parameters=[ID_PARAMETER],
        request=ChartSerializer,
        responses={200: ChartSerializer, **error_responses(400, 403, 404)},
    ),
    partial_update=extend_schema(
        operation_id="charts_partial_update",
        description="Change some members of a chart (session:* only).",
        parameters=[ID_PARAMETER],
        request=ChartSerializer,
        responses={200: ChartSerializer, **error_responses(400, 403, 404)},
    ),
)
class ChartViewSet(CatalogViewSet[Chart]):
    """Charts: every player lists and reads them; session:* accounts add and change them."""

    queryset = Chart.objects.all()
    serializer_class = ChartSerializer
    filterset_class = ChartFilterSet
    columns = CHART_COLUMNS
    document = staticmethod(chart_document)
    ordering = ("song_id", "difficulty", "id")
    not_found_code = "chart_not_found"
    query_parameters = {"list": frozenset(ChartFilterSet.base_filters) | PAGING_PARAMETERS}


# --- scores ---------------------------------------------------------------------------------

SCORE_EXAMPLE = OpenApiExample("Submit", value={"chart": 12, "value": 987654, "grade": "AAA"}, request_only=True)
IMPORT_EXAMPLE = OpenApiExample(
    "Import",
    value={
        "scores": [
            {"clientId": "run-1", "chart": 12, "value": 987654, "timeAchieved": "2026-11-22T18:49:22.123Z"},
            {"clientId": "run-2", "chart": 13, "value": 912.5, "timeAchieved": "2026-11-22T19:02:10Z", "lamp": "FC"},
        ]
    },
    request_only=True,
)
IMPORT_RESULT_EXAMPLE = OpenApiExample(
    "Imported",
    value={
        "sessions": [
            {
                "session": "0b6a1d1e-8f7c-4a1e-9a55-3f1f1c2d9e10",
                "type": "appended",
                "merged": ["6f2c9c1a-5b0e-4a4b-8a8e-0d2b7f3e4c21"],
            },
            {"session": "d3c1f0e2-1a2b-4c3d-9e8f-7a6b5c4d3e2f", "type": "created", "merged": []},
        ],
        "skipped": 3,
    },
    response_only=True,
)

SESSION_SCORES_EXAMPLE = OpenApiExample(
    "A session with one score",
    value={
        "session": {"uid": "3f0c2a9e-6b1d-4c8a-9f3e-2d7b1a5c4e60", "name": "Friday league", "highlight": True},
        "scores": [
            {
                "id": 41,
                "session": "3f0c2a9e-6b1d-4c8a-9f3e-2d7b1a5c4e60",
                "player": "9b2e7c1d-0a4f-4e3b-8c6d-5f1a2b3c4d5e",
                "chart": 12,
                "song": 1,
                "value": 987654,
                "grade": "AAA",
                "lamp": None,
                "data": {},
                "timeAchieved": "2026-11-22T18:49:22.123Z",
            }
        ],
        "songs": [{"id": 1, "title": "Paranoia", "artist": "180", "subtitle": "", "genre": "", "bpm": 180}],
        "charts": [{"id": 12, "song": 1, "difficulty": "HARD", "level": 12, "data": {}}],
        "user": {"uid": "9b2e7c1d-0a4f-4e3b-8c6d-5f1a2b3c4d5e", "username": "zkldi"},
    },
    response_only=True,
)

# The session row plus who `user` is: the host, or the creator of a session without one.
SESSION_SCORES_COLUMNS = (*DOCUMENT_COLUMNS, "host__username", "creator__uid", "creator__username")


def public_player(uid: uuid.UUID | None, username: str) -> dict[str, str] | None:
    return None if uid is None else {"uid": str(uid), "username": username}


class SessionScoresView(DeclaredQueryParametersMixin, APIView):
    """A session with its scores, songs and charts (seed 002), and submitting a score to it."""

    @extend_schema(
        operation_id="sessions_scores_retrieve",
        parameters=[UID_PARAMETER],
        responses={200: SessionScoresSerializer, **error_responses(400, 404)},
        examples=[SESSION_SCORES_EXAMPLE],
    )
    def get(self, request: Request, uid: str) -> Response:
        """The session, its scores in the order achieved, only the songs and charts they were
        played on, and its host (or creator) as `user`. Its cost does not grow with its scores."""
        row = (
            GameSession.objects.filter(uid=parse_uid(uid))
            .annotate(open_places=open_places())
            .values(*SESSION_SCORES_COLUMNS)
            .first()
        )
        if row is None or not row_visible_to(caller(request), row):
            raise NotFound("No such session.", code="session_not_found")
        session_uid = str(row["uid"])
        in_session = Score.objects.filter(session_id=row["id"])
        score_rows = in_session.order_by("time_achieved", "id").values(*SCORE_COLUMNS)
        chart_rows = Chart.objects.filter(pk__in=in_session.values("chart_id")).order_by("id").values(*CHART_COLUMNS)
        played_songs = Chart.objects.filter(scores__session_id=row["id"]).values("song_id")
        song_rows = Song.objects.filter(pk__in=played_songs).order_by("id").values(*SONG_COLUMNS)
        if row["host__uid"] is not None:
            user = public_player(row["host__uid"], row["host__username"])
        else:
            user = public_player(row["creator__uid"], row["creator__username"])
        return Response(
            {
                "session": session_document(row, viewer=viewer_of(caller(request))),
                "scores": [score_document(score, session_uid) for score in score_rows],
                "songs": [song_document(song) for song in song_rows],
                "charts": [chart_document(chart) for chart in chart_rows],
                "user": user,
            }
        )

    @extend_schema(
        operation_id="sessions_scores_create",
        parameters=[UID_PARAMETER],
        request=ScoreSubmitSerializer,
        responses={201: ScoreSerializer, **error_responses(400, 403, 404, 409)},
        examples=[SCORE_EXAMPLE],
    )
    def post(self, request: Request, uid: str) -> Response:
        """Submit a score while the session is open or in progress: a member its own, a
        session:* account a member's (`player`). Does not move the session's version."""
        session = visible_session(request, uid)
        body = request_object(request)
        permissions.authorize_score_submit(caller(request), session, body.get("player"))
        serializer = ScoreSubmitSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        score = scores.score_submit(
            session_id=session.pk,
            actor=caller(request),
            chart_id=values["chart"],
            value=values["value"],
            player_uid=values.get("player"),
            grade=values.get("grade") or "",
            lamp=values.get("lamp") or "",
            data=values.get("data"),
            time_achieved=values.get("time_achieved"),
        )
        row = Score.objects.filter(pk=score.pk).values(*SCORE_COLUMNS).get()
        return Response(score_document(row, str(session.uid)), status=status.HTTP_201_CREATED)


class ScoreImportView(DeclaredQueryParametersMixin, APIView):
    """A batch of the caller's past scores, grouped into imported sessions."""

    @extend_schema(
        operation_id="scores_import",
        request=ScoreImportSerializer,
        responses={200: ScoreImportResultSerializer, **error_responses(400)},
        examples=[IMPORT_EXAMPLE, IMPORT_RESULT_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        """All or nothing: a bad score rejects the batch with every problem listed. Scores are
        grouped at gaps of SCORE_IMPORT_GAP (2 hours) or more; a group within that gap of the
        caller's imported sessions is appended to (and merges) them; scores already imported
        (same clientId) are skipped and counted."""
        serializer = ScoreImportSerializer(data=request_object(request))
        serializer.is_valid(raise_exception=True)
        result = scores.scores_import(actor=caller(request), scores=serializer.validated_data["scores"])
        return Response(import_result_document(result))
