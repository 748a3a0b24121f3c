"""Data-store outages heal without a restart: NATS away for longer than the guide's reconnect budget,
Redis and PostgreSQL stopped under live requests. Real servers, stopped and started mid-test."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import nats
from fastapi import APIRouter
from nats.js.api import StreamConfig

from localdev.servers import PostgresServer, Server, die_with_parent, free_port
from localdev.services import ROOT, Ports, create_databases, service_env, settings_class
from services.catalog import SERVICES
from services.common.app import build_app
from services.common.auth import TokenIssuer
from services.common.metrics import sample_value
from services.common.nats_client import VENDOR_STATE_STREAM, VENDORS_STREAM
from services.common.settings import DatabaseSettings, NatsSettings
from services.geolocation.app import create_app as create_geolocation
from services.geolocation.settings import Settings as GeoSettings
from services.vendor_management.app import create_app as create_vendors
from services.vendor_management.settings import Settings as VendorSettings
from tests.services.marketplace import bearer, eventually


class NatsOnly(NatsSettings):
    service_name: str = "nats-demo"


async def wait_status(client: httpx.AsyncClient, path: str, status: int, within: float) -> float:
    """Seconds until ``path`` answers ``status``; fails after ``within``."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if (await client.get(path)).status_code == status:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} did not answer {status} within {within} s")


async def test_nats_connection_outlives_an_outage_past_its_budget_and_shuts_down_cleanly_while_down(
    private_server: Callable[[str], Server],
) -> None:
    nats_server = private_server("nats")
    # Budget 5 x 0.3 s = 1.5 s: the outage below lasts four times that, which used to close the
    # connection for good (5 attempts 0.3 s apart).
    settings = NatsOnly(
        nats_servers=[nats_server.url], nats_max_reconnect_attempts=5, nats_reconnect_wait_seconds=0.3
    )
    app = build_app(settings, title="nats demo", routers=[APIRouter()])
    transport = httpx.ASGITransport(app=app.state.internal_app)  # probes and metrics
    # The lifespan is driven by hand so that an error while shutting down fails the test.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://demo") as client,
    ):
        assert (await client.get("/health/ready")).status_code == 200
        reconnects = sample_value("nats_reconnects_total")
        nats_server.stop()
        # A blip shorter than the budget does not take the pod out of its Service.
        blip = await client.get("/health/ready")
        assert blip.status_code == 200, blip.text
        await wait_status(client, "/health/ready", 503, within=5)
        report = (await client.get("/health/ready")).json()
        assert report["failed"] == ["nats"]
        assert "budget 1.5 s" in report["checks"]["nats"]["error"]
        metrics = (await client.get("/metrics")).text
        assert "nats_connected 0.0" in metrics and "nats_reconnect_budget_exceeded 1.0" in metrics
        assert sample_value("nats_disconnected_seconds") > 1.5
        assert (await client.get("/health/live")).status_code == 200
        await asyncio.sleep(4.5)  # six seconds down in all

        nats_server.start()
        healed = await wait_status(client, "/health/ready", 200, within=5)
        assert healed < 1.5  # reconnect attempts are at most 0.3 s apart
        assert sample_value("nats_reconnects_total") - reconnects == 1
        assert sample_value("nats_reconnect_budget_exceeded") == 0
        js = app.state.resources.js
        assert (await js.account_info()).streams >= 0  # JetStream answers on the same connection

        # Shutting down while NATS is away (leaving the block): nothing to drain, and no error.
        nats_server.stop()
        await wait_status(client, "/health/ready", 503, within=5)


async def test_redis_away_is_503_with_retry_after_on_geolocations_hot_paths(
    private_server: Callable[[str], Server],
    nats_url: str,
    public_pem: str,
    signing_seed: str,
    serve: Callable[[Any], Awaitable[str]],
) -> None:
    redis_server = private_server("redis")
    settings = GeoSettings(redis_url=redis_server.url, nats_servers=[nats_url], jwt_public_key=public_pem)
    url = await serve(create_geolocation(settings))
    auth = {"Authorization": f"Bearer {TokenIssuer(signing_seed, 900).issue('owner-1', 'vendor')}"}
    nearby = {"lat": 52.52, "lon": 13.4, "radius_m": 500}
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        assert (await client.get("/api/locations/nearby", params=nearby, headers=auth)).status_code == 200
        redis_server.stop()
        moved = await client.put("/api/locations/vendors/v-1", json={"lat": 52.52, "lon": 13.4}, headers=auth)
        found = await client.get("/api/locations/nearby", params=nearby, headers=auth)
        for resp in (moved, found):  # both go over the shared pipelined connection
            assert resp.status_code == 503, resp.text
            assert resp.headers["retry-after"] == "2"
            assert resp.json()["detail"] == "Redis is unavailable; retry shortly"
            assert str(redis_server.port) not in resp.text
        redis_server.start()
        assert (await client.get("/api/locations/nearby", params=nearby, headers=auth)).status_code == 200


