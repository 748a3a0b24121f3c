"""Vendors: anyone may read; only a vendor-role user creates, and only the owner changes or removes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from services.common.auth import Principal
from services.common.deps import CurrentUser, DbPool, DbReads, require_role
from services.vendor_management import repository
from services.vendor_management.schemas import Category, Vendor, VendorCreate, VendorPage, VendorUpdate

router = APIRouter(prefix="/vendors", tags=["vendors"])
NOT_FOUND = "vendor not found"
NOT_OWNER = "only the vendor's owner may change it"
OWNER_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"description": NOT_OWNER},
    404: {"description": NOT_FOUND},
}
VENDOR_ROLE = require_role("vendor")
# How far behind the primary a vendor read may be (docs/contracts.md, "Read replica"): an owner who
# just changed a vendor gets the change in the PATCH's answer; others may see it this much later.
READ_LAG_SECONDS = 2.0


def _owner(principal: Principal) -> uuid.UUID:
    try:
        return uuid.UUID(principal.user_id)
    except ValueError:
        raise HTTPException(401, "token subject is not a user id") from None


def _wake_relay(request: Request) -> None:
    request.app.state.relay.wake()


@router.post("", status_code=201, responses={403: {"description": "caller is not a vendor"}})
async def create_vendor(
    body: VendorCreate, request: Request, pool: DbPool, principal: Principal = VENDOR_ROLE
) -> Vendor:
    row = await repository.create_vendor(pool, _owner(principal), body.model_dump())
    _wake_relay(request)
    return Vendor(**dict(row))


@router.get("")
async def list_vendors(
    reads: DbReads,
    category: Annotated[Category | None, Query()] = None,
    owner_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> VendorPage:
    rows, total = await repository.list_vendors(
        reads.within(READ_LAG_SECONDS), category=category, owner_id=owner_id, limit=limit, offset=offset
    )
    return VendorPage(items=[Vendor(**dict(r)) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{vendor_id}", responses={404: {"description": NOT_FOUND}})
async def get_vendor(vendor_id: uuid.UUID, reads: DbReads) -> Vendor:
    row = await repository.get_vendor(reads.within(READ_LAG_SECONDS), vendor_id)
    if row is None:
        raise HTTPException(404, NOT_FOUND)
    return Vendor(**dict(row))


@router.patch("/{vendor_id}", responses=OWNER_ERRORS)
async def update_vendor(
    vendor_id: uuid.UUID, body: VendorUpdate, request: Request, pool: DbPool, principal: CurrentUser
) -> Vendor:
    try:
        row = await repository.update_vendor(pool, vendor_id, _owner(principal), body.changes())
    except repository.NotFound:
        raise HTTPException(404, NOT_FOUND) from None
    except repository.NotOwner:
        raise HTTPException(403, NOT_OWNER) from None
    _wake_relay(request)
    return Vendor(**dict(row))


@router.delete("/{vendor_id}", status_code=204, responses=OWNER_ERRORS)
async def delete_vendor(
    vendor_id: uuid.UUID, request: Request, pool: DbPool, principal: CurrentUser
) -> Response:
    try:
        await repository.delete_vendor(pool, vendor_id, _owner(principal))
    except repository.NotFound:
        raise HTTPException(404, NOT_FOUND) from None
    except repository.NotOwner:
        raise HTTPException(403, NOT_OWNER) from None
    _wake_relay(request)
    return Response(status_code=204)
