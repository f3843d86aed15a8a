"""Top-level routes: the API under /api/v1/, its schema and docs, admin, the landing page, and
the operators' probes and metrics."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sessions_project import health
from sessions_project.errors import api_not_found

api_v1: list[URLPattern | URLResolver] = [
    path("", include("players_app.api.urls")),
    path("", include("sessions_app.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path("", TemplateView.as_view(template_name="landing.html"), name="landing"),
    path("admin/", admin.site.urls),
    # Operating it (README): liveness, readiness, Prometheus metrics.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("sessions_app.api.metrics_urls")),
    path("api/v1/", include(api_v1)),
    # Anything else under /api/ is a JSON 404, never Django's HTML page.
    re_path(r"^api/", api_not_found),
]

handler500 = "sessions_project.errors.server_error"
