"""Loads every vendor's owner and active flag again when Redis has lost them, without an operator.

The durable consumer of ``VENDORS`` has long acknowledged the events that made the vendor hashes, and
that stream forgets events after its age limit; ``VENDOR_STATE`` keeps each vendor's latest event
for good. A marker key says the vendor data in Redis is complete: a Redis that restarted empty has
lost it too. A loop checks it (at start, every ``check_seconds``, and at once when a position report
finds neither its vendor nor the marker) and, when it is missing, applies every vendor's latest
event, with the same version check as the live consumer, so the two may run side by side in any
order. The marker is set only if the load that set its token is still the current one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from services.common.nats_client import VENDOR_STATE_STREAM, parse_event
from services.geolocation.events import BadEvent, VendorChange, parse_vendor_event
from services.geolocation.store import LocationStore

log = logging.getLogger("venta.geolocation.rebuild")
REBUILDS = Counter("geolocation_vendor_rebuilds_total", "Loads of the vendor data from VENDOR_STATE")
_BATCH = 500
_FETCH_SECONDS = 5.0


class VendorRebuild:
    def __init__(self, js: JetStreamContext, store: LocationStore, check_seconds: float = 1.0) -> None:
        self._js = js
        self._store = store
        self._check_seconds = check_seconds
        self._wake = asyncio.Event()
        self._failing = False

    def wake(self) -> None:
        """Check now (a position report found neither its vendor nor the marker)."""
        self._wake.set()

    async def check(self) -> bool:
        """Load the vendor data if Redis lacks it; False when that failed (Redis or NATS away, logged
        once per streak of failures)."""
        try:
            if not await self._store.vendors_loaded():
                await self.rebuild()
        except Exception as exc:
            if not self._failing:
                log.warning("vendor data check or load failed; retrying", extra={"error": str(exc)})
            self._failing = True
            return False
        self._failing = False
        return True

    async def run(self) -> None:
        while True:
            self._wake.clear()
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._check_seconds)

    async def rebuild(self) -> int:
        """Apply every vendor's latest event; returns how many were read."""
        started = time.monotonic()
        token = uuid.uuid4().hex
        await self._store.begin_load(token)
        count = applied = 0
        async for change in self._latest():
            count += 1
            applied += await self._store.apply_vendor(change)
        marked = await self._store.finish_load(token, time.time())
        REBUILDS.inc()
        log.info(
            "vendor data loaded from VENDOR_STATE"
            if marked
            else "vendor data load superseded; will check again",
            extra={"vendors": count, "applied": applied, "seconds": round(time.monotonic() - started, 2)},
        )
        return count

    async def _latest(self) -> AsyncIterator[VendorChange]:
        """Every message of VENDOR_STATE (one per vendor) through a short-lived consumer."""
        spec = VENDOR_STATE_STREAM
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=60.0
        )
        sub = await self._js.pull_subscribe(spec.subjects[0], stream=spec.name, config=config)
        info = await sub.consumer_info()
        try:
            remaining = info.num_pending or 0
            while remaining > 0:
                for msg in await sub.fetch(min(_BATCH, remaining), timeout=_FETCH_SECONDS):
                    remaining = msg.metadata.num_pending
                    try:
                        yield parse_vendor_event(parse_event(msg.data))
                    except (BadEvent, ValueError) as exc:
                        log.error("skipping bad vendor state", extra={"error": str(exc)})
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
                await self._js.delete_consumer(spec.name, info.name)
