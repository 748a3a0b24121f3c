"""/api/webhooks: the delivery log of a subscription, its attempts, dead letters and redelivery."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from services.common.deps import CurrentUser, DbPool
from services.webhooks.routes.subscriptions import owned_subscription
from services.webhooks.schemas import AttemptOut, DeliveryOut, DeliveryStatus

router = APIRouter(prefix="/api/webhooks", tags=["webhook deliveries"])
_JOINED = "webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id"
_COLUMNS = (
    "d.id, d.subscription_id, d.event_id, d.event_type, d.status, d.attempts, d.last_status_code, "
    "d.last_error, d.created_at, d.finished_at, "
    "CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at"
)
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/subscriptions/{subscription_id}/deliveries", response_model=list[DeliveryOut])
async def delivery_log(
    subscription_id: uuid.UUID,
    user: CurrentUser,
    pool: DbPool,
    status: DeliveryStatus | None = None,
    limit: Limit = 100,
) -> list[DeliveryOut]:
    """Newest first; ``status=dead`` lists the subscription's dead letters."""
    await owned_subscription(pool, subscription_id, user.user_id)
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM webhook_deliveries d WHERE d.subscription_id = $1 "
        "AND ($2::text IS NULL OR d.status = $2) ORDER BY d.created_at DESC, d.id LIMIT $3",
        subscription_id,
        status,
        limit,
    )
    return [DeliveryOut(**dict(row)) for row in rows]


@router.get("/dead-letters", response_model=list[DeliveryOut])
async def dead_letters(user: CurrentUser, pool: DbPool, limit: Limit = 100) -> list[DeliveryOut]:
    """Every dead letter across the caller's subscriptions, newest first."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM {_JOINED} WHERE s.owner_id = $1 AND d.status = 'dead' "
        "ORDER BY d.finished_at DESC LIMIT $2",
        user.user_id,
        limit,
    )
    return [DeliveryOut(**dict(row)) for row in rows]


async def _owned_delivery(pool: DbPool, delivery_id: uuid.UUID, owner: str) -> None:
    found = await pool.fetchval(
        f"SELECT s.owner_id FROM {_JOINED} WHERE d.id = $1",
        delivery_id,
    )
    if found is None:
        raise HTTPException(404, "delivery not found")
    if found != owner:
        raise HTTPException(403, "this delivery belongs to another user")


@router.get("/deliveries/{delivery_id}/attempts", response_model=list[AttemptOut])
async def attempts(delivery_id: uuid.UUID, user: CurrentUser, pool: DbPool) -> list[AttemptOut]:
    await _owned_delivery(pool, delivery_id, user.user_id)
    rows = await pool.fetch(
        "SELECT attempt, attempted_at, status_code, error, duration_ms FROM webhook_attempts "
        "WHERE delivery_id = $1 ORDER BY id",
        delivery_id,
    )
    return [AttemptOut(**dict(row)) for row in rows]


@router.post("/deliveries/{delivery_id}/redeliver", status_code=202, response_model=DeliveryOut)
async def redeliver(delivery_id: uuid.UUID, user: CurrentUser, pool: DbPool) -> DeliveryOut:
    """Queue a dead (or delivered) event again with a fresh retry budget; the attempt log is kept."""
    await _owned_delivery(pool, delivery_id, user.user_id)
    row = await pool.fetchrow(
        "UPDATE webhook_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now(), "
        f"finished_at = NULL WHERE d.id = $1 AND d.status <> 'pending' RETURNING {_COLUMNS}",
        delivery_id,
    )
    if row is None:
        raise HTTPException(409, "delivery is still pending")
    return DeliveryOut(**dict(row))
