"""/api/files: upload (owner = caller), list own, metadata, download with validators, owner-only delete.

Reads are open to any signed-in user (vendor pictures and menus are shown to customers); changes
are the owner's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Annotated
from urllib.parse import quote

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from services.common.deps import CurrentUser, DbPool, app_settings
from services.file_management import quota
from services.file_management.conditional import etag, last_modified, not_modified
from services.file_management.schemas import FileOut
from services.file_management.settings import Settings
from services.file_management.storage import StorageBackend
from services.file_management.upload import UploadRejected, receive

log = logging.getLogger("venta.files")
router = APIRouter(prefix="/api/files", tags=["files"])
Config = Annotated[Settings, Depends(app_settings)]
_COLUMNS = "id, owner_id, filename, content_type, size_bytes, sha256, created_at"
# Multipart framing around the file: boundaries and part headers, generously.
_FRAMING_BYTES = 16 * 1024


async def get_storage(request: Request) -> StorageBackend:
    storage: StorageBackend = request.app.state.storage
    return storage


Storage = Annotated[StorageBackend, Depends(get_storage)]


def _out(row: asyncpg.Record) -> FileOut:
    fields = {k: row[k] for k in FileOut.model_fields if k != "content_url"}
    return FileOut(**fields, content_url=f"/api/files/{row['id']}/content")


async def _row(pool: asyncpg.Pool, file_id: uuid.UUID) -> asyncpg.Record:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM files WHERE id = $1", file_id)
    if row is None:
        raise HTTPException(404, "file not found")
    return row


def _refused(exc: UploadRejected) -> HTTPException:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return HTTPException(exc.status, exc.reason, headers=headers)


@router.post("", status_code=201, response_model=FileOut, responses={413: {}, 415: {}, 429: {}})
async def upload(
    request: Request, user: CurrentUser, pool: DbPool, storage: Storage, settings: Config
) -> FileOut:
    """Multipart upload with one part named ``file``; the type is taken from the content itself.
    Each user may upload FILE_QUOTA_UPLOADS files and FILE_QUOTA_BYTES bytes per window (429 with
    Retry-After beyond that)."""
    used = await quota.usage(pool, user.user_id, settings.file_quota_window_seconds)
    refused = quota.refusal(used, settings)
    if refused is not None:
        raise _refused(refused)
    max_bytes, too_large = quota.size_limit(used, settings)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _FRAMING_BYTES:
        raise _refused(too_large)
    file_id = uuid.uuid4()
    pending = storage.begin(str(file_id))
    published = False
    try:
        got = await receive(
            request.stream(), request.headers.get("content-type"), pending, max_bytes, too_large
        )
        async with pool.acquire() as conn, conn.transaction():
            await quota.record(conn, user.user_id, got.size, settings)
            row = await conn.fetchrow(
                f"INSERT INTO files (id, owner_id, filename, content_type, size_bytes, sha256) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
                file_id,
                user.user_id,
                got.filename,
                got.content_type,
                got.size,
                got.sha256,
            )
            # Content becomes durable and visible before the row commits: a crash in between leaves
            # an unreferenced file (harmless), never a row without its content.
            await asyncio.to_thread(pending.publish)
            published = True
    except UploadRejected as exc:
        raise _refused(exc) from None
    except ClientDisconnect:
        log.info("upload cut off by the client", extra={"file_id": str(file_id)})
        raise HTTPException(400, "upload interrupted") from None
    except BaseException:
        if published:  # the commit failed after the rename
            await asyncio.to_thread(storage.delete, str(file_id))
        raise
    finally:
        await asyncio.to_thread(pending.abort)
    return _out(row)


@router.get("", response_model=list[FileOut])
async def list_own(user: CurrentUser, pool: DbPool) -> list[FileOut]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM files WHERE owner_id = $1 ORDER BY created_at DESC LIMIT 500", user.user_id
    )
    return [_out(row) for row in rows]


@router.get("/{file_id}", response_model=FileOut)
async def metadata(file_id: uuid.UUID, _: CurrentUser, pool: DbPool) -> FileOut:
    return _out(await _row(pool, file_id))


@router.get("/{file_id}/content", responses={200: {"content": {"application/octet-stream": {}}}, 304: {}})
async def download(
    file_id: uuid.UUID,
    _: CurrentUser,
    pool: DbPool,
    storage: Storage,
    if_none_match: Annotated[str | None, Header()] = None,
    if_modified_since: Annotated[str | None, Header()] = None,
) -> Response:
    row = await _row(pool, file_id)
    tag = etag(row["sha256"])
    headers = {
        "ETag": tag,
        "Last-Modified": last_modified(row["created_at"]),
        "Cache-Control": "private, no-cache",
    }
    if not_modified(tag, row["created_at"], if_none_match, if_modified_since):
        return Response(status_code=304, headers=headers)
    key = str(file_id)
    if not await asyncio.to_thread(storage.exists, key):
        log.error("file row without content", extra={"file_id": key})
        raise HTTPException(404, "file content is missing")
    headers |= {
        "Content-Length": str(row["size_bytes"]),
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(row['filename'], safe='')}",
    }
    return StreamingResponse(storage.read(key), media_type=row["content_type"], headers=headers)


@router.delete("/{file_id}", status_code=204)
async def delete(file_id: uuid.UUID, user: CurrentUser, pool: DbPool, storage: Storage) -> Response:
    row = await _row(pool, file_id)
    if row["owner_id"] != user.user_id:
        raise HTTPException(403, "only the owner may delete this file")
    await pool.execute("DELETE FROM files WHERE id = $1 AND owner_id = $2", file_id, user.user_id)
    # After the row is gone nobody can reach the content; a failed unlink only leaves an orphan.
    with contextlib.suppress(OSError):
        await asyncio.to_thread(storage.delete, str(file_id))
    return Response(status_code=204)
