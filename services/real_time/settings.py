from __future__ import annotations

from pydantic import Field

from services.common.settings import JwtSettings, NatsSettings


class Settings(NatsSettings, JwtSettings):
    service_name: str = "real-time"
    realtime_heartbeat_seconds: float = Field(default=20.0, gt=0, le=300)
    # A client that sends nothing (not even a pong) for this many heartbeats is disconnected.
    realtime_missed_heartbeats: int = Field(default=3, ge=1, le=20)
    realtime_auth_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Distinct vendors waiting for a slow client before it is dropped (each keeps only its newest).
    realtime_outbox_size: int = Field(default=1000, ge=1, le=100_000)
    # Updates for a client are gathered for this long and sent as one frame (0: one frame each).
    realtime_batch_seconds: float = Field(default=0.02, ge=0, le=1)
    realtime_send_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    realtime_max_subscriptions: int = Field(default=10, ge=1, le=1000)
    realtime_max_vendor_ids: int = Field(default=200, ge=1, le=10_000)
    realtime_max_radius_m: float = Field(default=50_000.0, gt=0)
    realtime_max_bbox_degrees: float = Field(default=1.0, gt=0, le=360)
