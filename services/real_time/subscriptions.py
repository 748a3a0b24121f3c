"""What a client subscribes to, parsed from its messages and checked against the limits.

A subscription holds an area (a bounding box or a circle) and/or vendor ids; an update matches when
its vendor is one of the ids or its position lies inside the area. Areas live in memory, not in the
geo index, but positions do, and those never lie beyond +-85.05112878 degrees of latitude: a box's
edges beyond that are clamped to it (the box covers the same positions), and a circle's centre must
lie within it, as for nearby's query (else an error frame naming the range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from services.common.inputs import GEO_MAX_LATITUDE
from services.real_time.geo import degrees_around, haversine_m


class ProtocolError(ValueError):
    """A malformed client message: answered with an error frame, the connection stays open."""


class LimitExceeded(ValueError):
    """A request over the connection's limits: the connection is closed with this reason."""


@dataclass(frozen=True)
class Limits:
    max_subscriptions: int = 10
    max_vendor_ids: int = 200
    max_radius_m: float = 50_000.0
    max_bbox_degrees: float = 1.0  # widest side of a box, in degrees


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, lat: float, lon: float) -> bool:
        if not self.min_lat <= lat <= self.max_lat:
            return False
        if self.min_lon <= self.max_lon:
            return self.min_lon <= lon <= self.max_lon
        return lon >= self.min_lon or lon <= self.max_lon  # the box crosses the antimeridian


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius_m: float
    box: BBox = field(init=False, repr=False)

    def __post_init__(self) -> None:
        dlat, dlon = degrees_around(self.lat, self.radius_m)
        west, east = _wrap(self.lon - dlon), _wrap(self.lon + dlon)
        if dlon >= 180.0:
            west, east = -180.0, 180.0
        box = BBox(west, max(-90.0, self.lat - dlat), east, min(90.0, self.lat + dlat))
        object.__setattr__(self, "box", box)

    def contains(self, lat: float, lon: float) -> bool:
        return self.box.contains(lat, lon) and haversine_m(self.lat, self.lon, lat, lon) <= self.radius_m


@dataclass(frozen=True)
class Subscription:
    id: str
    area: BBox | Circle | None
    vendor_ids: frozenset[str]

    def matches(self, vendor_id: str, lat: float, lon: float) -> bool:
        return vendor_id in self.vendor_ids or (self.area is not None and self.area.contains(lat, lon))


def _wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(f"{name} must be a finite number")
    if not low <= value <= high:
        raise ProtocolError(f"{name} must be between {low} and {high}")
    return float(value)


def parse_area(raw: Any, limits: Limits) -> BBox | Circle | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1 or not {"bbox", "circle"} & raw.keys():
        raise ProtocolError(
            'area must be {"bbox": [min_lon, min_lat, max_lon, max_lat]} or '
            '{"circle": {"lat": .., "lon": .., "radius_m": ..}}'
        )
    if "bbox" in raw:
        box = raw["bbox"]
        if not isinstance(box, list) or len(box) != 4:
            raise ProtocolError("bbox must be [min_lon, min_lat, max_lon, max_lat]")
        w, e = (_number(box[i], n, -180, 180) for i, n in ((0, "min_lon"), (2, "max_lon")))
        s, n = (_number(box[i], n, -90, 90) for i, n in ((1, "min_lat"), (3, "max_lat")))
        if s > n:
            raise ProtocolError("bbox min_lat is above max_lat")
        s, n = max(s, -GEO_MAX_LATITUDE), min(n, GEO_MAX_LATITUDE)
        width = e - w if w <= e else e - w + 360.0
        if max(width, n - s) > limits.max_bbox_degrees:
            raise LimitExceeded(f"bbox wider than {limits.max_bbox_degrees} degrees")
        return BBox(w, s, e, n)
    circle = raw["circle"]
    if not isinstance(circle, dict):
        raise ProtocolError("circle must be an object with lat, lon and radius_m")
    radius = _number(circle.get("radius_m"), "radius_m", 0, math.inf)
    if radius > limits.max_radius_m:
        raise LimitExceeded(f"radius_m above the limit of {limits.max_radius_m:g} m")
    lat = _number(circle.get("lat"), "lat", -GEO_MAX_LATITUDE, GEO_MAX_LATITUDE)
    return Circle(lat, _number(circle.get("lon"), "lon", -180, 180), radius)


def parse_subscription(message: dict[str, Any], limits: Limits) -> Subscription:
    sub_id = message.get("id")
    if not isinstance(sub_id, str) or not 0 < len(sub_id) <= 64:
        raise ProtocolError("subscribe needs an id: a string of 1 to 64 characters")
    ids = message.get("vendor_ids", [])
    if not isinstance(ids, list) or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in ids):
        raise ProtocolError("vendor_ids must be a list of vendor id strings")
    if len(ids) > limits.max_vendor_ids:
        raise LimitExceeded(f"more than {limits.max_vendor_ids} vendor ids in one subscription")
    area = parse_area(message.get("area"), limits)
    if area is None and not ids:
        raise ProtocolError("subscribe needs an area and/or vendor_ids")
    return Subscription(sub_id, area, frozenset(ids))


@dataclass
class SubscriptionSet:
    """One connection's subscriptions, with the vendor ids of all of them kept at hand for the hub."""

    limits: Limits
    items: dict[str, Subscription] = field(default_factory=dict)

    def add(self, sub: Subscription) -> None:
        if sub.id not in self.items and len(self.items) >= self.limits.max_subscriptions:
            raise LimitExceeded(f"at most {self.limits.max_subscriptions} subscriptions per connection")
        self.items[sub.id] = sub

    def remove(self, sub_id: str) -> bool:
        return self.items.pop(sub_id, None) is not None

    @property
    def vendor_ids(self) -> frozenset[str]:
        return frozenset().union(*(s.vendor_ids for s in self.items.values()))

    @property
    def has_area(self) -> bool:
        return any(s.area is not None for s in self.items.values())

    def matches_area(self, lat: float, lon: float) -> bool:
        return any(s.area is not None and s.area.contains(lat, lon) for s in self.items.values())
