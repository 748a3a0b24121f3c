"""JetStream -> delivery rows. An event is acknowledged only after its rows have committed, so a
crash or a NATS restart at any point means a redelivery (absorbed by the unique constraint), never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

import asyncpg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.common.nats_client import LOCATIONS_STREAM, VENDORS_STREAM, StreamSpec, parse_event

log = logging.getLogger("venta.webhooks.ingest")
SOURCES: tuple[StreamSpec, ...] = (VENDORS_STREAM, LOCATIONS_STREAM)
EVENT_TYPES: tuple[str, ...] = tuple(subject for spec in SOURCES for subject in spec.subjects)
_FILTERS = {VENDORS_STREAM.name: "vendor.*", LOCATIONS_STREAM.name: "location.updated"}
_BATCH = 200
_RETRY_DELAY_S = 0.5

_FAN_OUT = """
INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body)
SELECT s.id, $1, $2, $3 FROM webhook_subscriptions s WHERE $2 = ANY (s.event_types)
ON CONFLICT (subscription_id, event_id) DO NOTHING
"""


async def store_events(pool: asyncpg.Pool, payloads: Sequence[bytes]) -> int:
    """One delivery row per matching subscription and event, in one transaction; returns events kept."""
    rows: list[tuple[str, str, bytes]] = []
    for payload in payloads:
        try:
            event = parse_event(payload)
        except ValueError as exc:
            log.error("skipping malformed event", extra={"error": str(exc)})
            continue
        rows.append((str(event["id"]), str(event["type"]), payload))
    if rows:
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(_FAN_OUT, rows)
    return len(rows)


async def consume(js: JetStreamContext, pool: asyncpg.Pool, spec: StreamSpec, durable: str) -> None:
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.NEW, ack_wait=30)
    sub: Any = None
    while True:
        try:
            if sub is None:
                subject = _FILTERS[spec.name]
                sub = await js.pull_subscribe(subject, durable=durable, stream=spec.name, config=config)
            messages = await sub.fetch(_BATCH, timeout=1.0)
        except (NatsTimeout, TimeoutError):
            continue
        except Exception as exc:  # NATS away or restarting: keep trying, nothing is acknowledged
            log.warning("fetching events failed", extra={"stream": spec.name, "error": str(exc)})
            await asyncio.sleep(_RETRY_DELAY_S)
            continue
        try:
            await store_events(pool, [msg.data for msg in messages])
        except Exception as exc:  # database away: JetStream redelivers after ack_wait
            log.warning("events not stored, will be redelivered", extra={"error": str(exc)})
            for msg in messages:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=_RETRY_DELAY_S)
            continue
        for msg in messages:
            with contextlib.suppress(Exception):  # a lost ack only means a harmless redelivery
                await msg.ack()


Loop = Coroutine[Any, Any, None]


def consumers(js: JetStreamContext, pool: asyncpg.Pool, durable_prefix: str) -> dict[str, Loop]:
    """One durable consumer loop per source stream, named for the task list."""
    return {
        f"ingest-{spec.name.lower()}": consume(js, pool, spec, f"{durable_prefix}-{spec.name.lower()}")
        for spec in SOURCES
    }
