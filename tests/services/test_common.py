"""The shared library against real servers: settings, migrations, health, metrics, request ids, errors."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from services.common.app import build_app
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


def demo_router() -> APIRouter:
    router = APIRouter()

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
