"""Register, log in, refresh, log out: the public account endpoints."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from prometheus_client import Counter

from services.common.auth import TokenIssuer
from services.common.deps import DbPool, app_settings
from services.user_management import repository
from services.user_management.passwords import Passwords
from services.user_management.schemas import LoginRequest, RefreshRequest, RegisterRequest, TokenPair, User
from services.user_management.settings import Settings

router = APIRouter(prefix="/users", tags=["auth"])

REGISTRATIONS = Counter("users_registered_total", "Accounts created", ["role"])
LOGINS = Counter("user_logins_total", "Login attempts", ["outcome"])
REFRESH_REUSED = Counter(
    "refresh_token_reuse_total", "Rotated or revoked refresh tokens presented again (their family is revoked)"
)
BAD_CREDENTIALS = "e-mail or password is wrong"


async def passwords(request: Request) -> Passwords:
    value: Passwords = request.app.state.passwords
    return value


async def issuer(request: Request) -> TokenIssuer:
    value: TokenIssuer = request.app.state.issuer
    return value


PasswordsDep = Annotated[Passwords, Depends(passwords)]
IssuerDep = Annotated[TokenIssuer, Depends(issuer)]
Config = Annotated[Settings, Depends(app_settings)]


async def _token_pair(
    conn: asyncpg.Pool, user: asyncpg.Record, issuer: TokenIssuer, refresh_ttl: int
) -> TokenPair:
    refresh = await repository.new_refresh_token(conn, user["id"], refresh_ttl)
    return TokenPair(
        access_token=issuer.issue(str(user["id"]), user["role"]),
        refresh_token=refresh,
        expires_in=issuer.ttl_seconds,
    )


@router.post("/register", status_code=201, responses={409: {"description": "e-mail already registered"}})
async def register(body: RegisterRequest, pool: DbPool, hasher: PasswordsDep) -> User:
    display_name = body.display_name or body.email.split("@", 1)[0]
    try:
        password_hash = await hasher.hash(body.password)
        row = await repository.create_user(pool, body.email, password_hash, body.role, display_name)
    except repository.DuplicateEmail:
        raise HTTPException(409, "an account with this e-mail already exists") from None
    REGISTRATIONS.labels(body.role).inc()
    return User(**dict(row))


@router.post("/login", responses={401: {"description": "bad credentials"}})
async def login(
    body: LoginRequest, config: Config, pool: DbPool, hasher: PasswordsDep, tokens: IssuerDep
) -> TokenPair:
    user = await repository.user_by_email(pool, body.email)
    # One answer for an unknown e-mail and a wrong password, after the same amount of work.
    if not await hasher.verify(user["password_hash"] if user else None, body.password) or user is None:
        LOGINS.labels("rejected").inc()
        raise HTTPException(401, BAD_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"})
    LOGINS.labels("ok").inc()
    return await _token_pair(pool, user, tokens, config.refresh_token_ttl_seconds)


@router.post("/refresh", responses={401: {"description": "refresh token unknown, reused or expired"}})
async def refresh(body: RefreshRequest, config: Config, pool: DbPool, tokens: IssuerDep) -> TokenPair:
    ttl = config.refresh_token_ttl_seconds
    try:
        rotated = await repository.rotate_refresh_token(pool, body.refresh_token, ttl)
    except repository.RefreshTokenReused:
        REFRESH_REUSED.inc()
        raise HTTPException(
            401, "refresh token was already used or revoked: every token of that login is revoked now"
        ) from None
    if rotated is None:
        raise HTTPException(401, "refresh token is unknown or expired")
    user, new_refresh = rotated
    return TokenPair(
        access_token=tokens.issue(str(user["id"]), user["role"]),
        refresh_token=new_refresh,
        expires_in=tokens.ttl_seconds,
    )


@router.post("/logout", status_code=204, responses={401: {"description": "refresh token unknown"}})
async def logout(body: RefreshRequest, pool: DbPool) -> Response:
    """End the login the refresh token belongs to: it and every token rotated from it stop working.
    Access tokens already issued stay valid until they expire (ACCESS_TOKEN_TTL_SECONDS)."""
    if not await repository.revoke_family(pool, body.refresh_token):
        raise HTTPException(401, "refresh token is unknown")
    return Response(status_code=204)
