"""Real PostgreSQL, Redis and NATS for the service tests (never fakes).

Session-scoped servers come from ``localdev.servers``; set ``TEST_DATABASE_URL`` (a superuser URL able to
CREATE DATABASE), ``TEST_REDIS_URL`` or ``TEST_NATS_URL`` to use existing servers instead. Per test:
``new_database()`` gives an empty database of its own, ``redis_url`` is flushed, ``nats_url`` has no
streams left from earlier tests. Tests that stop a server mid-test start a private one with
``private_server(kind)`` so the shared ones stay up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack
from typing import Any

import asyncpg
import nats
import pytest
from redis.asyncio import Redis

from localdev.serve import serving
from localdev.servers import Server, running
from services.common.auth import generate_seed, public_pem_from_seed


def _server_url(kind: str, env: str, stack: ExitStack) -> tuple[str, Server | None]:
    given = os.environ.get(env)
    if given:
        return given, None
    server = stack.enter_context(running(kind))
    return server.url, server


@pytest.fixture(scope="session")
def _servers() -> Iterator[dict[str, tuple[str, Server | None]]]:
    with ExitStack() as stack:
        yield {
            "postgres": _server_url("postgres", "TEST_DATABASE_URL", stack),
            "redis": _server_url("redis", "TEST_REDIS_URL", stack),
            "nats": _server_url("nats", "TEST_NATS_URL", stack),
        }


@pytest.fixture(scope="session")
def postgres_admin_url(_servers: dict[str, tuple[str, Server | None]]) -> str:
    return _servers["postgres"][0]


@pytest.fixture
def new_database(postgres_admin_url: str) -> Callable[[], Awaitable[str]]:
    """``await new_database()`` -> URL of a fresh, empty database (one per call)."""

    async def create() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(postgres_admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        base, _, _ = postgres_admin_url.rpartition("/")
        return f"{base}/{name}"

    return create


@pytest.fixture
async def redis_url(_servers: dict[str, tuple[str, Server | None]]) -> str:
    url = _servers["redis"][0]
    client = Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    return url


@pytest.fixture
async def nats_url(_servers: dict[str, tuple[str, Server | None]]) -> str:
    url = _servers["nats"][0]
    nc = await nats.connect(url)
    js = nc.jetstream()
    for info in await js.streams_info():
        assert info.config.name is not None
        await js.delete_stream(info.config.name)
    await nc.close()
    return url


@pytest.fixture
def private_server() -> Iterator[Callable[[str], Server]]:
    """``private_server("redis")`` -> a server of this test alone, free to stop and restart."""
    with ExitStack() as stack:
        yield lambda kind: stack.enter_context(running(kind))


@pytest.fixture(scope="session")
def signing_seed() -> str:
    return generate_seed()


@pytest.fixture(scope="session")
def public_pem(signing_seed: str) -> str:
    return public_pem_from_seed(signing_seed)


@pytest.fixture
def servers(
    new_database: Callable[[], Awaitable[str]],
    redis_url: str,
    nats_url: str,
    public_pem: str,
    signing_seed: str,
) -> Any:
    """Everything a marketplace service needs to start against this test's servers."""
    from tests.services.marketplace import Servers

    return Servers(new_database, redis_url, nats_url, public_pem, signing_seed)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Any], Awaitable[str]]]:
    """``url = await serve(app)`` runs the app over real HTTP until the test ends."""
    contexts: list[AbstractAsyncContextManager[str]] = []

    async def start(app: Any) -> str:
        ctx = serving(app)
        url = await ctx.__aenter__()
        contexts.append(ctx)
        return url

    yield start
    for ctx in reversed(contexts):
        await ctx.__aexit__(None, None, None)


@pytest.fixture
def serve_service(serve: Callable[[Any], Awaitable[str]]) -> Callable[[Any], Awaitable[tuple[str, str]]]:
    """``api, internal = await serve_service(app)``: a service's API and its internal port (probes,
    metrics, docs), each over real HTTP as ``python -m services`` serves them."""

    async def start(app: Any) -> tuple[str, str]:
        api = await serve(app)
        return api, await serve(app.state.internal_app)

    return start
