"""Routes each location update to the outboxes of the connections that subscribed to it.

Every replica receives every update (a plain NATS subscription, no queue group), so a client gets
its updates whichever replica it is connected to. An update is encoded once and the same bytes go
to every matching connection. Connections are found by the vendor ids they follow and, for areas,
through a grid of the areas' cells (area_index.py), so an update is tested only against the
connections whose areas lie around it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from services.real_time.area_index import AreaIndex
from services.real_time.outbox import Outbox
from services.real_time.subscriptions import Limits, Subscription, SubscriptionSet


@dataclass(eq=False)
class Client:
    user_id: str
    outbox: Outbox
    subscriptions: SubscriptionSet
    expires_at: float = float("inf")  # the token's expiry (epoch seconds)
    # Kept up to date by the connection, read by the supervisor (monotonic seconds).
    last_heard: float = field(default_factory=time.monotonic)
    next_ping: float = 0.0
    sending_since: float | None = None
    # Resolved with (close code, reason) when the server decides to end the connection.
    closing: asyncio.Future[tuple[int, str] | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def close(self, code: int, reason: str) -> None:
        if not self.closing.done():
            self.closing.set_result((code, reason))


@dataclass(frozen=True)
class LocationUpdate:
    vendor_id: str
    lat: float
    lon: float
    encoded: bytes  # the JSON object clients receive, encoded once

    @classmethod
    def from_event(cls, raw: bytes) -> LocationUpdate:
        """Parse a ``location.updated`` event; ValueError when it lacks what clients need."""
        event = orjson.loads(raw)
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            raise ValueError("event without data")
        vendor_id, lat, lon = data.get("vendor_id"), data.get("lat"), data.get("lon")
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon))
        if not isinstance(vendor_id, str) or not numbers:
            raise ValueError("location event without vendor_id, lat, lon")
        payload = {
            "vendor_id": vendor_id,
            "lat": lat,
            "lon": lon,
            "accuracy_m": data.get("accuracy_m"),
            "recorded_at": event.get("occurred_at"),
            "accepted_at": data.get("accepted_at"),
        }
        return cls(vendor_id, float(lat), float(lon), orjson.dumps(payload))  # type: ignore[arg-type]


@dataclass
class Hub:
    limits: Limits
    outbox_size: int
    clients: set[Client] = field(default_factory=set)
    _by_vendor: dict[str, set[Client]] = field(default_factory=lambda: defaultdict(set))
    _areas: AreaIndex[Client] = field(default_factory=AreaIndex)
    # 0 sends each update at once; otherwise updates wait for the next tick of flush_every(), so a
    # client gets one frame per tick instead of one per update (sends dominate the CPU at fan-out).
    batch_s: float = 0.0
    _due: set[Client] = field(default_factory=set)
    delivered: int = 0

    def connect(self, user_id: str, expires_at: float = float("inf")) -> Client:
        client = Client(user_id, Outbox(self.outbox_size), SubscriptionSet(self.limits), expires_at)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)
        self._due.discard(client)
        self._unindex(client)

    def subscribe(self, client: Client, sub: Subscription) -> None:
        client.subscriptions.add(sub)  # raises LimitExceeded before anything changes
        self._reindex(client)

    def unsubscribe(self, client: Client, sub_id: str) -> bool:
        removed = client.subscriptions.remove(sub_id)
        self._reindex(client)
        return removed

    def publish(self, update: LocationUpdate) -> int:
        targets = set(self._by_vendor.get(update.vendor_id, ()))
        lat, lon = update.lat, update.lon
        for client, area in self._areas.candidates(lat, lon):
            if client not in targets and area.contains(lat, lon):
                targets.add(client)
        now = self.batch_s <= 0
        for client in targets:
            client.outbox.put(update.vendor_id, update.encoded, wake=now)
        if not now:
            self._due |= targets
        self.delivered += len(targets)
        return len(targets)

    def flush(self) -> int:
        """Wake the writers of every client that received updates since the last tick."""
        due, self._due = self._due, set()
        for client in due:
            client.outbox.wake()
        return len(due)

    async def flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.batch_s)
            self.flush()

    def _unindex(self, client: Client) -> None:
        self._areas.remove(client)
        for vendor_id in [v for v, cs in self._by_vendor.items() if client in cs]:
            self._by_vendor[vendor_id].discard(client)
            if not self._by_vendor[vendor_id]:
                del self._by_vendor[vendor_id]

    def _reindex(self, client: Client) -> None:
        self._unindex(client)
        if client not in self.clients:
            return
        for vendor_id in client.subscriptions.vendor_ids:
            self._by_vendor[vendor_id].add(client)
        if client.subscriptions.has_area:
            self._areas.add(client, client.subscriptions.areas)


def updates_frame(parts: list[bytes]) -> str:
    """One text frame carrying every pending update of a connection (natural batching under load)."""
    return (b'{"type":"updates","updates":[' + b",".join(parts) + b"]}").decode()
