"""Keeps each vendor's owner and active flag in Redis from the `vendor.*` events (a durable consumer).

The replicas share one durable pull consumer. A change applies only over an older version of the
vendor (the check is in the Lua script that writes it), so a redelivery, or an older event arriving
after a newer one, leaves the newest state. When Redis fails mid-batch, the failed event and the rest
of the batch are handed back to JetStream together, to come back in order; a lost acknowledgement
only means a redelivery, which the version check ignores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from services.common.nats_client import VENDORS_STREAM, parse_event
from services.geolocation.events import parse_vendor_event
from services.geolocation.store import LocationStore

log = logging.getLogger("venta.geolocation.vendors")
EVENTS = Counter("geolocation_vendor_events_total", "Vendor events handled by geolocation", ["outcome"])
_BATCH = 100
_RETRY_DELAY_S = 1.0


async def apply_vendor_message(store: LocationStore, payload: bytes) -> bool:
    """Apply one vendor event; True when it was newer than what is stored."""
    return await store.apply_vendor(parse_vendor_event(parse_event(payload)))


async def handle_batch(store: LocationStore, messages: list[Msg]) -> bool:
    """Apply and settle each message in order; a failure hands it and the rest back to JetStream
    (False: the caller waits before fetching again)."""
    for index, msg in enumerate(messages):
        try:
            applied = await apply_vendor_message(store, msg.data)
        except ValueError as exc:  # malformed: retrying cannot fix it
            EVENTS.labels("rejected").inc()
            log.error("skipping bad vendor event", extra={"error": str(exc)})
            with contextlib.suppress(Exception):
                await msg.term()
            continue
        except Exception as exc:  # Redis away: this event and the ones after it come back later
            EVENTS.labels("retried").inc(len(messages) - index)
            log.warning("vendor events not applied, will be redelivered", extra={"error": str(exc)})
            for later in messages[index:]:
                with contextlib.suppress(Exception):
                    await later.nak(delay=_RETRY_DELAY_S)
            return False
        EVENTS.labels("applied" if applied else "ignored").inc()
        try:
            await msg.ack()
        except Exception as exc:  # redelivered after ack_wait, then ignored as not newer
            log.warning("vendor event applied but its ack was lost", extra={"error": str(exc)})
    return True


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
        if not await handle_batch(store, messages):
            await asyncio.sleep(_RETRY_DELAY_S)
