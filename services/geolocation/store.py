"""Vendor positions in Redis: a geo index, a last-seen index and one info hash per vendor.

The two hot paths, a position update and nearby, are one Lua script each, so each costs one round
trip and the owner check, the out-of-order guard and the write happen atomically. Both go over the
service's shared pipelined connection (both are safe to retry: a repeated update of the same fix is
accepted again, not refused as out of order), and so do vendor changes, a script that applies one only
over an older version (a repeat changes nothing); the rarer reads use redis-py. A marker key says
the vendor hashes are complete (rebuild.py); while it is missing an unknown vendor is "loading",
not "not found".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from services.common.redis_pipeline import LuaScript, PipelinedRedis
from services.geolocation.events import VendorChange

_LUA = resources.files(__package__).joinpath("lua")
_PRUNE_PER_WRITE = 16
_START_RADIUS_M = 50.0
_UPDATE = LuaScript(_LUA.joinpath("update.lua").read_text())
_NEARBY = LuaScript(_LUA.joinpath("nearby.lua").read_text())
_VENDOR = LuaScript(_LUA.joinpath("vendor.lua").read_text())
_LOADED = LuaScript(_LUA.joinpath("loaded.lua").read_text())


class UpdateStatus(enum.IntEnum):
    ACCEPTED = 0
    UNKNOWN_VENDOR = 1
    NOT_OWNER = 2
    INACTIVE = 3
    OUT_OF_ORDER = 4
    LOADING = 5  # Redis lost the vendor data and it is being loaded again


@dataclass(frozen=True)
class Keys:
    """Key layout under one prefix, so several services can share a Redis without clashing."""

    prefix: str = "geo"

    @property
    def positions(self) -> str:
        return f"{self.prefix}:positions"

    @property
    def last_seen(self) -> str:
        return f"{self.prefix}:last-seen"

    def vendor(self, vendor_id: str) -> str:
        return f"{self.prefix}:vendor:{vendor_id}"

    @property
    def loaded(self) -> str:
        """Present once every vendor was loaded; a Redis that lost its data has lost this too."""
        return f"{self.prefix}:vendors-loaded"

    @property
    def loading(self) -> str:
        return f"{self.prefix}:vendors-loading"


# One nearby result as the script wrote it: [vendor_id, distance_m, lon, lat, last_seen (epoch s)].
# Left as the decoded JSON arrays and unpacked by the caller: wrapping each in a named tuple cost a
# third of building the response.
NearbyRow = list[Any]


@dataclass(frozen=True)
class StoredPosition:
    vendor_id: str
    lon: float
    lat: float
    last_seen: float
    accuracy_m: float | None


class LocationStore:
    def __init__(
        self, redis: Redis, scripts: PipelinedRedis, stale_after_s: float, keys: Keys | None = None
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._stale_after_s = stale_after_s
        self.keys = keys or Keys()

    async def update(
        self,
        vendor_id: str,
        caller: str,
        lon: float,
        lat: float,
        ts: float,
        accuracy_m: float | None,
        now: float,
    ) -> UpdateStatus:
        k = self.keys
        status = await self._scripts.evalsha(
            _UPDATE,
            (k.positions, k.last_seen, k.vendor(vendor_id), k.loaded),
            (
                vendor_id,
                caller,
                lon,
                lat,
                ts,
                now - self._stale_after_s,
                _PRUNE_PER_WRITE,
                "" if accuracy_m is None else accuracy_m,
            ),
        )
        return UpdateStatus(int(status))

    async def nearby(
        self, lon: float, lat: float, radius_m: float, limit: int, now: float
    ) -> list[NearbyRow]:
        """The nearest fresh vendors within radius_m, nearest first, at most ``limit``."""
        raw = await self._scripts.evalsha(
            _NEARBY,
            (self.keys.positions, self.keys.last_seen),
            (lon, lat, radius_m, limit, now - self._stale_after_s, _START_RADIUS_M),
        )
        rows: list[NearbyRow] = orjson.loads(raw)
        return rows

    async def position(self, vendor_id: str, now: float) -> StoredPosition | None:
        """The vendor's last position, or None when it has none or has gone silent."""
        k = self.keys
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.geopos(k.positions, vendor_id)
            pipe.zscore(k.last_seen, vendor_id)
            pipe.hget(k.vendor(vendor_id), "accuracy")
            (coords,), seen, accuracy = await pipe.execute()
        if coords is None or seen is None or seen < now - self._stale_after_s:
            return None
        acc = _text(accuracy) if accuracy is not None else ""
        return StoredPosition(vendor_id, coords[0], coords[1], seen, float(acc) if acc else None)

    async def apply_vendor(self, change: VendorChange) -> bool:
        """Record who owns the vendor and whether it is active (what position writes are checked
        against), unless a change of the same or a newer version is already stored; an inactive or
        deleted vendor leaves the map. True when applied."""
        k = self.keys
        applied = await self._scripts.evalsha(
            _VENDOR,
            (k.vendor(change.vendor_id), k.positions, k.last_seen),
            (
                change.vendor_id,
                change.version,
                change.owner_id or "",
                "1" if change.active else "0",
                "1" if change.deleted else "0",
            ),
        )
        return bool(applied)

    async def vendors_loaded(self) -> bool:
        return bool(await self._redis.exists(self.keys.loaded))

    async def begin_load(self, token: str) -> None:
        await self._redis.set(self.keys.loading, token, ex=3600)

    async def finish_load(self, token: str, now: float) -> bool:
        """Mark the vendor data complete if this load is still the current one; True when marked."""
        marked = await self._scripts.evalsha(_LOADED, (self.keys.loading, self.keys.loaded), (token, now))
        return bool(marked)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
