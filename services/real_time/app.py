"""real-time's app: a WebSocket endpoint fed by a plain NATS subscription to `location.updated`.

Not a queue group: every replica must see every update, since any replica may hold the client.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from services.common.app import Resources, build_app
from services.common.settings import load_settings
from services.common.tasks import running_tasks
from services.real_time.connection import Timing, supervise
from services.real_time.hub import Hub, LocationUpdate
from services.real_time.metrics import DELIVERED, UPDATES
from services.real_time.routes import ws
from services.real_time.settings import Settings
from services.real_time.subscriptions import Limits

log = logging.getLogger("venta.real_time")
LOCATION_SUBJECT = "location.updated"


def _hub(settings: Settings) -> Hub:
    limits = Limits(
        max_subscriptions=settings.realtime_max_subscriptions,
        max_vendor_ids=settings.realtime_max_vendor_ids,
        max_radius_m=settings.realtime_max_radius_m,
        max_bbox_degrees=settings.realtime_max_bbox_degrees,
    )
    return Hub(
        limits=limits, outbox_size=settings.realtime_outbox_size, batch_s=settings.realtime_batch_seconds
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    hub = _hub(settings)

    async def on_update(msg: Any) -> None:
        try:
            update = LocationUpdate.from_event(msg.data)
        except ValueError as exc:
            log.warning("skipping malformed location event", extra={"error": str(exc)})
            return
        UPDATES.inc()
        DELIVERED.inc(hub.publish(update))

    @contextlib.asynccontextmanager
    async def background(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        assert res.nats is not None
        sub = await res.nats.subscribe(LOCATION_SUBJECT, cb=on_update)
        try:
            loops = {"supervisor": supervise(hub, app.state.timing)}
            if hub.batch_s > 0:
                loops["flusher"] = hub.flush_every()
            async with running_tasks(**loops):
                yield
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def configure(app: FastAPI) -> None:
        app.state.hub = hub
        app.state.timing = Timing(
            heartbeat_s=settings.realtime_heartbeat_seconds,
            idle_s=settings.realtime_heartbeat_seconds * settings.realtime_missed_heartbeats,
            auth_s=settings.realtime_auth_timeout_seconds,
            send_s=settings.realtime_send_timeout_seconds,
        )

    return build_app(
        settings, title="Venta real-time", routers=[ws.router], background=background, configure=configure
    )
