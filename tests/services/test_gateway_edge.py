"""api-gateway at the edge: the client's address behind proxies, what the public port serves, upstream
addresses kept out of responses, and the upstream readiness view as a bounded internal endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

from services.api_gateway.app import create_app as create_gateway
from services.api_gateway.client_address import ClientAddress, parse_networks
from services.api_gateway.routes_table import ROUTES
from services.common.settings import SettingsError, load_settings
from tests.services.marketplace import Servers, bearer


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    nothing = ClientAddress(())
    assert nothing.resolve("10.0.0.5", "203.0.113.9") == "10.0.0.5"  # nothing trusted: the peer
    proxies = ClientAddress(parse_networks(["10.0.0.0/8", "fd00::/8"]))
    assert proxies.resolve("192.0.2.1", "203.0.113.9") == "192.0.2.1"  # forged by an untrusted peer
    assert proxies.resolve("10.0.0.5", "203.0.113.9") == "203.0.113.9"
    assert proxies.resolve("10.0.0.5", None) == "10.0.0.5"
    # The client wrote the first two; the last proxy appended what it saw; another proxy sits between.
    chain = "198.51.100.1, 198.51.100.2, 203.0.113.9, 10.1.2.3"
    assert proxies.resolve("10.0.0.5", chain) == "203.0.113.9"
    assert proxies.resolve("fd00::1", "2001:db8::7, fd00::2") == "2001:db8::7"
    assert proxies.resolve("::ffff:10.0.0.5", "203.0.113.9") == "203.0.113.9"  # IPv4-mapped peer
    assert proxies.resolve("10.0.0.5", "10.9.9.9, 10.1.1.1") == "10.9.9.9"  # all proxies: the first
    assert proxies.resolve("10.0.0.5", "garbage, 10.1.1.1") == "10.1.1.1"  # no address: the last proxy
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not an IP address or CIDR block"):
        parse_networks(["10.0.0.0/33"])


def test_trusted_proxy_setting_is_checked_at_load(servers: Servers) -> None:
    settings = servers.gateway_settings({}, trusted_proxy_cidrs="10.0.0.0/8, 192.168.1.7")
    assert [str(n) for n in settings.trusted_proxy_cidrs] == ["10.0.0.0/8", "192.168.1.7/32"]
    assert servers.gateway_settings({}).trusted_proxy_cidrs == ()  # nothing trusted by default
    fields = {f"upstream_{r.service.replace('-', '_')}": "http://x" for r in ROUTES}
    with pytest.raises(SettingsError, match=r"TRUSTED_PROXY_CIDRS: .*'10\.0\.0\.300'"):
        load_settings(
            type(settings),
            service_name="api-gateway",
            redis_url=servers.redis_url,
            jwt_public_key=servers.public_pem,
            trusted_proxy_cidrs="10.0.0.300",
            **fields,
        )


def stand_in() -> FastAPI:
    """search-discovery's place: shows the forwarded address, redirects, counts readiness checks."""
    app = FastAPI()
    app.state.ready_checks = 0

    @app.get("/search/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {"forwarded_for": request.headers.get("x-forwarded-for")}

    @app.get("/search/moved")
    async def moved(request: Request) -> RedirectResponse:
        # Built from the Host it was reached by, like Starlette's own slash redirect.
        return RedirectResponse(f"{request.base_url}search/echo?page=2", status_code=307)

    @app.get("/search/elsewhere")
    async def elsewhere() -> RedirectResponse:
        return RedirectResponse("https://docs.example.com/venta", status_code=302)

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        await asyncio.sleep(0.05)
        app.state.ready_checks += 1
        return {"status": "ready"}

    return app


async def test_rate_limits_and_logs_use_the_client_a_trusted_proxy_names(
    servers: Servers, serve: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    upstreams = {"search-discovery": await serve(stand_in())}
    limits: dict[str, Any] = {"rate_limit_requests": 2, "rate_limit_window_seconds": 60}
    untrusted = await serve(create_gateway(servers.gateway_settings(upstreams, **limits)))
    async with httpx.AsyncClient(base_url=untrusted) as gw:
        # A forged header from an untrusted peer changes nothing: one bucket, the peer's address.
        first = await gw.get("/api/search/echo", headers={"X-Forwarded-For": "198.51.100.1"})
        assert first.json()["forwarded_for"] == "127.0.0.1"
        assert (
            await gw.get("/api/search/echo", headers={"X-Forwarded-For": "198.51.100.2"})
        ).status_code == 200
        third = await gw.get("/api/search/echo", headers={"X-Forwarded-For": "198.51.100.3"})
        assert third.status_code == 429

    trusted = await serve(
        create_gateway(
            servers.gateway_settings(upstreams, trusted_proxy_cidrs="127.0.0.1/32, 10.0.0.0/8", **limits)
        )
    )
    async with httpx.AsyncClient(base_url=trusted) as gw:
        capsys.readouterr()
        ann = await gw.get("/api/search/echo", headers={"X-Forwarded-For": "203.0.113.10"})
        assert ann.json()["forwarded_for"] == "203.0.113.10"  # services see the client, once
        logged = [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        access = [entry for entry in logged if entry["logger"] == "venta.access"]
        assert [entry["client"] for entry in access] == ["203.0.113.10"]
        # Ann forges a first hop; the proxy appended her real address: still her bucket.
        forged = {"X-Forwarded-For": "198.51.100.99, 203.0.113.10"}
        assert (await gw.get("/api/search/echo", headers=forged)).status_code == 200
        assert (
            await gw.get("/api/search/echo", headers={"X-Forwarded-For": "203.0.113.10"})
        ).status_code == 429
        # Bob, behind the same proxy (and a second proxy in 10/8), has a bucket of his own.
        bob = await gw.get("/api/search/echo", headers={"X-Forwarded-For": "203.0.113.20, 10.4.4.4"})
        assert bob.status_code == 200 and bob.json()["forwarded_for"] == "203.0.113.20"


async def test_public_port_serves_only_the_api_and_names_no_upstream(
    servers: Servers, serve: Any, serve_service: Any
) -> None:
    search = await serve(stand_in())
    app = create_gateway(servers.gateway_settings({"search-discovery": search}, api_docs=True))
    gateway_url, internal_url = await serve_service(app)
    async with (
        httpx.AsyncClient(base_url=gateway_url) as gw,
        httpx.AsyncClient(base_url=internal_url) as internal,
    ):
        for path in (
            "/health",
            "/health/live",
            "/health/ready",
            "/health/upstreams",
            "/metrics",
            "/docs",
            "/openapi.json",
        ):
            assert (await gw.get(path)).status_code == 404, path
        for path in ("/health/live", "/health/ready", "/metrics", "/openapi.json"):
            assert (await internal.get(path)).status_code == 200, path
        moved = await gw.get("/api/search/moved")
        assert moved.status_code == 307 and moved.headers["location"] == "/api/search/echo?page=2"
        assert (await gw.get(moved.headers["location"])).status_code == 200  # a working public link
        elsewhere = await gw.get("/api/search/elsewhere")
        assert elsewhere.headers["location"] == "https://docs.example.com/venta"  # not an upstream: kept
        upstream_host = search.removeprefix("http://")
        for response in (moved, elsewhere):
            assert all(upstream_host not in value for value in response.headers.values())


async def test_upstream_view_is_shared_by_concurrent_callers_and_refreshed_when_old(
    servers: Servers, serve: Any
) -> None:
    stand_ins = {name: stand_in() for name in ("search-discovery", "geolocation")}
    upstreams = {name: await serve(app) for name, app in stand_ins.items()}
    app = create_gateway(servers.gateway_settings(upstreams, upstreams_report_max_age_seconds=0.5))
    await serve(app)
    async with httpx.AsyncClient(base_url=await serve(app.state.internal_app)) as internal:
        views = await asyncio.gather(*(internal.get("/health/upstreams") for _ in range(20)))
        assert {v.json()["upstreams"]["geolocation"]["ready"] for v in views} == {True}
        # Twenty callers, one readiness check per upstream.
        assert [a.state.ready_checks for a in stand_ins.values()] == [1, 1]
        assert (await internal.get("/health")).json()["details"]["upstreams"]["status"] == "degraded"
        assert [a.state.ready_checks for a in stand_ins.values()] == [1, 1]  # /health shares it too
        await asyncio.sleep(0.6)
        again = await internal.get("/health/upstreams")
        assert again.json()["age_seconds"] < 0.5
        assert [a.state.ready_checks for a in stand_ins.values()] == [2, 2]


async def test_unknown_api_paths_and_bad_tokens_still_answer_at_the_edge(
    servers: Servers, serve: Any
) -> None:
    url = await serve(create_gateway(servers.gateway_settings({"search-discovery": await serve(stand_in())})))
    async with httpx.AsyncClient(base_url=url) as gw:
        assert (await gw.get("/api/nothing")).status_code == 404
        token = servers.issuer().issue("u", "customer")
        assert (await gw.get("/api/search/echo", headers=bearer(token))).status_code == 200
