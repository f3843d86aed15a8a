"""Headers every API response carries."""

from __future__ import annotations


class ApiResponseHeadersMiddleware:
    """Under /api/: `Cache-Control: private, no-cache` unless the view chose otherwise (answers
    depend on the caller's token: no shared cache may keep them, and a client revalidates with
    its ETag before reusing one, which 304 keeps cheap), and `X-Content-Type-Options: nosniff`
    (JSON is never to be sniffed into HTML)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            if not response.has_header("Cache-Control"):
                response["Cache-Control"] = "private, no-cache"
            response.setdefault("X-Content-Type-Options", "nosniff")
        return response
