"""JetStream -> delivery rows. An event is acknowledged only after its rows have committed, so a
crash or a NATS restart at any point means a redelivery (absorbed by the unique constraint), never a loss.

Every event concerns one vendor, and goes only to subscriptions of that vendor's owner (all their
vendors, or the ones the subscription names). Owners are learned from the vendor.* events themselves,
in the same transaction as the fan-out; a second durable consumer reads the VENDORS stream from its
start so that vendors created before webhooks first ran are known too. An event whose vendor has no
known owner yet (its vendor.created not read yet) is redelivered a few times before it is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from services.common.nats_client import LOCATIONS_STREAM, VENDORS_STREAM, StreamSpec, parse_event

log = logging.getLogger("venta.webhooks.ingest")
SOURCES: tuple[StreamSpec, ...] = (VENDORS_STREAM, LOCATIONS_STREAM)
EVENT_TYPES: tuple[str, ...] = tuple(subject for spec in SOURCES for subject in spec.subjects)
LOCATION_SUBJECT = "location.updated"
_FILTERS = {VENDORS_STREAM.name: "vendor.*", LOCATIONS_STREAM.name: LOCATION_SUBJECT}
_BATCH = 200
_RETRY_DELAY_S = 0.5

# Redeliveries of an event whose vendor's owner is unknown before it is dropped, and the pause between.
_OWNER_TRIES = 5
_OWNER_WAIT_S = 2.0
UNOWNED = Counter(
    "webhook_events_unowned_total", "Events dropped because their vendor's owner stayed unknown"
)

_LEARN_OWNER = """
INSERT INTO webhook_vendors (vendor_id, owner_id) VALUES ($1, $2) ON CONFLICT (vendor_id) DO NOTHING
"""
_FAN_OUT = """
INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body)
SELECT s.id, $1, $2, $3
FROM webhook_vendors v JOIN webhook_subscriptions s ON s.owner_id = v.owner_id
WHERE v.vendor_id = $4 AND $2 = ANY (s.event_types) AND (s.vendor_ids IS NULL OR $4 = ANY (s.vendor_ids))
ON CONFLICT (subscription_id, event_id) DO NOTHING
"""
_UNKNOWN = """
SELECT vendor_id FROM unnest($1::text[]) AS ids (vendor_id)
WHERE NOT EXISTS (SELECT 1 FROM webhook_vendors v WHERE v.vendor_id = ids.vendor_id)
"""


@dataclass(frozen=True)
class VendorEvent:
    id: str
    type: str
    vendor_id: str
    owner_id: str | None  # vendor.created and vendor.updated carry it
    payload: bytes


def vendor_event(payload: bytes) -> VendorEvent:
    """The envelope plus the vendor it concerns; ``ValueError`` names what is missing."""
    event = parse_event(payload)
    data = event["data"]
    vendor = data.get("vendor_id") if event["type"] == LOCATION_SUBJECT else data.get("id")
    if not isinstance(vendor, str) or not vendor:
        raise ValueError(f"{event['type']} event names no vendor")
    owner = data.get("owner_id") if event["type"] != LOCATION_SUBJECT else None
    return VendorEvent(str(event["id"]), str(event["type"]), vendor, str(owner) if owner else None, payload)


def _parsed(payloads: Sequence[bytes]) -> list[VendorEvent | None]:
    events: list[VendorEvent | None] = []
    for payload in payloads:
        try:
            events.append(vendor_event(payload))
        except ValueError as exc:
            log.error("skipping malformed event", extra={"error": str(exc)})
            events.append(None)
    return events


async def store_events(pool: asyncpg.Pool, payloads: Sequence[bytes]) -> list[int]:
    """In one transaction: learn owners, then one delivery row per matching subscription and event.
    Returns the positions of events whose vendor has no known owner (not stored: try them later)."""
    events = [(position, event) for position, event in enumerate(_parsed(payloads)) if event is not None]
    if not events:
        return []
    owners = [(e.vendor_id, e.owner_id) for _, e in events if e.owner_id is not None]
    async with pool.acquire() as conn, conn.transaction():
        if owners:
            await conn.executemany(_LEARN_OWNER, owners)
        unknown = {row["vendor_id"] for row in await conn.fetch(_UNKNOWN, [e.vendor_id for _, e in events])}
        known = [(e.id, e.type, e.payload, e.vendor_id) for _, e in events if e.vendor_id not in unknown]
        if known:
            await conn.executemany(_FAN_OUT, known)
    return [position for position, e in events if e.vendor_id in unknown]


async def learn_owners(pool: asyncpg.Pool, payloads: Sequence[bytes]) -> list[int]:
    """What the owners consumer does with vendor events: remember who owns each vendor, nothing else."""
    owned = [event for event in _parsed(payloads) if event is not None and event.owner_id is not None]
    if owned:
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(_LEARN_OWNER, [(event.vendor_id, event.owner_id) for event in owned])
    return []


Store = Callable[[asyncpg.Pool, Sequence[bytes]], Awaitable[list[int]]]


async def consume(
    js: JetStreamContext,
    pool: asyncpg.Pool,
    spec: StreamSpec,
    durable: str,
    store: Store = store_events,
    deliver: DeliverPolicy = DeliverPolicy.NEW,
) -> None:
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=deliver, ack_wait=30)
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
            later = set(await store(pool, [msg.data for msg in messages]))
        except Exception as exc:  # database away: JetStream redelivers after ack_wait
            log.warning("events not stored, will be redelivered", extra={"error": str(exc)})
            for msg in messages:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=_RETRY_DELAY_S)
            continue
        for position, msg in enumerate(messages):
            with contextlib.suppress(Exception):  # a lost ack only means a harmless redelivery
                if position in later and msg.metadata.num_delivered < _OWNER_TRIES:
                    await msg.nak(delay=_OWNER_WAIT_S)
                    continue
                if position in later:
                    UNOWNED.inc()
                    log.warning("event dropped: its vendor's owner is unknown", extra={"stream": spec.name})
                await msg.ack()


Loop = Coroutine[Any, Any, None]


def consumers(js: JetStreamContext, pool: asyncpg.Pool, durable_prefix: str) -> dict[str, Loop]:
    """One durable consumer loop per source stream, plus the owners' one, named for the task list."""
    loops = {
        f"ingest-{spec.name.lower()}": consume(js, pool, spec, f"{durable_prefix}-{spec.name.lower()}")
        for spec in SOURCES
    }
    owners = consume(js, pool, VENDORS_STREAM, f"{durable_prefix}-owners", learn_owners, DeliverPolicy.ALL)
    return loops | {"ingest-owners": owners}
