"""Per-user upload quota: at most so many uploads and bytes within a sliding window.

Usage is read from the upload ledger (kept even after a file is deleted). It is checked before the
body is read, bounds how much of the body is taken, and is checked again under a per-user lock in
the transaction that records the upload, so concurrent uploads cannot overrun it together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import asyncpg

from services.file_management.settings import Settings
from services.file_management.upload import UploadRejected

_USAGE = """
SELECT count(*) AS uploads, coalesce(sum(size_bytes), 0) AS bytes,
       extract(epoch FROM min(created_at) + make_interval(secs => $2) - now()) AS frees_in
FROM upload_ledger WHERE owner_id = $1 AND created_at > now() - make_interval(secs => $2)
"""


@dataclass(frozen=True)
class Usage:
    uploads: int
    bytes: int
    frees_in: float  # seconds until the oldest upload of the window leaves it (0: nothing in it)


async def usage(conn: asyncpg.Connection | asyncpg.Pool, owner: str, window_seconds: int) -> Usage:
    row = await conn.fetchrow(_USAGE, owner, float(window_seconds))
    return Usage(int(row["uploads"]), int(row["bytes"]), float(row["frees_in"] or 0))


def _over(usage: Usage, settings: Settings, what: str) -> UploadRejected:
    retry_after = max(1, math.ceil(usage.frees_in))
    window = settings.file_quota_window_seconds
    return UploadRejected(
        429, f"upload quota exceeded: {what} per {window} s; retry after {retry_after} s", retry_after
    )


def refusal(usage: Usage, settings: Settings, incoming_bytes: int = 0) -> UploadRejected | None:
    """Why one more upload of ``incoming_bytes`` is refused now, or None."""
    if usage.uploads >= settings.file_quota_uploads:
        return _over(usage, settings, f"{usage.uploads} of {settings.file_quota_uploads} uploads")
    if usage.bytes + incoming_bytes > settings.file_quota_bytes or usage.bytes >= settings.file_quota_bytes:
        return _over(usage, settings, f"{usage.bytes} of {settings.file_quota_bytes} bytes used")
    return None


def size_limit(usage: Usage, settings: Settings) -> tuple[int, UploadRejected]:
    """The most this upload may hold, and the error for one byte more: the file size limit (413), the
    bytes left of the quota (429, retry later), or, for a file larger than the whole quota, 413."""
    left = settings.file_quota_bytes - usage.bytes
    if settings.file_max_bytes <= left:
        return settings.file_max_bytes, UploadRejected(
            413, f"file exceeds the limit of {settings.file_max_bytes} bytes"
        )
    if usage.uploads == 0:
        return left, UploadRejected(
            413, f"file exceeds the upload quota of {settings.file_quota_bytes} bytes per window"
        )
    return left, _over(usage, settings, f"{usage.bytes} of {settings.file_quota_bytes} bytes used")


async def record(conn: asyncpg.Connection, owner: str, size: int, settings: Settings) -> None:
    """In the upload's transaction: check again under the owner's lock, then count the upload."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('upload-quota:' || $1))", owner)
    window = float(settings.file_quota_window_seconds)
    refused = refusal(await usage(conn, owner, settings.file_quota_window_seconds), settings, size)
    if refused is not None:
        raise refused
    await conn.execute(
        "DELETE FROM upload_ledger WHERE owner_id = $1 AND created_at <= now() - make_interval(secs => $2)",
        owner,
        window,
    )
    await conn.execute("INSERT INTO upload_ledger (owner_id, size_bytes) VALUES ($1, $2)", owner, size)
