"""Fills ``VENDOR_STATE`` once with the vendors that last changed before that stream existed.

The outbox relay puts every new change there, but a vendor untouched since the upgrade would have no
message, and a consumer rebuilding from the stream (geolocation after losing its Redis) would not
know it. So, once per database (a marker row, under an advisory lock so replicas starting together
do it once), each vendor's current row is published to its state subject with
``Nats-Expected-Last-Subject-Sequence: 0``: JetStream accepts it only while the subject is empty, so
a newer event the relay already put there is never replaced by this older copy. Only the state
subjects get these messages: the ``vendor.*`` consumers (webhooks' subscribers) see nothing new.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import orjson
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError

from services.common.nats_client import new_event, vendor_state_subject
from services.vendor_management.repository import COLUMNS, event_data

log = logging.getLogger("venta.backfill")
BACKFILL_LOCK = 0x76656E7374617465  # pg_advisory_xact_lock key (any fixed number)
_NAMESPACE = uuid.UUID("5b0f6f1e-8a4c-4f2b-9a57-3c1d2e4f6a80")
_WRONG_LAST_SEQUENCE = 10071  # JetStream's error code: the subject already holds a message


async def backfill_vendor_state(pool: asyncpg.Pool, js: JetStreamContext) -> int | None:
    """Publish the vendors whose state subject is empty; None when it was done before."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", BACKFILL_LOCK)
        if await conn.fetchval("SELECT count(*) FROM vendor_state_backfill"):
            return None
        published = 0
        async for row in conn.cursor(f"SELECT {COLUMNS} FROM vendors ORDER BY created_at, id"):
            vendor_id = str(row["id"])
            # The same id for the same version, so a backfill cut short and run again is deduplicated.
            event_id = str(uuid.uuid5(_NAMESPACE, f"{vendor_id}@{row['version']}"))
            event = new_event("vendor.updated", event_data(row), event_id=event_id)
            headers = {"Nats-Msg-Id": event_id, "Nats-Expected-Last-Subject-Sequence": "0"}
            try:
                await js.publish(
                    vendor_state_subject(vendor_id), orjson.dumps(event, default=str), headers=headers
                )
            except BadRequestError as exc:
                if exc.err_code != _WRONG_LAST_SEQUENCE:
                    raise
                continue  # the relay already published a change of this vendor
            published += 1
        await conn.execute("INSERT INTO vendor_state_backfill (vendors) VALUES ($1)", published)
    log.info("vendor state backfilled", extra={"vendors": published})
    return published


async def backfill_until_done(pool: asyncpg.Pool, js: JetStreamContext, retry_seconds: float = 5.0) -> None:
    """The backfill as a background task: tried again while PostgreSQL or NATS is away."""
    while True:
        try:
            await backfill_vendor_state(pool, js)
            return
        except Exception as exc:
            log.warning("vendor state backfill failed; retrying", extra={"error": repr(exc)})
            await asyncio.sleep(retry_seconds)
