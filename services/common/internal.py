"""The internal port's app: probes, metrics and (with ``API_DOCS``) the API docs, for the cluster only.

Every service serves two apps from one process: its API on ``PORT`` and this one on ``INTERNAL_PORT``.
Kubernetes probes and Prometheus scrapes reach the internal port; the gateway's public port and the
Ingress never route to it, so none of this is on the public path. Both apps share one ``state``
(health registry, clients, settings), and this one has no lifespan of its own: the public app's opens
and closes everything.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from services.common.errors import install_error_handlers
from services.common.health import health_router
from services.common.metrics import RequestContextMiddleware, metrics_endpoint
from services.common.settings import ServiceSettings

OPENAPI_PATH = "/openapi.json"


def build_internal_app(public: FastAPI, settings: ServiceSettings, routers: Sequence[APIRouter]) -> FastAPI:
    internal = FastAPI(
        title=f"{public.title} (internal)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    internal.state = public.state
    install_error_handlers(internal)
    # Probes are counted and logged as before the split (and cost what a request to the API costs in
    # the same stack, which bench/location.py uses as its baseline).
    internal.add_middleware(RequestContextMiddleware)
    internal.include_router(health_router())
    internal.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in routers:
        internal.include_router(router)
    if settings.api_docs:

        async def openapi(_: Request) -> JSONResponse:
            return JSONResponse(public.openapi())

        async def docs(_: Request) -> HTMLResponse:
            return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title=f"{public.title} API")

        internal.add_route(OPENAPI_PATH, openapi, include_in_schema=False)
        internal.add_route("/docs", docs, include_in_schema=False)
    return internal
