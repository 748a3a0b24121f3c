"""/api/webhooks/subscriptions: an owner's webhook targets; the secret is shown once, at creation.

A subscription follows only vendors its owner owns: the vendors it names are checked against the
owners webhooks learned from the vendor events (403 for someone else's, 422 for one not known), and
the fan-out matches events by the vendor's owner in any case.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.exceptions import RequestValidationError

from services.common.deps import CurrentUser, DbPool, app_settings
from services.webhooks.schemas import SubscriptionCreated, SubscriptionIn, SubscriptionOut
from services.webhooks.settings import Settings
from services.webhooks.signing import new_secret
from services.webhooks.targets import TargetRefused, check_target, target_key

router = APIRouter(prefix="/api/webhooks/subscriptions", tags=["webhook subscriptions"])
Config = Annotated[Settings, Depends(app_settings)]
_COLUMNS = "id, url, event_types, vendor_ids, description, created_at"


async def owned_subscription(pool: asyncpg.Pool, subscription_id: uuid.UUID, owner: str) -> asyncpg.Record:
    """The subscription row, 404 when missing and 403 when someone else owns it."""
    row = await pool.fetchrow(
        f"SELECT owner_id, {_COLUMNS} FROM webhook_subscriptions WHERE id = $1", subscription_id
    )
    if row is None:
        raise HTTPException(404, "subscription not found")
    if row["owner_id"] != owner:
        raise HTTPException(403, "this subscription belongs to another user")
    return row


async def check_owned(pool: asyncpg.Pool, vendor_ids: list[str], owner: str) -> None:
    """Each named vendor must be the caller's: 403 for another owner's, 422 for an unknown one."""
    rows = await pool.fetch(
        "SELECT vendor_id, owner_id FROM webhook_vendors WHERE vendor_id = ANY ($1)", vendor_ids
    )
    owners = {row["vendor_id"]: row["owner_id"] for row in rows}
    for index, vendor in enumerate(vendor_ids):
        if owners.get(vendor, owner) != owner:
            raise HTTPException(
                403,
                f"vendor_ids.{index}: vendor {vendor} belongs to another user; subscribe to your own vendors",
            )
    unknown = [
        {
            "loc": ("body", "vendor_ids", index),
            "msg": f"vendor {vendor} is not known (yet): a vendor is known once its vendor event arrived",
            "type": "value_error",
        }
        for index, vendor in enumerate(vendor_ids)
        if vendor not in owners
    ]
    if unknown:
        raise RequestValidationError(unknown)


@router.post("", status_code=201, response_model=SubscriptionCreated, responses={403: {}})
async def create(
    body: SubscriptionIn, user: CurrentUser, pool: DbPool, settings: Config
) -> SubscriptionCreated:
    try:
        await check_target(body.url, settings.webhook_allow_private_targets)
    except TargetRefused as exc:
        raise HTTPException(422, str(exc)) from None
    vendor_ids = None if body.vendor_ids is None else list(dict.fromkeys(str(v) for v in body.vendor_ids))
    if vendor_ids is not None:
        await check_owned(pool, vendor_ids, user.user_id)
    secret = new_secret()
    async with pool.acquire() as conn, conn.transaction():
        # Serialise one owner's creations so the per-owner limit holds under concurrent requests.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", user.user_id)
        limit = settings.webhook_max_subscriptions_per_owner
        count = await conn.fetchval(
            "SELECT count(*) FROM webhook_subscriptions WHERE owner_id = $1", user.user_id
        )
        if count >= limit:
            raise HTTPException(409, f"at most {limit} subscriptions per user")
        row = await conn.fetchrow(
            "INSERT INTO webhook_subscriptions"
            " (id, owner_id, url, target, event_types, vendor_ids, secret, description)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}",
            uuid.uuid4(),
            user.user_id,
            body.url,
            target_key(body.url),
            sorted(set(body.event_types)),
            vendor_ids,
            secret,
            body.description,
        )
    return SubscriptionCreated(**dict(row), secret=secret)


@router.get("", response_model=list[SubscriptionOut])
async def list_own(user: CurrentUser, pool: DbPool) -> list[SubscriptionOut]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE owner_id = $1 ORDER BY created_at", user.user_id
    )
    return [SubscriptionOut(**dict(row)) for row in rows]


@router.get("/{subscription_id}", response_model=SubscriptionOut)
async def get_one(subscription_id: uuid.UUID, user: CurrentUser, pool: DbPool) -> SubscriptionOut:
    row = await owned_subscription(pool, subscription_id, user.user_id)
    return SubscriptionOut(**{k: row[k] for k in SubscriptionOut.model_fields})


@router.delete("/{subscription_id}", status_code=204)
async def delete(subscription_id: uuid.UUID, user: CurrentUser, pool: DbPool) -> Response:
    await owned_subscription(pool, subscription_id, user.user_id)
    await pool.execute(
        "DELETE FROM webhook_subscriptions WHERE id = $1 AND owner_id = $2", subscription_id, user.user_id
    )
    return Response(status_code=204)
