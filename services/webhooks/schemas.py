"""Request and response bodies of the webhooks API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal["vendor.created", "vendor.updated", "vendor.deleted", "location.updated"]
DeliveryStatus = Literal["pending", "delivered", "dead"]
MAX_VENDORS = 100


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="http(s) URL that receives the POSTs")
    event_types: list[EventType] = Field(min_length=1, max_length=4)
    vendor_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_VENDORS,
        description="the vendors to follow, each one yours; omitted: every vendor you own, now and later",
    )
    description: str = Field(default="", max_length=500)


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    vendor_ids: list[str] | None
    description: str
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="signing secret: shown only in this response")


class DeliveryOut(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
