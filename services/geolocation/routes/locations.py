"""/api/locations: vendors report positions; anyone signed in asks who is nearby."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from services.common.deps import CurrentUser, JetStream, app_settings, current_principal
from services.common.nats_client import publish_event
from services.geolocation.events import location_event
from services.geolocation.schemas import NearbyOut, NearbyQuery, PositionIn, PositionOut
from services.geolocation.settings import Settings
from services.geolocation.store import LocationStore, UpdateStatus

log = logging.getLogger("venta.geolocation")
router = APIRouter(prefix="/api/locations", tags=["locations"])

_REFUSALS = {
    UpdateStatus.UNKNOWN_VENDOR: (404, "vendor not found"),
    UpdateStatus.NOT_OWNER: (403, "only the vendor's owner may report its position"),
    UpdateStatus.INACTIVE: (409, "vendor is inactive"),
    UpdateStatus.OUT_OF_ORDER: (409, "a newer position of this vendor is already recorded"),
}
_RETRY_SOON = {"Retry-After": "1"}


async def get_store(request: Request) -> LocationStore:
    store: LocationStore = request.app.state.location_store
    return store


Store = Annotated[LocationStore, Depends(get_store)]
Config = Annotated[Settings, Depends(app_settings)]


def fix_time(body: PositionIn, settings: Settings, now: float) -> float:
    """When the fix was taken; 422 when it is already stale or too far in the future."""
    if body.timestamp is None:
        return now
    ts = body.timestamp.timestamp()
    if ts < now - settings.location_stale_after_seconds:
        raise HTTPException(422, f"timestamp is older than {settings.location_stale_after_seconds:g} s")
    if ts > now + settings.location_clock_skew_seconds:
        raise HTTPException(422, f"timestamp is more than {settings.location_clock_skew_seconds:g} s ahead")
    return ts


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


_utc = datetime.utcfromtimestamp  # naive UTC, for bodies written with _NAIVE_AS_UTC
_NAIVE_AS_UTC = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def nearby_query(request: Request) -> NearbyQuery:
    """The query string validated by NearbyQuery in one call; 422 in FastAPI's usual shape."""
    # FastAPI's per-field query parsing (and even one more dependency level) costs more than the
    # whole Redis call on this route, so the handler calls this itself.
    try:
        return NearbyQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None


def _query_parameters(model: type[NearbyQuery]) -> list[dict[str, object]]:
    """OpenAPI entries for a query model parsed by hand, so the docs still list its parameters."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


# Declared before the /vendors routes: routes are tried in order, and nearby is the busiest by far.
@router.get("/nearby", response_model=NearbyOut, openapi_extra={"parameters": _query_parameters(NearbyQuery)})
async def nearby(request: Request) -> Response:
    """The nearest active vendors within ``radius_m``, closest first, with their distances."""
    # The hottest read, so no dependencies at all (each one is per-request solving work). The
    # caller goes through the shared verifier, clients and settings come straight
    # from app state, the parameters as one model, and the body is built in the NearbyOut shape
    # without a second validation pass of values from our own store (tests check it against NearbyOut).
    await current_principal(request)
    query = nearby_query(request)  # after the token check: a caller without one gets 401, not 422
    settings: Settings = request.app.state.settings
    if query.radius_m > settings.nearby_max_radius_m:
        raise HTTPException(422, f"radius_m must be at most {settings.nearby_max_radius_m:g}")
    if query.limit > settings.nearby_max_limit:
        raise HTTPException(422, f"limit must be at most {settings.nearby_max_limit}")
    store: LocationStore = request.app.state.location_store
    found = await store.nearby(query.lon, query.lat, query.radius_m, query.limit, time.time())
    # Naive UTC datetimes, written with a Z by orjson: an aware one costs orjson a utcoffset() call
    # each, which made up a third of building this body.
    results = [
        {"vendor_id": vendor_id, "distance_m": distance_m, "lat": lat, "lon": lon, "last_seen": _utc(seen)}
        for vendor_id, distance_m, lon, lat, seen in found
    ]
    body = {"lat": query.lat, "lon": query.lon, "radius_m": query.radius_m, "results": results}
    return Response(orjson.dumps(body, option=_NAIVE_AS_UTC), media_type="application/json")


@router.put("/vendors/{vendor_id}", response_model=PositionOut)
async def report_position(
    vendor_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: PositionIn,
    request: Request,
    user: CurrentUser,
    store: Store,
    settings: Config,
    js: JetStream,
) -> PositionOut:
    """Record the vendor's position (owner only) and publish it as `location.updated`."""
    now = time.time()
    ts = fix_time(body, settings, now)
    status = await store.update(vendor_id, user.user_id, body.lon, body.lat, ts, body.accuracy_m, now)
    if status is UpdateStatus.LOADING:
        request.app.state.vendor_rebuild.wake()
        raise HTTPException(503, "vendor data is being reloaded; retry shortly", headers=_RETRY_SOON)
    if status is not UpdateStatus.ACCEPTED:
        code, reason = _REFUSALS[status]
        raise HTTPException(code, reason)
    # The position is stored before the event goes out; a failed publish answers 503 and the
    # client's retry of the same fix re-publishes under the same event id (no duplicate downstream).
    try:
        event = location_event(vendor_id, body.lat, body.lon, body.accuracy_m, ts, accepted_at=now)
        await publish_event(js, event, timeout=2.0)
    except Exception as exc:
        log.warning("location event not published", extra={"vendor_id": vendor_id, "error": str(exc)})
        raise HTTPException(503, "position stored but its event could not be published; retry") from None
    return PositionOut(
        vendor_id=vendor_id, lat=body.lat, lon=body.lon, accuracy_m=body.accuracy_m, recorded_at=_when(ts)
    )


@router.get("/vendors/{vendor_id}", response_model=PositionOut)
async def current_position(
    vendor_id: Annotated[str, Path(min_length=1, max_length=64)], _: CurrentUser, store: Store
) -> PositionOut:
    found = await store.position(vendor_id, time.time())
    if found is None:
        raise HTTPException(404, "no recent position for this vendor")
    return PositionOut(
        vendor_id=vendor_id,
        lat=found.lat,
        lon=found.lon,
        accuracy_m=found.accuracy_m,
        recorded_at=_when(found.last_seen),
    )
