"""Request and response bodies of the location API."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.common.inputs import IndexedLatitude, Longitude


class PositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Positions go into Redis' geo index, which holds latitudes within +-85.05112878 only.
    lat: IndexedLatitude
    lon: Longitude
    accuracy_m: float | None = Field(default=None, ge=0.0, le=100_000.0, allow_inf_nan=False)
    # When the device took the fix; defaults to the time the server receives it.
    timestamp: AwareDatetime | None = None


class NearbyQuery(BaseModel):
    lat: IndexedLatitude
    lon: Longitude
    radius_m: float = Field(default=5000.0, gt=0, allow_inf_nan=False)
    limit: int = Field(default=20, ge=1)


class PositionOut(BaseModel):
    vendor_id: str
    lat: float
    lon: float
    accuracy_m: float | None
    recorded_at: datetime


class NearbyVendorOut(BaseModel):
    vendor_id: str
    distance_m: float
    lat: float
    lon: float
    last_seen: datetime


class NearbyOut(BaseModel):
    lat: float
    lon: float
    radius_m: float
    results: list[NearbyVendorOut]
