"""The caller's own profile."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException

from services.common.deps import CurrentUser, DbPool
from services.user_management import repository
from services.user_management.schemas import ProfileUpdate, User

router = APIRouter(prefix="/users", tags=["profile"])


def _user_id(principal_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(principal_id)
    except ValueError:
        raise HTTPException(401, "token subject is not a user id") from None


@router.get("/me", responses={401: {"description": "no valid token"}})
async def me(principal: CurrentUser, pool: DbPool) -> User:
    row = await repository.user_by_id(pool, _user_id(principal.user_id))
    if row is None:
        raise HTTPException(404, "account no longer exists")
    return User(**dict(row))


@router.patch("/me", responses={401: {"description": "no valid token"}})
async def update_me(body: ProfileUpdate, principal: CurrentUser, pool: DbPool) -> User:
    row = await repository.update_display_name(pool, _user_id(principal.user_id), body.display_name)
    if row is None:
        raise HTTPException(404, "account no longer exists")
    return User(**dict(row))
