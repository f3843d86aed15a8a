"""`GET /metrics`: every metric in Prometheus' text format (sessions_project/metrics.py defines
them), the figures that need queries refreshed first when they are older than
METRICS_LIVE_FIGURES_SECONDS. A plain Django view: Prometheus speaks neither JWT nor JSON."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from sessions_app.services import lifecycle
from sessions_project import metrics

logger = logging.getLogger(__name__)

LIVE_FIGURES_CACHE_KEY = "metrics:live-figures"
# When this process last set the gauges: until METRICS_LIVE_FIGURES_SECONDS have passed, a
# scrape answers them as they are, without even a cache read.
_figures_set_at = 0.0


def refresh_live_figures() -> None:
    """Sessions by status and players in live sessions, computed at most once per
    METRICS_LIVE_FIGURES_SECONDS for every worker and host together: the first scrape after
    they expire computes them (two queries) and shares them through the cache; the others
    read the cache. A database or cache that fails leaves the last figures (the gauge
    `sessions_live_figures_computed_timestamp_seconds` shows their age) and the scrape answers."""
    global _figures_set_at
    seconds = settings.METRICS_LIVE_FIGURES_SECONDS
    if time.monotonic() - _figures_set_at < seconds:
        return
    try:
        figures = cache.get(LIVE_FIGURES_CACHE_KEY)
        if figures is None:
            figures = {**lifecycle.live_figures(), "computed_at": time.time()}
            cache.set(LIVE_FIGURES_CACHE_KEY, figures, timeout=seconds)
    except Exception:
        logger.warning("metrics: the live figures could not be computed", exc_info=True)
        return
    metrics.set_live_figures(figures["by_status"], figures["players_in_live_sessions"], figures["computed_at"])
    _figures_set_at = time.monotonic()


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    refused = metrics.access_refusal(request)
    if refused is not None:
        return refused
    refresh_live_figures()
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
