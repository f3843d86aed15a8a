"""ASGI entry point: the whole service (REST, admin, docs) and the live routes.

`make run` serves all of it from one process (uvicorn); `make serve` runs it in uvicorn for
the live routes only, next to gunicorn's WSGI workers for the rest (README "Serving"). HTTP to
the Server-Sent Events routes and WebSocket upgrades go to `sessions_app.live`; every other
HTTP request goes to Django as under WSGI.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessions_project.settings")

# Django is set up first: the live routes import models.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from sessions_app.live.routing import stream_urlpatterns, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Channels' URLRouter takes ASGI applications where Django's stubs expect views.
        "http": URLRouter([*stream_urlpatterns, re_path(r"", django_application)]),  # type: ignore[arg-type]
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
