"""Routes of the sessions API, exactly as the seed writes them (no trailing slash)."""

from django.urls import path

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
    path("sessions/<str:uid>", session_detail, name="session-detail"),
    path("sessions/<str:uid>/join", session_join, name="session-join"),
    path("sessions/<str:uid>/leave", session_leave, name="session-leave"),
    path("sessions/<str:uid>/heartbeat", session_heartbeat, name="session-heartbeat"),
]
