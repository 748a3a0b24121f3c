"""Keeps each vendor's owner and active flag in Redis from the `vendor.*` events (a durable consumer).

The replicas share one durable pull consumer, so each event is applied once, in order; applying is
idempotent (a replay writes the same hash), so redelivery after a crash is harmless.
"""

from __future__ import annotations

import asyncio
import logging

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.common.nats_client import VENDORS_STREAM, parse_event
from services.geolocation.events import parse_vendor_event
from services.geolocation.store import LocationStore

log = logging.getLogger("venta.geolocation.vendors")
_BATCH = 100
_RETRY_DELAY_S = 1.0


async def apply_vendor_message(store: LocationStore, payload: bytes) -> None:
    change = parse_vendor_event(parse_event(payload))
    if change.deleted:
        await store.remove_vendor(change.vendor_id)
    else:
        assert change.owner_id is not None
        await store.upsert_vendor(change.vendor_id, change.owner_id, change.active)


async def consume(js: JetStreamContext, store: LocationStore, durable: str) -> None:
    sub = await js.pull_subscribe(
        "vendor.*",
        durable=durable,
        stream=VENDORS_STREAM.name,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=30),
    )
    while True:
        try:
            messages = await sub.fetch(_BATCH, timeout=1.0)
        except (NatsTimeout, TimeoutError):
            continue
        except Exception as exc:  # NATS reconnecting: wait and fetch again
            log.warning("fetching vendor events failed", extra={"error": str(exc)})
            await asyncio.sleep(_RETRY_DELAY_S)
            continue
        for msg in messages:
            try:
                await apply_vendor_message(store, msg.data)
            except ValueError as exc:  # malformed: retrying cannot fix it
                log.error("skipping bad vendor event", extra={"error": str(exc)})
            except Exception as exc:  # Redis down: let JetStream redeliver later
                log.warning("vendor event not applied, will be redelivered", extra={"error": str(exc)})
                await msg.nak(delay=_RETRY_DELAY_S)
                continue
            await msg.ack()
