"""Health endpoints: ``/health/live``, ``/health/ready`` and the full ``/health`` report.

Liveness looks at the process only (a dependency outage must not restart every pod). Readiness runs
each registered check concurrently with its own short timeout and answers 503 naming what failed,
or ``draining`` once the process has started to stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

Check = Callable[[], Awaitable[object]]
Extra = Callable[[], Awaitable[dict[str, Any]]]


class CheckResult(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None


class ReadyReport(BaseModel):
    status: str
    failed: list[str]
    checks: dict[str, CheckResult]


class LiveReport(BaseModel):
    status: str


class FullReport(ReadyReport):
    service: str
    environment: str
    uptime_seconds: float
    details: dict[str, Any] = {}


@dataclass
class Health:
    """Registry of readiness checks; the app factory registers one per client it opens."""

    service: str
    environment: str
    timeout_seconds: float = 1.0
    checks: dict[str, Check] = field(default_factory=dict)
    extras: dict[str, Extra] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    # Set when the process starts to stop (services/common/drain.py): not ready, whatever the checks.
    draining: bool = False

    def start_draining(self) -> None:
        self.draining = True

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def add_details(self, name: str, extra: Extra) -> None:
        """Extra sections of the full report only (e.g. the gateway's view of its upstreams)."""
        self.extras[name] = extra

    async def _run(self, check: Check) -> CheckResult:
        started = time.perf_counter()
        error: str | None = None
        try:
            await asyncio.wait_for(check(), self.timeout_seconds)
        except TimeoutError:
            error = f"timed out after {self.timeout_seconds:g} s"
        except Exception as exc:  # any failure means not ready; the reason goes in the report
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = round((time.perf_counter() - started) * 1000, 2)
        return CheckResult(ok=error is None, latency_ms=latency, error=error)

    async def ready(self) -> ReadyReport:
        if self.draining:
            stopping = CheckResult(ok=False, latency_ms=0.0, error="shutting down")
            return ReadyReport(status="unready", failed=["draining"], checks={"draining": stopping})
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        failed = [name for name, result in checks.items() if not result.ok]
        return ReadyReport(status="unready" if failed else "ready", failed=failed, checks=checks)

    async def full(self) -> FullReport:
        ready = await self.ready()
        names = list(self.extras)
        values = await asyncio.gather(*(self.extras[name]() for name in names))
        return FullReport(
            **ready.model_dump(),
            service=self.service,
            environment=self.environment,
            uptime_seconds=round(time.monotonic() - self.started_at, 1),
            details=dict(zip(names, values, strict=True)),
        )


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live", response_model=LiveReport)
    async def live() -> LiveReport:
        return LiveReport(status="alive")

    @router.get("/health/ready", response_model=ReadyReport, responses={503: {"model": ReadyReport}})
    async def ready(request: Request) -> JSONResponse:
        report = await request.app.state.health.ready()
        return JSONResponse(report.model_dump(), status_code=503 if report.failed else 200)

    @router.get("/health", response_model=FullReport, responses={503: {"model": FullReport}})
    async def full(request: Request) -> JSONResponse:
        report = await request.app.state.health.full()
        return JSONResponse(report.model_dump(), status_code=503 if report.failed else 200)

    return router