async def test_postgres_away_is_503_with_retry_after(
    private_server: Callable[[str], Server],
    nats_url: str,
    public_pem: str,
    serve: Callable[[Any], Awaitable[str]],
) -> None:
    postgres = private_server("postgres")
    assert isinstance(postgres, PostgresServer)
    settings = VendorSettings(
        service_name="vendor-management",
        database_url=postgres.create_database("vendors"),
        nats_servers=[nats_url],
        jwt_public_key=public_pem,
        db_connect_timeout_seconds=2,
    )
    url = await serve(create_vendors(settings))
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        assert (await client.get("/vendors")).status_code == 200
        postgres.stop()
        for _ in range(2):  # a pooled connection the server dropped, or a refused new one
            down = await client.get("/vendors")
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "2" and "unavailable" in down.json()["detail"]
            assert str(postgres.port) not in down.text
        postgres.start()
        assert (await client.get("/vendors")).status_code == 200


async def test_redis_restarted_empty_gets_vendor_ownership_back_even_past_the_event_streams_age(
    private_server: Callable[[str], Server],
    new_database: Callable[[], Awaitable[str]],
    nats_url: str,
    public_pem: str,
    signing_seed: str,
    serve: Callable[[Any], Awaitable[str]],
) -> None:
    redis_server = private_server("redis")
    vendor_settings = VendorSettings(
        service_name="vendor-management",
        database_url=await new_database(),
        nats_servers=[nats_url],
        jwt_public_key=public_pem,
    )
    geo_settings = GeoSettings(redis_url=redis_server.url, nats_servers=[nats_url], jwt_public_key=public_pem)
    vendors_url = await serve(create_vendors(vendor_settings))
    geo_url = await serve(create_geolocation(geo_settings))
    issuer = TokenIssuer(signing_seed, 900)
    owner, other = str(uuid.uuid4()), str(uuid.uuid4())
    auth = {"Authorization": f"Bearer {issuer.issue(owner, 'vendor')}"}
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    # The vendor events are kept 7 days; here 1 s stands for it, so the vendors below were "last
    # changed longer ago than the stream keeps events" by the time Redis loses its data.
    short = StreamConfig(
        name=VENDORS_STREAM.name, subjects=list(VENDORS_STREAM.subjects), max_age=1.0, duplicate_window=0.5
    )
    await js.update_stream(short)
    async with (
        httpx.AsyncClient(base_url=vendors_url, timeout=10) as vendors,
        httpx.AsyncClient(base_url=geo_url, timeout=15) as geo,
    ):
        stall = {"name": "Night Market", "category": "food"}
        kept = (await vendors.post("/vendors", json=stall, headers=auth)).json()["id"]
        gone = (await vendors.post("/vendors", json=stall, headers=auth)).json()["id"]
        assert (await vendors.delete(f"/vendors/{gone}", headers=auth)).status_code == 204
        position = {"lat": 48.85, "lon": 2.35}

        async def moved(vendor: str, who: str = owner) -> int:
            headers = {"Authorization": f"Bearer {issuer.issue(who, 'vendor')}"}
            return (
                await geo.put(f"/api/locations/vendors/{vendor}", json=position, headers=headers)
            ).status_code

        await eventually(lambda: _is(moved(kept), 200), what="geolocation knowing the vendor")
        await eventually(lambda: _is(moved(gone), 404), what="geolocation seeing the deletion")

        async def aged_out() -> bool:
            return (await js.stream_info(VENDORS_STREAM.name)).state.messages == 0

        await eventually(aged_out, within=15, what="the vendor events aging out of VENDORS")
        assert (await js.stream_info(VENDOR_STATE_STREAM.name)).state.messages == 2

        redis_server.restart()  # no persistence: it comes back empty
        restarted = time.monotonic()
        statuses = []
        while (status := await moved(kept)) != 200:
            statuses.append(status)
            assert time.monotonic() - restarted < 10, f"owner still refused after 10 s: {statuses}"
            await asyncio.sleep(0.1)
        # Until the vendors are back the answer is "retry", never "vendor not found".
        assert set(statuses) <= {503}, statuses
        assert await moved(gone) == 404  # the deletion came back as well
        assert await moved(kept, who=other) == 403
    await nc.close()


