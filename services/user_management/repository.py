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


async def new_refresh_token(conn: asyncpg.Connection | asyncpg.Pool, user_id: uuid.UUID, ttl: int) -> str:
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        _token_hash(token),
        user_id,
        expires,
    )
    return token


async def rotate_refresh_token(pool: asyncpg.Pool, token: str, ttl: int) -> tuple[asyncpg.Record, str] | None:
    """Spend ``token`` and hand out its successor, atomically: of two concurrent uses only one wins."""
    async with pool.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval(
            "UPDATE refresh_tokens SET revoked_at = now()"
            " WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING user_id",
            _token_hash(token),
        )
        if user_id is None:
            return None
        user = await conn.fetchrow("SELECT id, email, role, display_name FROM users WHERE id = $1", user_id)
        if user is None:
            return None
        return user, await new_refresh_token(conn, user_id, ttl)
