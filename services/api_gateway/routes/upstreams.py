"""The aggregated readiness view: every upstream's ``/health/ready`` in one answer (internal port only).

This is a separate endpoint on purpose: the gateway's own ``/health/ready`` does not depend on the
services behind it, so one failing service cannot take the entry point out of rotation. Each look
costs every upstream a readiness check (PostgreSQL, Redis, NATS pings), so callers share one report
at most ``UPSTREAMS_REPORT_MAX_AGE_SECONDS`` old, and concurrent callers one refresh.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.api_gateway.proxy import Gateway, Upstream
from services.common.logs import REQUEST_ID_HEADER, request_id_var

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 2.0


class UpstreamHealth(BaseModel):
    ready: bool
    url: str
    status_code: int | None = None
    failed: list[str] = []
    latency_ms: float
    error: str | None = None


class UpstreamsReport(BaseModel):
    status: str
    not_ready: list[str]
    upstreams: dict[str, UpstreamHealth]
    age_seconds: float = 0.0


async def _probe(upstream: Upstream) -> UpstreamHealth:
    started = time.perf_counter()
    url = f"{upstream.internal_url}/health/ready"
    try:
        async with upstream.session.get(
            url,
            timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_SECONDS),
            headers={REQUEST_ID_HEADER: request_id_var.get()},
        ) as response:
            body: Any = await response.json(content_type=None)
            failed = body.get("failed", []) if isinstance(body, dict) else []
            return UpstreamHealth(
                ready=response.status == 200,
                url=upstream.internal_url,
                status_code=response.status,
                failed=failed,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return UpstreamHealth(
            ready=False,
            url=upstream.internal_url,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        )


async def upstreams_report(gateway: Gateway) -> UpstreamsReport:
    names = list(gateway.upstreams)
    results = await asyncio.gather(*(_probe(gateway.upstreams[name]) for name in names))
    health = dict(zip(names, results, strict=True))
    not_ready = [name for name, result in health.items() if not result.ready]
    return UpstreamsReport(status="degraded" if not_ready else "ready", not_ready=not_ready, upstreams=health)


class UpstreamsView:
    """The last report, refreshed by one caller at a time once it is older than ``max_age``."""

    def __init__(self, gateway: Gateway, max_age: float) -> None:
        self.gateway = gateway
        self.max_age = max_age
        self.refreshes = 0
        self._report: UpstreamsReport | None = None
        self._taken_at = 0.0
        self._refresh: asyncio.Future[UpstreamsReport] | None = None

    async def report(self) -> UpstreamsReport:
        now = time.monotonic()
        if self._report is None or now - self._taken_at >= self.max_age:
            if self._refresh is None:
                self._refresh = asyncio.ensure_future(self._take())
            await asyncio.shield(self._refresh)
        assert self._report is not None
        return self._report.model_copy(update={"age_seconds": round(time.monotonic() - self._taken_at, 2)})

    async def _take(self) -> UpstreamsReport:
        try:
            report = await upstreams_report(self.gateway)
            self._report, self._taken_at = report, time.monotonic()
            self.refreshes += 1
            return report
        finally:
            self._refresh = None


@router.get("/health/upstreams", response_model=UpstreamsReport, responses={503: {"model": UpstreamsReport}})
async def upstreams(request: Request) -> JSONResponse:
    view: UpstreamsView = request.app.state.upstreams_view
    report = await view.report()
    return JSONResponse(report.model_dump(), status_code=503 if report.not_ready else 200)
