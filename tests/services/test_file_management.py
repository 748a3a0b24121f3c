"""file-management against real PostgreSQL and a real directory: uploads checked by content and size,
downloads with validators, owner-only delete, and an upload cut off mid-way leaving nothing behind."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from services.common.auth import TokenIssuer
from services.file_management.app import create_app
from services.file_management.conditional import not_modified
from services.file_management.settings import Settings
from services.file_management.storage import DirectoryStorage

LIMIT = 64 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
PDF = b"%PDF-1.7\n" + os.urandom(500)
MULTIPART = "multipart/form-data; boundary=venta-boundary"


class Files:
    def __init__(
        self, http: httpx.AsyncClient, issuer: TokenIssuer, db_url: str, storage: DirectoryStorage
    ) -> None:
        self.http, self.issuer, self.db_url, self.storage = http, issuer, db_url, storage

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(user, 'vendor')}"}

    async def upload(self, user: str, name: str, data: bytes, declared: str = "image/png") -> httpx.Response:
        return await self.http.post(
            "/api/files", files={"file": (name, data, declared)}, headers=self.auth(user)
        )

    async def rows(self) -> int:
        return int(await self.sql("SELECT count(*) FROM files"))

    async def sql(self, query: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.db_url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    def stored(self) -> list[Path]:
        return sorted(
            p for p in self.storage.root.rglob("*") if p.is_file() and not p.name.startswith(".health")
        )


@pytest.fixture
async def start_files(
    new_database: Callable[[], Awaitable[str]],
    public_pem: str,
    signing_seed: str,
    serve: Callable[[Any], Awaitable[str]],
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[Files]]]:
    """``await start_files(**settings)``: file-management on a fresh database and directory."""
    clients: list[httpx.AsyncClient] = []

    async def start(**overrides: Any) -> Files:
        db_url = await new_database()
        settings = Settings(
            **{
                "database_url": db_url,
                "jwt_public_key": public_pem,
                "storage_dir": tmp_path / f"files-{len(clients)}",
                "file_max_bytes": LIMIT,
                **overrides,
            }
        )
        http = httpx.AsyncClient(base_url=await serve(create_app(settings)), timeout=10)
        clients.append(http)
        return Files(http, TokenIssuer(signing_seed, 900), db_url, DirectoryStorage(settings.storage_dir))

    yield start
    for http in clients:
        await http.aclose()


@pytest.fixture
async def files(start_files: Callable[..., Awaitable[Files]]) -> Files:
    return await start_files()


async def test_upload_then_download_with_validators(files: Files) -> None:
    resp = await files.upload("alice", "../../etc/stall.png", PNG, declared="text/plain")
    assert resp.status_code == 201, resp.text
    meta = resp.json()
    assert meta["content_type"] == "image/png" and meta["size_bytes"] == len(PNG)
    assert meta["sha256"] == hashlib.sha256(PNG).hexdigest() and meta["filename"] == "stall.png"
    got = await files.http.get(meta["content_url"], headers=files.auth("bob"))
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == str(len(PNG))
    assert got.headers["etag"] == f'"{meta["sha256"]}"'
    cached = await files.http.get(
        meta["content_url"], headers={**files.auth("bob"), "If-None-Match": got.headers["etag"]}
    )
    assert cached.status_code == 304 and cached.content == b""
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=1), usegmt=True)
    earlier = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    assert (
        await files.http.get(meta["content_url"], headers={**files.auth("bob"), "If-Modified-Since": later})
    ).status_code == 304
    assert (
        await files.http.get(meta["content_url"], headers={**files.auth("bob"), "If-Modified-Since": earlier})
    ).status_code == 200
    assert (await files.http.get(f"/api/files/{meta['id']}", headers=files.auth("bob"))).json()["id"] == meta[
        "id"
    ]
    pdf = await files.upload("alice", "menu.txt", PDF, declared="text/plain")
    assert pdf.status_code == 201 and pdf.json()["content_type"] == "application/pdf"
    listed = (await files.http.get("/api/files", headers=files.auth("alice"))).json()
    assert {f["id"] for f in listed} == {meta["id"], pdf.json()["id"]}
    assert (await files.http.get("/api/files", headers=files.auth("bob"))).json() == []


def test_if_none_match_takes_precedence_over_if_modified_since() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    later = "Fri, 02 Jan 2026 00:00:00 GMT"
    assert not_modified('"abc"', created, '"x", W/"abc"', None)
    assert not not_modified('"abc"', created, '"other"', later)
    assert not_modified('"abc"', created, None, later)
    assert not not_modified('"abc"', created, None, "not a date")


async def test_bad_uploads_are_refused_and_leave_nothing(files: Files) -> None:
    cases = [
        (
            await files.upload("alice", "fake.png", b"just some text, not an image at all"),
            415,
            "content is not",
        ),
        (await files.upload("alice", "big.png", PNG + b"x" * LIMIT), 413, "limit"),
        (await files.upload("alice", "tiny.png", b"\x89PN"), 415, "content is not"),
        (
            await files.http.post(
                "/api/files", data={"note": "x"}, files={"other": ("a", PNG)}, headers=files.auth("alice")
            ),
            422,
            "'file'",
        ),
        (
            await files.http.post(
                "/api/files", content=PNG, headers={**files.auth("alice"), "Content-Type": "image/png"}
            ),
            415,
            "multipart",
        ),
        (await files.http.post("/api/files", files={"file": ("a.png", PNG)}), 401, "token"),
        (
            await files.http.post(  # refused from its Content-Length, before the body is read
                "/api/files",
                content=b"x" * LIMIT * 4,
                headers={**files.auth("alice"), "Content-Type": MULTIPART},
            ),
            413,
            "limit",
        ),
    ]
    for resp, status, reason in cases:
        assert resp.status_code == status and reason in resp.text, (status, resp.text)
    assert await files.rows() == 0 and files.stored() == []
    assert (await files.http.get("/api/files/not-a-uuid", headers=files.auth("a"))).status_code == 422
    missing = "/api/files/00000000-0000-0000-0000-000000000000/content"
    assert (await files.http.get(missing, headers=files.auth("a"))).status_code == 404


async def test_only_the_owner_deletes_and_the_content_goes_with_the_row(files: Files) -> None:
    meta = (await files.upload("alice", "a.png", PNG)).json()
    one = f"/api/files/{meta['id']}"
    assert (await files.http.delete(one, headers=files.auth("bob"))).status_code == 403
    assert (await files.http.delete(one)).status_code == 401
    assert len(files.stored()) == 1
    assert (await files.http.delete(one, headers=files.auth("alice"))).status_code == 204
    assert (await files.http.get(f"{one}/content", headers=files.auth("alice"))).status_code == 404
    assert (await files.http.delete(one, headers=files.auth("alice"))).status_code == 404
    assert await files.rows() == 0 and files.stored() == []


async def test_upload_cut_off_midway_leaves_no_file_and_no_row(files: Files) -> None:
    base = urlsplit(str(files.http.base_url))
    head = (
        b'--venta-boundary\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    token = files.auth("alice")["Authorization"]
    request = (
        f"POST /api/files HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
        f"Content-Type: {MULTIPART}\r\nContent-Length: {LIMIT}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(base.hostname, base.port)
    writer.write(request + head + PNG[:2000])
    await writer.drain()
    deadline = time.monotonic() + 10
    while not files.storage.leftovers():  # the server is mid-way: a temp file holds what arrived
        assert time.monotonic() < deadline, "the upload never started writing"
        await asyncio.sleep(0.02)
    writer.close()  # the client dies before sending the rest
    await writer.wait_closed()
    while files.storage.leftovers():
        assert time.monotonic() < deadline, "the temp file of the cut-off upload was left behind"
        await asyncio.sleep(0.02)
    assert files.stored() == [] and await files.rows() == 0
    reader.feed_eof()


async def test_upload_count_quota_holds_over_the_window_even_when_files_are_deleted(
    start_files: Callable[..., Awaitable[Files]],
) -> None:
    files = await start_files(file_quota_uploads=3, file_quota_window_seconds=600)
    made = [(await files.upload("alice", f"{i}.png", PNG)).json() for i in range(3)]
    assert all("id" in meta for meta in made)
    over = await files.upload("alice", "4.png", PNG)
    assert over.status_code == 429
    assert over.json()["detail"].startswith("upload quota exceeded: 3 of 3 uploads per 600 s")
    assert 1 <= int(over.headers["retry-after"]) <= 600
    # Deleting a file frees its space but not its place in the quota: no delete-and-upload loop.
    one = f"/api/files/{made[0]['id']}"
    assert (await files.http.delete(one, headers=files.auth("alice"))).status_code == 204
    assert (await files.upload("alice", "5.png", PNG)).status_code == 429
    assert (await files.upload("bob", "b.png", PNG)).status_code == 201  # a quota per user
    assert await files.rows() == 3 and len(files.stored()) == 3
    # Once the window has moved past those uploads, alice may upload again.
    await files.sql("UPDATE upload_ledger SET created_at = created_at - interval '601 seconds'")
    assert (await files.upload("alice", "6.png", PNG)).status_code == 201


async def test_upload_byte_quota_stops_the_body_that_would_overrun_it(
    start_files: Callable[..., Awaitable[Files]],
) -> None:
    files = await start_files(file_quota_bytes=8000, file_quota_window_seconds=600)
    whole = await files.upload("alice", "big.png", PNG + os.urandom(6000))
    assert whole.status_code == 413  # larger than the whole quota: waiting would not help
    assert "upload quota of 8000 bytes" in whole.json()["detail"] and "retry-after" not in whole.headers
    for name in ("a.png", "b.png"):
        assert (await files.upload("alice", name, PNG)).status_code == 201
    third = await files.upload("alice", "c.png", PNG)  # 2 x 3008 used: 1984 bytes left
    assert third.status_code == 429
    assert "upload quota exceeded: 6016 of 8000 bytes used per 600 s" in third.json()["detail"]
    assert int(third.headers["retry-after"]) >= 1
    assert await files.rows() == 2 and len(files.stored()) == 2 and files.storage.leftovers() == []
    assert (await files.upload("alice", "menu.pdf", PDF)).status_code == 201  # what still fits, fits


async def test_concurrent_uploads_cannot_overrun_the_quota_together(
    start_files: Callable[..., Awaitable[Files]],
) -> None:
    files = await start_files(file_quota_uploads=3)
    results = await asyncio.gather(*(files.upload("alice", f"{i}.png", PNG) for i in range(8)))
    assert sorted(r.status_code for r in results) == [201] * 3 + [429] * 5
    assert await files.rows() == 3 and len(files.stored()) == 3 and files.storage.leftovers() == []
