"""Spherical geometry for matching positions against subscribed areas."""

from __future__ import annotations

import math

# The radius Redis uses for its GEO distances, so both sides agree on what "within r metres" means.
EARTH_RADIUS_M = 6372797.560856


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def degrees_around(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-widths (dlat, dlon) in degrees of a box that holds the circle; a cheap pre-filter."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    cos_lat = math.cos(math.radians(lat))
    dlon = 180.0 if cos_lat < 1e-6 else min(180.0, dlat / cos_lat)
    return dlat, dlon
