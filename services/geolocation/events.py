"""The events geolocation speaks: vendor events in (who owns a vendor, is it active), positions out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LOCATION_SUBJECT = "location.updated"
LOCATION_STREAM = "LOCATIONS"
VENDOR_STREAM = "VENDORS"
VENDOR_SUBJECTS = ("vendor.created", "vendor.updated", "vendor.deleted")
_EVENT_NS = uuid.UUID("3f0f3c52-5d0e-4c1e-9a52-6f1f4c7d2a10")


class BadEvent(ValueError):
    """An event that does not have the fields we need; it is acknowledged and skipped, not retried."""


@dataclass(frozen=True)
class VendorChange:
    vendor_id: str
    owner_id: str | None
    active: bool
    deleted: bool
    version: int  # the vendor's version in vendor-management: a change applies only over an older one


def parse_vendor_event(event: dict[str, Any]) -> VendorChange:
    kind = event.get("type")
    data = event.get("data")
    if kind not in VENDOR_SUBJECTS or not isinstance(data, dict) or not data.get("id"):
        raise BadEvent(f"not a vendor event with data.id: type={kind!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadEvent(f"{kind} without a positive integer data.version")
    if kind == "vendor.deleted":
        return VendorChange(str(data["id"]), None, False, True, version)
    owner = data.get("owner_id")
    if not owner:
        raise BadEvent(f"{kind} without data.owner_id")
    return VendorChange(str(data["id"]), str(owner), bool(data.get("active", True)), False, version)


def location_event(
    vendor_id: str, lat: float, lon: float, accuracy_m: float | None, recorded_at: float, accepted_at: float
) -> dict[str, Any]:
    """The ``location.updated`` event; its id is derived from vendor and fix time, so a retried report
    of the same fix publishes the same id and JetStream drops the duplicate. ``accepted_at`` (epoch
    seconds) is when the server stored it: consumers can tell how fresh what they show is."""
    event_id = uuid.uuid5(_EVENT_NS, f"{vendor_id}@{recorded_at!r}")
    return {
        "id": str(event_id),
        "type": LOCATION_SUBJECT,
        "occurred_at": datetime.fromtimestamp(recorded_at, UTC).isoformat(),
        "data": {
            "vendor_id": vendor_id,
            "lat": lat,
            "lon": lon,
            "accuracy_m": accuracy_m,
            "accepted_at": accepted_at,
        },
    }
