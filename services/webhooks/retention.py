"""Deletes finished deliveries (delivered or dead) some days after they finished; their attempts go
with them (ON DELETE CASCADE). Pending deliveries are never touched. Deleted a batch at a time, so
no statement holds many row locks; every replica may run it (the deletes do not conflict)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from prometheus_client import Counter

log = logging.getLogger("venta.webhooks.retention")
PURGED = Counter("webhook_deliveries_purged_total", "Finished deliveries deleted after the retention period")
_BATCH = 1000
_PURGE = """
DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE status <> 'pending' AND finished_at < now() - make_interval(secs => $1)
    LIMIT $2
)
"""


async def purge_finished(pool: asyncpg.Pool, older_than_seconds: float) -> int:
    """Delete every delivery that finished more than ``older_than_seconds`` ago; returns how many."""
    total = 0
    while True:
        status = await pool.execute(_PURGE, older_than_seconds, _BATCH)
        deleted = int(status.rsplit(" ", 1)[-1])  # "DELETE <n>"
        total += deleted
        if deleted < _BATCH:
            break
    PURGED.inc(total)
    return total


async def run(pool: asyncpg.Pool, retention_days: float, every_seconds: float) -> None:
    while True:
        try:
            await purge_finished(pool, retention_days * 86400)
        except Exception as exc:  # database away: the next round catches up
            log.warning("purging old deliveries failed", extra={"error": str(exc)})
        await asyncio.sleep(every_seconds)
