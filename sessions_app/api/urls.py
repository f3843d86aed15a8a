"""Routes of the sessions API, exactly as the seed writes them (no trailing slash)."""

from django.urls import path

from . import membership_views as membership
from .catalog_views import ChartViewSet, ScoreImportView, SessionScoresView, SongViewSet
from .event_views import MyEventsView, SessionEventsView
from .finding_views import JoinByCodeView, JoinCodeView, QuickJoinView
from .player_sessions import PlayerSessionsView
from .views import SessionViewSet

session_list = SessionViewSet.as_view({"get": "list", "post": "create", "delete": "truncate"})
session_count = SessionViewSet.as_view({"get": "count"})
session_detail = SessionViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
)
session_join = SessionViewSet.as_view({"get": "join", "post": "join"})
session_leave = SessionViewSet.as_view({"get": "leave", "post": "leave"})
session_heartbeat = SessionViewSet.as_view({"post": "heartbeat"})

urlpatterns = [
    path("sessions", session_list, name="session-list"),
    path("sessions/count", session_count, name="session-count"),
    # Finding a game (issue 13): before sessions/<uid>, whose pattern would take these names.
    path("sessions/quick-join", QuickJoinView.as_view(), name="session-quick-join"),
    path("sessions/join-by-code", JoinByCodeView.as_view(), name="session-join-by-code"),
    path("sessions/<str:uid>", session_detail, name="session-detail"),
    path("sessions/<str:uid>/join", session_join, name="session-join"),
    path("sessions/<str:uid>/leave", session_leave, name="session-leave"),
    path("sessions/<str:uid>/heartbeat", session_heartbeat, name="session-heartbeat"),
    path("sessions/<str:uid>/join-code", JoinCodeView.as_view(), name="session-join-code"),
]

# Catalog and scores (seed 002).
urlpatterns += [
    path("songs", SongViewSet.as_view({"get": "list", "post": "create"}), name="song-list"),
    path(
        "songs/<int:pk>",
        SongViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
        name="song-detail",
    ),
    path("charts", ChartViewSet.as_view({"get": "list", "post": "create"}), name="chart-list"),
    path(
        "charts/<int:pk>",
        ChartViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
        name="chart-detail",
    ),
    path("sessions/<str:uid>/scores", SessionScoresView.as_view(), name="session-scores"),
    path("scores/import", ScoreImportView.as_view(), name="score-import"),
]

# Invites, reservations, teams, kicks and a player's sessions (issue 3, seed 003).
urlpatterns += [
    path("sessions/<str:uid>/invites", membership.SessionInvitesView.as_view(), name="session-invites"),
    path("sessions/<str:uid>/reservations", membership.SessionReservationsView.as_view(), name="session-reservations"),
    path(
        "sessions/<str:uid>/reservations/<str:reservation_id>",
        membership.ReservationDetailView.as_view(),
        name="session-reservation-detail",
    ),
    path("sessions/<str:uid>/teams/<str:index>/join", membership.TeamJoinView.as_view(), name="session-team-join"),
    path("sessions/<str:uid>/kick", membership.KickView.as_view(), name="session-kick"),
    path("invites/<str:invite_id>", membership.InviteDetailView.as_view(), name="invite-detail"),
    path("invites/<str:invite_id>/accept", membership.InviteAcceptView.as_view(), name="invite-accept"),
    path("invites/<str:invite_id>/decline", membership.InviteDeclineView.as_view(), name="invite-decline"),
    path("players/me/invites", membership.MyInvitesView.as_view(), name="player-me-invites"),
    path("players/<str:player_uuid>/sessions", PlayerSessionsView.as_view(), name="player-sessions"),
]

# The session event log (issue 12).
urlpatterns += [
    path("sessions/<str:uid>/events", SessionEventsView.as_view(), name="session-events"),
    path("players/me/events", MyEventsView.as_view(), name="player-me-events"),
]
