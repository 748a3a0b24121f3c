"""Which webhook rows retention deletes: finished deliveries (delivered or dead) some days after they
finished, their attempts with them (ON DELETE CASCADE). Pending deliveries are never touched."""

from __future__ import annotations

from prometheus_client import Counter

PURGED = Counter("webhook_deliveries_purged_total", "Finished deliveries deleted after the retention period")
PURGE = """
DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE status <> 'pending' AND finished_at < now() - make_interval(secs => $1)
    LIMIT $2
)
"""
