"""SQL for vendors; every change also records its event in the same transaction (see outbox.py)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.common.replica import Reader
from services.vendor_management.outbox import record_event

COLUMNS = "id, owner_id, name, category, description, active, version, created_at, updated_at"
UPDATABLE = ("name", "category", "description", "active")


class NotFound(Exception):
    pass


class NotOwner(Exception):
    pass


def event_data(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    return {key: str(value) if isinstance(value, uuid.UUID) else value for key, value in data.items()}


async def create_vendor(pool: asyncpg.Pool, owner_id: uuid.UUID, fields: dict[str, Any]) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        row: asyncpg.Record = await conn.fetchrow(
            f"INSERT INTO vendors (id, owner_id, name, category, description, active)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}",
            uuid.uuid4(),
            owner_id,
            fields["name"],
            fields["category"],
            fields["description"],
            fields["active"],
        )
        await record_event(conn, "vendor.created", event_data(row))
    return row


async def _lock_owned(conn: asyncpg.Connection, vendor_id: uuid.UUID, owner_id: uuid.UUID) -> None:
    owner = await conn.fetchval("SELECT owner_id FROM vendors WHERE id = $1 FOR UPDATE", vendor_id)
    if owner is None:
        raise NotFound(vendor_id)
    if owner != owner_id:
        raise NotOwner(vendor_id)


async def update_vendor(
    pool: asyncpg.Pool, vendor_id: uuid.UUID, owner_id: uuid.UUID, changes: dict[str, Any]
) -> asyncpg.Record:
    columns = [name for name in UPDATABLE if name in changes]
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
    async with pool.acquire() as conn, conn.transaction():
        await _lock_owned(conn, vendor_id, owner_id)
        row: asyncpg.Record = await conn.fetchrow(
            f"UPDATE vendors SET {assignments}, version = version + 1, updated_at = now()"
            f" WHERE id = $1 RETURNING {COLUMNS}",
            vendor_id,
            *(changes[name] for name in columns),
        )
        await record_event(conn, "vendor.updated", event_data(row))
    return row


async def delete_vendor(pool: asyncpg.Pool, vendor_id: uuid.UUID, owner_id: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _lock_owned(conn, vendor_id, owner_id)
        version = await conn.fetchval("DELETE FROM vendors WHERE id = $1 RETURNING version", vendor_id)
        # The tombstone's version is one past the last change, so it wins over any late update.
        data = {"id": str(vendor_id), "owner_id": str(owner_id), "version": version + 1}
        await record_event(conn, "vendor.deleted", data)


async def get_vendor(pool: asyncpg.Pool | Reader, vendor_id: uuid.UUID) -> asyncpg.Record | None:
    query = f"SELECT {COLUMNS} FROM vendors WHERE id = $1"
    row: asyncpg.Record | None = await pool.fetchrow(query, vendor_id)
    return row


async def list_vendors(
    pool: asyncpg.Pool | Reader, *, category: str | None, owner_id: uuid.UUID | None, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    where = "($1::text IS NULL OR category = $1) AND ($2::uuid IS NULL OR owner_id = $2)"
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM vendors WHERE {where} ORDER BY created_at, id LIMIT $3 OFFSET $4",
        category,
        owner_id,
        limit,
        offset,
    )
    total = await pool.fetchval(f"SELECT count(*) FROM vendors WHERE {where}", category, owner_id)
    return rows, int(total)
