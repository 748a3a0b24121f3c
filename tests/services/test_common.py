"""The shared library against real servers: settings, migrations, health, metrics, request ids, errors."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import APIRouter, Form
from pydantic import BaseModel

from services.common.app import build_app
from services.common.deps import DbPool
from services.common.inputs import NulGuard
from services.common.logs import JsonFormatter, request_id_var
from services.common.metrics import sample_value
from services.common.migrations import MigrationError, apply_migrations
from services.common.settings import (
    DatabaseSettings,
    JwtSigningSettings,
    NatsSettings,
    RedisSettings,
    SettingsError,
    load_settings,
)


class DemoSettings(DatabaseSettings, RedisSettings, NatsSettings):
    pass


class Item(BaseModel):
    name: str
    qty: int


class Note(BaseModel):
    title: str
    tags: list[str] = []
    meta: dict[str, str] = {}


def demo_router() -> APIRouter:
    router = APIRouter()

    @router.post("/notes/{folder}")
    async def post_note(folder: str, note: Note, pool: DbPool, q: str = "") -> dict[str, str]:
        # PostgreSQL refuses a NUL in text: without the guard this is a 500.
        stored = await pool.fetchval(
            "SELECT $1::text || $2::text || $3::text || array_to_string($4::text[], ',')",
            folder,
            q,
            note.title,
            note.tags,
        )
        return {"stored": stored}

    @router.post("/form")
    async def post_form(title: Annotated[str, Form()], pool: DbPool) -> dict[str, str]:
        return {"stored": await pool.fetchval("SELECT $1::text", title)}

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @router.post("/items")
    async def post_item(item: Item) -> Item:
        return item

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return router


def test_missing_and_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_NAME", "demo")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("NATS_SERVERS", "nats://a:4222, nats://b:4222")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SettingsError, match="DATABASE_URL: is required but not set"):
        load_settings(DemoSettings)
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    monkeypatch.setenv("DB_POOL_MIN", "20")
    with pytest.raises(SettingsError, match=r"DATABASE_URL: .*postgresql://"):
        load_settings(DemoSettings)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    with pytest.raises(SettingsError, match=r"DB_POOL_MIN \(20\) exceeds DB_POOL_MAX \(10\)"):
        load_settings(DemoSettings)
    monkeypatch.setenv("DB_POOL_MIN", "2")
    settings = load_settings(DemoSettings)
    assert settings.nats_servers == ["nats://a:4222", "nats://b:4222"]
    assert (settings.db_pool_min, settings.db_pool_max, settings.redis_max_retries) == (2, 10, 3)
    monkeypatch.setenv("NATS_SERVERS", "http://x")
    with pytest.raises(SettingsError, match="NATS_SERVERS"):
        load_settings(DemoSettings)


def test_signing_seed_must_match_public_key(signing_seed: str, public_pem: str) -> None:
    other = load_settings(
        JwtSigningSettings, service_name="x", jwt_signing_seed=signing_seed, jwt_public_key=public_pem
    )
    assert other.jwt_public_key == public_pem
    with pytest.raises(SettingsError, match=r"JWT_SIGNING_SEED: .*32 bytes") as info:
        load_settings(
            JwtSigningSettings, service_name="x", jwt_signing_seed="c2hvcnQ=", jwt_public_key=public_pem
        )
    assert "c2hvcnQ" not in str(info.value)  # the secret value is never echoed
    with pytest.raises(SettingsError, match=r"JWT_PUBLIC_KEY: .*PEM"):
        load_settings(JwtSigningSettings, service_name="x", jwt_signing_seed=signing_seed, jwt_public_key="x")


async def test_migrations_apply_once_under_concurrency(new_database: Any, tmp_path: Path) -> None:
    url = await new_database()
    (tmp_path / "0001_create.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "0002_seed.sql").write_text("INSERT INTO things VALUES (1);")

    async def replica() -> list[int]:
        conn = await asyncpg.connect(url)
        try:
            return await apply_migrations(conn, "demo", tmp_path)
        finally:
            await conn.close()

    results = await asyncio.gather(*(replica() for _ in range(5)))
    assert sorted(map(tuple, results)) == [(), (), (), (), (1, 2)]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM things") == 1
        (tmp_path / "0002_seed.sql").write_text("INSERT INTO things VALUES (2);")
        with pytest.raises(MigrationError, match="0002_seed changed after it was applied"):
            await apply_migrations(conn, "demo", tmp_path)
        (tmp_path / "0002_seed.sql").write_text("INSERT INTO things VALUES (1);")
        (tmp_path / "0003_bad.sql").write_text("INSERT INTO things VALUES (3); SELECT nonsense;")
        with pytest.raises(asyncpg.UndefinedColumnError):
            await apply_migrations(conn, "demo", tmp_path)
        # The failed migration left nothing behind: its insert rolled back with it.
        assert await conn.fetchval("SELECT count(*) FROM things") == 1
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 2
    finally:
        await conn.close()


async def _demo_app(new_database: Any, redis_url: str, nats_url: str, **extra: Any) -> Any:
    settings = DemoSettings(
        service_name="demo",
        database_url=await new_database(),
        redis_url=redis_url,
        nats_servers=[nats_url],
        **extra,
    )
    return build_app(settings, title="demo", routers=[demo_router()])


async def test_health_metrics_request_id_and_errors(
    new_database: Any, redis_url: str, nats_url: str, serve_service: Any
) -> None:
    url, internal_url = await serve_service(await _demo_app(new_database, redis_url, nats_url))
    async with (
        httpx.AsyncClient(base_url=url) as client,
        httpx.AsyncClient(base_url=internal_url) as internal,
    ):
        live = await internal.get("/health/live")
        assert live.status_code == 200 and live.json() == {"status": "alive"}
        ready = await internal.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"postgres", "redis", "nats"}
        full = (await internal.get("/health")).json()
        assert full["service"] == "demo" and full["status"] == "ready"

        labels = {"method": "GET", "path": "/items/{item_id}", "status": "200"}
        before = sample_value("http_requests_total", labels)
        got = await client.get("/items/7", headers={"X-Request-ID": "abc-123"})
        assert got.headers["x-request-id"] == "abc-123"
        fresh = await client.get("/items/8", headers={"X-Request-ID": "bad id {with} spaces"})
        assert len(fresh.headers["x-request-id"]) == 32  # replaced by a generated id
        after = sample_value("http_requests_total", labels)
        assert after - before == 2
        metrics = (await internal.get("/metrics")).text
        assert 'http_request_duration_seconds_count{method="GET",path="/items/{item_id}"}' in metrics
        assert 'path="/items/7"' not in metrics

        bad = await client.post("/items", json={"name": "x", "qty": "many"})
        assert bad.status_code == 422
        assert bad.json()["fields"][0]["field"] == "qty" and "integer" in bad.json()["detail"]
        not_json = await client.post("/items", content=b"{", headers={"content-type": "application/json"})
        assert not_json.status_code == 422
        missing = await client.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        boom = await client.get("/boom")
        assert boom.status_code == 500
        assert boom.json()["detail"] == "internal error" and "hunter2" not in boom.text


async def test_internal_endpoints_are_only_on_the_internal_port_and_docs_only_when_asked(
    new_database: Any, redis_url: str, nats_url: str, serve_service: Any
) -> None:
    for docs in (False, True):
        app = await _demo_app(new_database, redis_url, nats_url, api_docs=docs)
        url, internal_url = await serve_service(app)
        async with httpx.AsyncClient() as client:
            for path in ("/health", "/health/live", "/health/ready", "/metrics", "/docs", "/openapi.json"):
                on_api = await client.get(url + path)
                assert on_api.status_code == 404 and on_api.json()["error"] == "not_found", path
            assert (await client.get(internal_url + "/metrics")).status_code == 200
            schema = await client.get(internal_url + "/openapi.json")
            assert schema.status_code == (200 if docs else 404)
            assert (await client.get(internal_url + "/docs")).status_code == (200 if docs else 404)
            if docs:
                assert "/items/{item_id}" in schema.json()["paths"]  # the API's schema, not the probes'
            # No slash redirects: a Location would name the address the request came to.
            slash = await client.get(url + "/items/7/", follow_redirects=False)
            assert slash.status_code == 404 and "location" not in slash.headers


def test_internal_port_must_differ_from_the_api_port() -> None:
    with pytest.raises(SettingsError, match=r"INTERNAL_PORT \(8000\) must differ from PORT \(8000\)"):
        load_settings(
            DemoSettings,
            service_name="demo",
            database_url="postgresql://h/db",
            redis_url="redis://h/0",
            nats_servers="nats://h:4222",
            internal_port=8000,
        )


async def test_nul_anywhere_in_a_request_is_422_naming_the_field_never_a_500(
    new_database: Any, redis_url: str, nats_url: str, serve: Any
) -> None:
    url = await serve(await _demo_app(new_database, redis_url, nats_url))
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("/notes/inbox", {"json": {"title": "a\u0000b"}}, "body", "title"),
        ("/notes/inbox", {"json": {"title": "t", "tags": ["ok", "b\u0000"]}}, "body", "tags.1"),
        ("/notes/inbox", {"json": {"title": "t", "meta": {"k\u0000": "v"}}}, "body", "meta.k\\u0000"),
        ("/notes/in%00box", {"json": {"title": "t"}}, "path", "folder"),
        ("/notes/inbox?q=a%00b", {"json": {"title": "t"}}, "query", "q"),
        ("/form", {"data": {"title": "a\u0000b"}}, "body", "title"),
    ]
    async with httpx.AsyncClient(base_url=url) as client:
        for path, body, where, field in cases:
            refused = await client.post(path, **body)
            assert refused.status_code == 422, (path, body, refused.text)
            assert refused.json()["fields"] == [
                {"field": field, "in": where, "reason": "must not contain the NUL character (\\u0000)"}
            ]
        # An escaped backslash is text like any other, and so is a body that is not JSON.
        literal = await client.post(
            "/notes/inbox", content=b'{"title": "a\\\\u0000b"}', headers={"content-type": "application/json"}
        )
        assert literal.status_code == 200 and literal.json()["stored"] == "inboxa\\u0000b"
        assert (await client.post("/notes/inbox", json={"title": "fine", "tags": ["x"]})).json() == {
            "stored": "inboxfinex"
        }
    # A NUL in a header never reaches a service: the HTTP parser refuses the request.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(b"GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Note: a\x00b\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 400")
    writer.close()
    # Without the guard, the store's refusal is what the client would get.
    bare = await _demo_app(new_database, redis_url, nats_url)
    bare.user_middleware = [m for m in bare.user_middleware if m.cls is not NulGuard]
    async with httpx.AsyncClient(base_url=await serve(bare)) as client:
        assert (await client.post("/notes/inbox", json={"title": "a\u0000b"})).status_code == 500


async def test_ready_turns_503_when_redis_stops_and_recovers(
    new_database: Any, nats_url: str, private_server: Any, serve_service: Any
) -> None:
    redis = private_server("redis")
    _, internal_url = await serve_service(await _demo_app(new_database, redis.url, nats_url))
    async with httpx.AsyncClient(base_url=internal_url, timeout=15) as client:
        assert (await client.get("/health/ready")).status_code == 200
        redis.stop()
        down = await client.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["failed"] == ["redis"]
        assert down.json()["checks"]["postgres"]["ok"] is True
        assert (await client.get("/health/live")).status_code == 200  # liveness ignores dependencies
        redis.start()
        for _ in range(50):
            if (await client.get("/health/ready")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("readiness did not recover after Redis came back")


def test_json_logs_carry_request_id_and_redact_secrets() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("demo"))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    token = request_id_var.set("rid-1")
    try:
        logger.warning(
            "calling with Authorization: Bearer abc.def.ghi to postgresql://u:hunter2@db/x",
            extra={"password": "hunter2", "refresh_token": "zzz", "user": "ann"},
        )
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)
    line = orjson.loads(stream.getvalue())
    assert line["request_id"] == "rid-1" and line["service"] == "demo" and line["user"] == "ann"
    assert "hunter2" not in stream.getvalue() and "abc.def.ghi" not in stream.getvalue()
    assert line["password"] == "[redacted]" and line["refresh_token"] == "[redacted]"
