"""Applying vendor events to the read model, idempotently and in version order.

Each event carries the vendor's ``version``. An upsert only takes effect when its version is newer
than the stored one, so a replayed event (same version) or a late, older one changes nothing, and a
``vendor.deleted`` event leaves a tombstone with the newest version.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

_UPSERT = """
INSERT INTO vendor_documents AS d
    (vendor_id, name, category, description, active, deleted, version, last_event, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (vendor_id) DO UPDATE SET
    name = EXCLUDED.name, category = EXCLUDED.category, description = EXCLUDED.description,
    active = EXCLUDED.active, deleted = EXCLUDED.deleted, version = EXCLUDED.version,
    last_event = EXCLUDED.last_event, updated_at = now()
WHERE d.version < EXCLUDED.version
"""


class BadEvent(ValueError):
    pass


def _fields(event: dict[str, Any]) -> tuple[Any, ...]:
    data = event["data"]
    try:
        vendor_id = uuid.UUID(str(data["id"]))
        version = int(data["version"])
        event_id = uuid.UUID(str(event["id"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise BadEvent(f"vendor event lacks a valid id/version: {exc}") from None
    if event["type"] == "vendor.deleted":
        return (vendor_id, "", "", "", False, True, version, event_id)
    if event["type"] not in ("vendor.created", "vendor.updated"):
        raise BadEvent(f"unexpected event type {event['type']!r}")
    try:
        return (
            vendor_id,
            str(data["name"]),
            str(data["category"]),
            str(data.get("description") or ""),
            bool(data.get("active", True)),
            False,
            version,
            event_id,
        )
    except KeyError as exc:
        raise BadEvent(f"vendor event lacks {exc}") from None


async def apply_event(pool: asyncpg.Pool, event: dict[str, Any]) -> bool:
    """Apply one vendor event; True when the read model changed."""
    status = await pool.execute(_UPSERT, *_fields(event))
    return bool(status.endswith(" 1"))
