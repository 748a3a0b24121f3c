from __future__ import annotations

from pydantic import Field

from services.catalog import LOCATION_STALE_AFTER_SECONDS
from services.common.settings import JwtSettings, NatsSettings, RedisSettings


class Settings(RedisSettings, NatsSettings, JwtSettings):
    service_name: str = "geolocation"
    # A vendor that has not reported for this long drops out of every result (the stack's default too).
    location_stale_after_seconds: float = Field(default=LOCATION_STALE_AFTER_SECONDS, gt=0, le=86400)
    # How far ahead of our clock a reported timestamp may be (device clocks drift).
    location_clock_skew_seconds: float = Field(default=30.0, ge=0, le=600)
    nearby_max_radius_m: float = Field(default=50_000.0, gt=0, le=500_000)
    nearby_max_limit: int = Field(default=100, ge=1, le=1000)
