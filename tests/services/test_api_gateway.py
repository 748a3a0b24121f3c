"""api-gateway in front of real services: routing, edge auth, rate limit, request ids, 502/504, readiness."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from localdev.servers import free_port
from services.api_gateway.app import create_app as create_gateway
from services.common.auth import TokenIssuer, generate_seed
from services.common.metrics import sample_value
from services.user_management.app import create_app as create_users
from services.vendor_management.app import create_app as create_vendors
from tests.services.marketplace import Servers, bearer, register_and_login


def echo_upstream() -> FastAPI:
    """Stands in for search-discovery: shows what the gateway forwarded, or answers slowly."""
    app = FastAPI()

    @app.api_route("/search/echo", methods=["GET", "POST"])
    @app.get("/search/echo/{rest:path}")
    async def echo(request: Request) -> dict[str, Any]:
        return {
            "path": request.url.path,
            "query": request.url.query,
            "headers": dict(request.headers),
            "body": (await request.body()).decode(),
            "raw_path": request.scope["raw_path"].decode(),
        }

    @app.get("/search/set-cookie")
    async def set_cookie(response: Response) -> dict[str, str]:
        response.set_cookie("session", "for-one-client-only")
        return {}

    @app.get("/search/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(3)
        return {"late": "yes"}

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


async def start_gateway(
    servers: Servers, serve: Any, upstreams: dict[str, str], **extra: Any
) -> httpx.AsyncClient:
    url = await serve(create_gateway(servers.gateway_settings(upstreams, **extra)))
    return httpx.AsyncClient(base_url=url, timeout=10)


@pytest.fixture
async def internals() -> dict[str, str]:
    """Where the real services among ``upstreams`` answer their probes (filled by that fixture)."""
    return {}


@pytest.fixture
async def upstreams(
    servers: Servers, serve: Any, serve_service: Any, internals: dict[str, str]
) -> dict[str, str]:
    users, internals["user-management"] = await serve_service(create_users(await servers.user_settings()))
    vendors, internals["vendor-management"] = await serve_service(
        create_vendors(await servers.vendor_settings())
    )
    return {
        "user-management": users,
        "vendor-management": vendors,
        # By host name, as in a cluster (aiohttp's default cookie jar ignores cookies from IP addresses).
        "search-discovery": (await serve(echo_upstream())).replace("127.0.0.1", "localhost"),
        # The location and communication services have their own gateway tests; any answering
        # upstream stands in for them here.
        **dict.fromkeys(
            ("geolocation", "real-time", "webhooks", "file-management"), await serve(echo_upstream())
        ),
    }


async def test_routes_public_and_authenticated_requests(
    servers: Servers, serve: Any, upstreams: dict[str, str]
) -> None:
    async with await start_gateway(servers, serve, upstreams) as gw:
        user_id, token = await register_and_login(gw, "gw@example.com", prefix="/api")
        me = await gw.get("/api/users/me", headers=bearer(token))
        assert me.status_code == 200 and me.json()["id"] == user_id

        anonymous = await gw.post("/api/vendors", json={"name": "x", "category": "food"})
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        assert anonymous.json()["error"] == "unauthorized"
        forged = TokenIssuer(generate_seed(), 60).issue(user_id, "vendor")
        assert (await gw.post("/api/vendors", json={}, headers=bearer(forged))).status_code == 401

        created = await gw.post(
            "/api/vendors", json={"name": "Via Gateway", "category": "food"}, headers=bearer(token)
        )
        assert created.status_code == 201 and created.json()["owner_id"] == user_id
        listed = await gw.get("/api/vendors", params={"limit": 5})  # public: no token needed
        assert listed.status_code == 200 and [v["name"] for v in listed.json()["items"]] == ["Via Gateway"]
        one = await gw.get(f"/api/vendors/{created.json()['id']}")
        assert one.status_code == 200
        # Errors of the service come through unchanged.
        invalid = await gw.post("/api/vendors", json={"name": "", "category": "food"}, headers=bearer(token))
        assert invalid.status_code == 422 and invalid.json()["fields"][0]["field"] == "name"

        nowhere = await gw.get("/api/nothing-here")
        assert nowhere.status_code == 404 and "no service serves" in nowhere.json()["detail"]
        assert (await gw.get("/api/usersX")).status_code == 404  # prefixes match whole segments


async def test_request_id_and_forwarding_headers_reach_the_service(
    servers: Servers, serve: Any, upstreams: dict[str, str]
) -> None:
    async with await start_gateway(servers, serve, upstreams) as gw:
        response = await gw.post(
            "/api/search/echo?q=a%20b&x=1", content=b"payload", headers={"X-Request-ID": "trace-42"}
        )
        # POST is not public on this route.
        assert response.status_code == 401
        token = servers.issuer().issue("u1", "customer")
        response = await gw.post(
            "/api/search/echo?q=a%20b&x=1",
            content=b"payload",
            headers={"X-Request-ID": "trace-42", **bearer(token)},
        )
        seen = response.json()
        assert response.headers["x-request-id"] == "trace-42"
        assert seen["headers"]["x-request-id"] == "trace-42"
        assert seen["path"] == "/search/echo" and seen["query"] == "q=a%20b&x=1" and seen["body"] == "payload"
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
        # Services verify the token themselves, so it travels on.
        assert seen["headers"]["authorization"] == f"Bearer {token}"
        encoded = await gw.get("/api/search/echo/a%2Fb%20c")  # percent-encoding reaches the service intact
        assert encoded.json()["raw_path"] == "/search/echo/a%2Fb%20c"
        cookie = await gw.get("/api/search/set-cookie")
        assert "for-one-client-only" in cookie.headers["set-cookie"]  # reaches its client...
        gw.cookies.clear()
        later = await gw.get("/api/search/echo")  # ...and is not kept by the gateway for anyone else
        assert "cookie" not in later.json()["headers"]
        generated = await gw.get("/api/search/echo")
        assert generated.json()["headers"]["x-request-id"] == generated.headers["x-request-id"]
        # The client's own encodings and agent travel on; without them the gateway asks for no
        # compression (it does not decompress) and names itself instead of its HTTP library.
        own = {"Accept-Encoding": "br", "User-Agent": "app/1"}
        asked = (await gw.get("/api/search/echo", headers=own)).json()
        assert asked["headers"]["accept-encoding"] == "br" and asked["headers"]["user-agent"] == "app/1"
        del gw.headers["accept-encoding"], gw.headers["user-agent"]
        bare = (await gw.get("/api/search/echo")).json()["headers"]
        assert bare["accept-encoding"] == "identity" and bare["user-agent"] == "venta-api-gateway"


async def test_rate_limit_answers_429_with_retry_after(
    servers: Servers, serve: Any, upstreams: dict[str, str]
) -> None:
    async with await start_gateway(
        servers, serve, upstreams, rate_limit_requests=3, rate_limit_window_seconds=30
    ) as gw:
        ann = bearer(servers.issuer().issue("ann", "customer"))
        statuses = [(await gw.get("/api/search/echo", headers=ann)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = await gw.get("/api/search/echo", headers=ann)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 30
        assert limited.json()["error"] == "rate_limited" and limited.json()["retry_after"] == int(
            limited.headers["retry-after"]
        )
        # Another client has its own budget.
        bob = bearer(servers.issuer().issue("bob", "customer"))
        assert (await gw.get("/api/search/echo", headers=bob)).status_code == 200
    # The budget is shared through Redis: a second gateway replica sees Ann as limited too.
    async with await start_gateway(
        servers, serve, upstreams, rate_limit_requests=3, rate_limit_window_seconds=30
    ) as other:
        assert (await other.get("/api/search/echo", headers=ann)).status_code == 429


async def test_slow_upstream_is_504_within_the_timeout(
    servers: Servers, serve: Any, upstreams: dict[str, str]
) -> None:
    async with await start_gateway(servers, serve, upstreams, upstream_timeout_seconds=0.5) as gw:
        started = time.monotonic()
        response = await gw.get("/api/search/slow")
        elapsed = time.monotonic() - started
        assert response.status_code == 504
        assert response.json()["upstream"] == "search-discovery" and "0.5 s" in response.json()["detail"]
        assert 0.45 <= elapsed < 1.5


async def test_dead_upstream_is_502_after_retrying_the_refused_connections(
    servers: Servers, serve: Any, upstreams: dict[str, str], internals: dict[str, str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    app = create_gateway(
        servers.gateway_settings(
            {**upstreams, "vendor-management": dead}, {**internals, "vendor-management": dead}
        )
    )
    async with (
        httpx.AsyncClient(base_url=await serve(app), timeout=10) as gw,
        httpx.AsyncClient(base_url=await serve(app.state.internal_app), timeout=10) as internal,
    ):
        retried = {"upstream": "vendor-management", "outcome": "retried"}
        before = sample_value("gateway_upstream_requests_total", retried)
        response = await gw.get("/api/vendors")
        assert response.status_code == 502
        assert response.json() == {
            "error": "bad_gateway",
            "detail": "vendor-management is unavailable",
            "request_id": response.headers["x-request-id"],
            "upstream": "vendor-management",
        }
        assert sample_value("gateway_upstream_requests_total", retried) - before == 2
        token = bearer(servers.issuer().issue("v", "vendor"))
        post = await gw.post("/api/vendors", json={"name": "x", "category": "food"}, headers=token)
        assert post.status_code == 502
        # Refused: nothing was sent, so a POST is retried too (a POST that reached the service is
        # not: tests/services/test_rollout.py).
        assert sample_value("gateway_upstream_requests_total", retried) - before == 4

        view = await internal.get("/health/upstreams")
        assert view.status_code == 503
        assert view.json()["not_ready"] == ["vendor-management"]
        assert view.json()["upstreams"]["user-management"]["ready"] is True
        # The gateway itself stays ready: one failing service must not take the entry point down.
        assert (await internal.get("/health/ready")).status_code == 200
        full = (await internal.get("/health")).json()
        assert full["details"]["upstreams"]["not_ready"] == ["vendor-management"]


async def test_oversized_body_is_413(servers: Servers, serve: Any, upstreams: dict[str, str]) -> None:
    limits = {"max_body_bytes": 1024, "upload_max_bytes": 8192}
    async with await start_gateway(servers, serve, upstreams, **limits) as gw:
        response = await gw.post("/api/users/register", content=b"x" * 5000)
        assert response.status_code == 413 and "1024 bytes" in response.json()["detail"]
        # Uploads have their own, larger limit: 5000 bytes pass on to file-management's stand-in.
        _, token = await register_and_login(gw, "uploader@example.com", prefix="/api")
        upload = await gw.post("/api/files", content=b"x" * 5000, headers=bearer(token))
        assert upload.status_code != 413
        too_big = await gw.post("/api/files", content=b"x" * 9000, headers=bearer(token))
        assert too_big.status_code == 413 and "8192 bytes" in too_big.json()["detail"]
