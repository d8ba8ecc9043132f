"""Request metrics (the names the seed's alerts use) and a minimal CORS policy."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from finchapp.metrics import HTTP_LATENCY, HTTP_REQUESTS

Handler = Callable[[HttpRequest], HttpResponseBase]


class RequestMetricsMiddleware:
    """http_requests_total{method,view,status} and http_request_duration_seconds{method,view}.

    `view` is the URL pattern's name, so cardinality stays bounded; unmatched paths (404s)
    share the label "unmatched"."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.url_name or match.view_name) if match else "unmatched"
        method = request.method or "UNKNOWN"
        HTTP_LATENCY.labels(method=method, view=view).observe(time.perf_counter() - start)
        HTTP_REQUESTS.labels(method=method, view=view, status=str(response.status_code)).inc()
        return response


class CorsMiddleware:
    """Allow the SPA's origin (DJANGO_CORS_ALLOWED_ORIGINS, comma list or "*") to call the API.

    The SPA and the API are different hosts (finch.example.com vs api.finch.example.com);
    the seed puts CORS at the ingress, this keeps the workload usable without one."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.origins = set(settings.FINCH_CORS_ALLOWED_ORIGINS)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        origin = request.headers.get("Origin")
        allowed = origin is not None and ("*" in self.origins or origin in self.origins)
        if allowed and request.method == "OPTIONS":
            response: HttpResponseBase = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = "600"
        else:
            response = self.get_response(request)
        if allowed and origin is not None:
            response["Access-Control-Allow-Origin"] = origin
            response["Vary"] = "Origin"
        return response
