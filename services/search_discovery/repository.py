"""Full-text search over the read model (PostgreSQL tsvector, weighted ranking)."""

from __future__ import annotations

import asyncpg

_MATCH = """
    NOT d.deleted AND d.active
    AND ($1 = '' OR d.document @@ websearch_to_tsquery('english', $1))
    AND ($2::text IS NULL OR d.category = $2)
"""


async def search(
    pool: asyncpg.Pool, text: str, category: str | None, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    rows = await pool.fetch(
        f"""SELECT d.vendor_id AS id, d.name, d.category, d.description,
                   CASE WHEN $1 = '' THEN 0
                        ELSE ts_rank_cd(d.document, websearch_to_tsquery('english', $1)) END AS rank
            FROM vendor_documents d WHERE {_MATCH}
            ORDER BY rank DESC, d.name, d.vendor_id LIMIT $3 OFFSET $4""",
        text,
        category,
        limit,
        offset,
    )
    total = await pool.fetchval(f"SELECT count(*) FROM vendor_documents d WHERE {_MATCH}", text, category)
    return rows, int(total)
