"""NATS with JetStream: connection (5 reconnects 2 s apart by default), streams, event envelopes.

Streams and subjects follow docs/contracts.md. Producers *and* consumers call ``ensure_streams`` at
start-up with the same definitions, so start order does not matter. Events are JSON
``{"id", "type", "occurred_at", "data"}`` published with ``Nats-Msg-Id = id``: JetStream drops a
duplicate inside its window, and consumers still de-duplicate by id (delivery is at-least-once).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import nats
import orjson
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from services.common.logs import REQUEST_ID_HEADER, request_id_var
from services.common.settings import NatsSettings

log = logging.getLogger("venta.nats")


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_seconds: int = 7 * 86400


VENDORS_STREAM = StreamSpec("VENDORS", ("vendor.created", "vendor.updated", "vendor.deleted"))
LOCATIONS_STREAM = StreamSpec("LOCATIONS", ("location.updated",), max_age_seconds=86400)
STREAMS = {spec.name: spec for spec in (VENDORS_STREAM, LOCATIONS_STREAM)}


async def connect(settings: NatsSettings) -> NatsClient:
    async def on_error(exc: Exception) -> None:
        log.warning("nats error", extra={"error": str(exc)})

    async def on_disconnected() -> None:
        log.warning("nats disconnected")

    async def on_reconnected() -> None:
        log.info("nats reconnected")

    options: dict[str, Any] = {}
    if settings.nats_user:
        options = {"user": settings.nats_user, "password": settings.nats_password.get_secret_value()}
    return await nats.connect(
        servers=settings.nats_servers,
        name=settings.service_name,
        max_reconnect_attempts=settings.nats_max_reconnect_attempts,
        reconnect_time_wait=settings.nats_reconnect_wait_seconds,
        connect_timeout=2,
        drain_timeout=5,
        allow_reconnect=True,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        **options,
    )


async def ensure_streams(js: JetStreamContext, *specs: StreamSpec) -> None:
    for spec in specs:
        config = StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=float(spec.max_age_seconds),
            duplicate_window=120.0,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Exists with a different config (e.g. created by an older release): bring it in line.
            await js.update_stream(config)


def new_event(subject: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": subject,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "data": data,
    }


async def publish_event(
    js: JetStreamContext,
    event: dict[str, Any],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 (nats-py's own ack wait)
) -> None:
    headers = {"Nats-Msg-Id": str(event["id"])}
    request_id = request_id_var.get()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    await js.publish(event["type"], orjson.dumps(event), timeout=timeout, headers=headers)


def parse_event(payload: bytes) -> dict[str, Any]:
    """Decode and check the envelope; ``ValueError`` names what is wrong."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"event is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ValueError("event is not a JSON object")
    for key in ("id", "type", "occurred_at", "data"):
        if key not in event:
            raise ValueError(f"event lacks {key!r}")
    if not isinstance(event["data"], dict):
        raise ValueError("event data is not an object")
    return event