async def _is(status: Awaitable[int], want: int) -> bool:
    return await status == want


NATS_SERVICES = {"vendor-management", "search-discovery", "geolocation", "real-time", "webhooks"}


async def test_every_service_heals_after_a_minute_without_nats_and_nothing_written_meanwhile_is_lost(
    private_server: Callable[[str], Server],
    postgres_admin_url: str,
    redis_url: str,
    signing_seed: str,
    tmp_path: Path,
) -> None:
    nats_server = private_server("nats")
    entries = list(SERVICES.values())
    ports = {entry.name: Ports(free_port(), free_port()) for entry in entries}
    urls = {"redis": redis_url, "nats": nats_server.url}
    with_db = [e for e in entries if issubclass(settings_class(e), DatabaseSettings)]
    databases = await create_databases(postgres_admin_url, [f"heal_{e.package}" for e in with_db])
    urls |= {f"db:{e.name}": databases[f"heal_{e.package}"] for e in with_db}
    procs: dict[str, asyncio.subprocess.Process] = {}
    logs = {entry.name: tmp_path / f"{entry.name}.log" for entry in entries}
    try:
        for entry in entries:  # the container command, with the environment infra gives each service
            env = service_env(entry, urls, ports, signing_seed, tmp_path)
            with logs[entry.name].open("wb") as out:
                procs[entry.name] = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "services",
                    entry.name,
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    preexec_fn=die_with_parent,
                )
        async with httpx.AsyncClient(timeout=5) as client:

            async def ready(name: str) -> int:
                try:
                    return (
                        await client.get(f"http://127.0.0.1:{ports[name].internal}/health/ready")
                    ).status_code
                except httpx.TransportError:
                    return 0

            async def all_ready() -> bool:
                return all(status == 200 for status in await asyncio.gather(*map(ready, SERVICES)))

            await eventually(all_ready, within=180, what="every service ready")
            gateway = f"http://127.0.0.1:{ports['api-gateway'].public}"
            token = bearer(TokenIssuer(signing_seed, 900).issue(str(uuid.uuid4()), "vendor"))

            nats_server.stop()
            stopped = time.monotonic()
            await asyncio.sleep(10)  # the outage budget (5 x 2 s)
            while True:  # then the services that need NATS say so; the others stay ready
                statuses = dict(zip(SERVICES, await asyncio.gather(*map(ready, SERVICES)), strict=True))
                if {name for name, status in statuses.items() if status != 200} == NATS_SERVICES:
                    break
                assert time.monotonic() - stopped < 20, statuses
                await asyncio.sleep(0.2)
            vendor_metrics = (
                await client.get(f"http://127.0.0.1:{ports['vendor-management'].internal}/metrics")
            ).text
            assert "nats_reconnect_budget_exceeded 1.0" in vendor_metrics
            name = f"Outage Bakery {uuid.uuid4().hex[:8]}"
            made = await client.post(
                f"{gateway}/api/vendors", json={"name": name, "category": "food"}, headers=token
            )
            assert made.status_code == 201, made.text  # written to its database and outbox
            full = (await client.get(f"http://127.0.0.1:{ports['vendor-management'].internal}/health")).json()
            assert full["details"]["outbox"]["pending"] == 1
            await asyncio.sleep(60 - (time.monotonic() - stopped))

            nats_server.start()
            back = time.monotonic()

            async def searchable() -> bool:
                found = await client.get(f"{gateway}/api/search/vendors", params={"q": name})
                return found.status_code == 200 and [h["name"] for h in found.json()["items"]] == [name]

            await eventually(searchable, within=5, what="the vendor made during the outage in search")
            await eventually(
                all_ready, within=15 - (time.monotonic() - back), what="every service ready again"
            )
            assert all(proc.returncode is None for proc in procs.values()), "no service restarted"
            assert (
                "nats_reconnects_total 1.0"
                in (await client.get(f"http://127.0.0.1:{ports['search-discovery'].internal}/metrics")).text
            )
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    for entry in entries:
        text = logs[entry.name].read_text(errors="replace")
        assert "Application shutdown complete." in text and "shutdown failed" not in text, entry.name
