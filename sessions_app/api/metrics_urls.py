"""The metrics route, at the site's root (sessions_project/urls.py includes it)."""

from django.urls import path

from .metrics_views import metrics_view

urlpatterns = [path("metrics", metrics_view, name="metrics")]
