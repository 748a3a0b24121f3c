"""Prometheus metrics and the one ASGI middleware that does per-request bookkeeping.

``http_requests_total{method,path,status}`` and ``http_request_duration_seconds{method,path}`` use the
route template (``/vendors/{vendor_id}``) as ``path`` so cardinality stays bounded; requests that
match no route count as ``<unmatched>``. Metrics live in the process-wide default registry and are
defined once at import, so several apps in one process (tests) share them.

``RequestContextMiddleware`` is pure ASGI (no BaseHTTPMiddleware: that one costs a task and a queue
per request). It sets/propagates ``X-Request-ID``, times the request, counts it, and writes one
access log line.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.logs import new_request_id, request_id_var

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["method", "path", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to handle an HTTP request",
    ["method", "path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UNMATCHED = "<unmatched>"
# A scope key an ASGI app can set to name its own bounded path label (the gateway's proxy does).
PATH_LABEL_KEY = "venta.path_label"
# A scope key naming the client's address for the access log (the gateway's, behind trusted proxies).
CLIENT_KEY = "venta.client"
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._\-]{1,128}$")
_access_log = logging.getLogger("venta.access")


def path_label(scope: Scope) -> str:
    label = scope.get(PATH_LABEL_KEY)
    if label:
        return str(label)
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


def incoming_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            # Only ids that are safe to log and forward are kept; anything else gets a fresh one.
            return value.decode() if _VALID_REQUEST_ID.match(value) else new_request_id()
    return new_request_id()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope)
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"]
            label = path_label(scope)
            HTTP_REQUESTS.labels(method, label, str(status)).inc()
            HTTP_DURATION.labels(method, label).observe(elapsed)
            if _access_log.isEnabledFor(logging.INFO):
                extra = {
                    "method": method,
                    "path": label,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                }
                if CLIENT_KEY in scope:
                    extra["client"] = scope[CLIENT_KEY]
                _access_log.info("request", extra=extra)
            request_id_var.reset(token)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def sample_value(name: str, labels: dict[str, str] | None = None) -> float:
    """Current value of one sample in the default registry (0 when absent); handy in tests and checks."""
    from prometheus_client import REGISTRY

    value: Any = REGISTRY.get_sample_value(name, labels or {})
    return float(value or 0.0)
