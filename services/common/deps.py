"""FastAPI dependencies for the clients a service holds and for the caller's identity.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a hop that costs
more than these lookups themselves on every request.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import Depends, HTTPException, Request
from nats.js import JetStreamContext
from redis.asyncio import Redis

from services.common.app import Resources
from services.common.auth import InvalidToken, Principal, Role, bearer_token
from services.common.replica import ReadPool


def resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


async def app_settings(request: Request) -> Any:
    """The service's own Settings object; each service wraps this with its precise type."""
    return request.app.state.settings


def _need(value: Any, what: str) -> Any:
    if value is None:
        raise RuntimeError(f"this service was built without {what}")
    return value


async def get_db(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = _need(resources(request).db, "a database")
    return pool


async def get_reads(request: Request) -> ReadPool:
    """Where reads that tolerate a little lag go: ``reads.within(seconds).fetch(...)``."""
    reads: ReadPool = _need(resources(request).reads, "a database")
    return reads


async def get_redis(request: Request) -> Redis:
    redis: Redis = _need(resources(request).redis, "Redis")
    return redis


async def get_jetstream(request: Request) -> JetStreamContext:
    js: JetStreamContext = _need(resources(request).js, "NATS")
    return js


async def current_principal(request: Request) -> Principal:
    """The verified caller. Services verify the token themselves; identity headers are never trusted."""
    # The header is read directly: a declared Header() parameter goes through FastAPI's per-field
    # parsing on every request, which costs more than the (cached) verification itself.
    verifier = _need(resources(request).verifier, "JWT_PUBLIC_KEY")
    try:
        principal: Principal = verifier.verify(bearer_token(request.headers.get("authorization")))
        return principal
    except InvalidToken as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def require_role(role: Role) -> Any:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role != role:
            raise HTTPException(403, f"this action needs the {role} role")
        return principal

    return Depends(check)


DbPool = Annotated[asyncpg.Pool, Depends(get_db)]
DbReads = Annotated[ReadPool, Depends(get_reads)]
RedisClient = Annotated[Redis, Depends(get_redis)]
JetStream = Annotated[JetStreamContext, Depends(get_jetstream)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
