"""SQL for users and refresh tokens (this service's own tables only)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

import asyncpg

from services.common.auth import Role


class DuplicateEmail(Exception):
    pass


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    pool: asyncpg.Pool, email: str, password_hash: str, role: Role, display_name: str
) -> asyncpg.Record:
    try:
        row: asyncpg.Record = await pool.fetchrow(
            "INSERT INTO users (id, email, password_hash, role, display_name) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING id, email, role, display_name",
            uuid.uuid4(),
            email,
            password_hash,
            role,
            display_name,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateEmail(email) from None
    return row


async def user_by_email(pool: asyncpg.Pool, email: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT id, email, role, display_name, password_hash FROM users WHERE lower(email) = $1", email
    )
    return row


async def user_by_id(pool: asyncpg.Pool, user_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT id, email, role, display_name FROM users WHERE id = $1", user_id
    )
    return row


async def update_display_name(pool: asyncpg.Pool, user_id: uuid.UUID, name: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        "UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1"
        " RETURNING id, email, role, display_name",
        user_id,
        name,
    )
    return row


class RefreshTokenReused(Exception):
    """A refresh token was presented after it had been rotated or revoked; its family is now revoked."""


async def new_refresh_token(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: uuid.UUID, ttl: int, family_id: uuid.UUID | None = None
) -> str:
    """A fresh refresh token: of a new family (a login) unless ``family_id`` continues one (a refresh)."""
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) VALUES ($1, $2, $3, $4)",
        _token_hash(token),
        user_id,
        family_id or uuid.uuid4(),
        expires,
    )
    return token


_REVOKE_FAMILY = "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL"


async def rotate_refresh_token(pool: asyncpg.Pool, token: str, ttl: int) -> tuple[asyncpg.Record, str] | None:
    """Spend ``token`` and hand out its successor in the same family; None when the token is unknown
    or expired. A token already spent or revoked raises ``RefreshTokenReused`` after revoking its whole
    family: one of its holders is not the user. Of two concurrent uses of one token the second counts
    as a reuse too (the row lock orders them), which logs that login out: safer than guessing which."""
    reused = False
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT user_id, family_id, revoked_at, expires_at > now() AS live FROM refresh_tokens"
            " WHERE token_hash = $1 FOR UPDATE",
            _token_hash(token),
        )
        if row is None or not row["live"]:
            return None
        if row["revoked_at"] is not None:
            await conn.execute(_REVOKE_FAMILY, row["family_id"])
            reused = True
        else:
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1", _token_hash(token)
            )
            user = await conn.fetchrow(
                "SELECT id, email, role, display_name FROM users WHERE id = $1", row["user_id"]
            )
            if user is None:
                return None
            return user, await new_refresh_token(conn, row["user_id"], ttl, row["family_id"])
    if reused:  # raised after the commit, so the revocation stands
        raise RefreshTokenReused
    return None


async def revoke_family(pool: asyncpg.Pool, token: str) -> bool:
    """Revoke every token of ``token``'s family (logout); False when the token is unknown."""
    family = await pool.fetchval(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1", _token_hash(token)
    )
    if family is None:
        return False
    await pool.execute(_REVOKE_FAMILY, family)
    return True
