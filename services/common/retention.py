"""Retention: rows past their keeping period deleted in batches, by a loop tied to the app's lifespan.

A service states what is old in one ``DELETE ... WHERE <key> IN (SELECT <key> ... LIMIT $n)``
statement (``$n`` the last parameter), and runs ``keep_deleting`` as a background task. Batches keep
each statement's locks few; every replica may run it, since the deletes do not conflict.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from prometheus_client import Counter

log = logging.getLogger("venta.retention")
BATCH = 1000


async def delete_in_batches(pool: asyncpg.Pool, statement: str, *args: Any) -> int:
    """Run ``statement`` (with ``args`` and the batch size) until a batch deletes fewer; returns the total."""
    total = 0
    while True:
        status = await pool.execute(statement, *args, BATCH)
        deleted = int(status.rsplit(" ", 1)[-1])  # "DELETE <n>"
        total += deleted
        if deleted < BATCH:
            return total


async def keep_deleting(
    pool: asyncpg.Pool, statement: str, older_than_seconds: float, every_seconds: float, counter: Counter
) -> None:
    """Every ``every_seconds``, delete what ``statement`` finds older than ``older_than_seconds``."""
    while True:
        try:
            counter.inc(await delete_in_batches(pool, statement, older_than_seconds))
        except Exception as exc:  # database away: the next round catches up
            log.warning("deleting old rows failed", extra={"error": str(exc)})
        await asyncio.sleep(every_seconds)
