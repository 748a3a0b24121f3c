"""NATS with JetStream: a connection that outlives outages, streams, event envelopes.

The connection is never given up: after a drop the client reconnects with backoff for as long as
the process lives (subscriptions, pull consumers included, carry on once it is back), and a
``ConnectionWatch`` turns a long outage into a failed readiness check and metrics instead.

Streams and subjects follow docs/contracts.md. Producers *and* consumers call ``ensure_streams`` at
start-up with the same definitions, so start order does not matter. Events are JSON
``{"id", "type", "occurred_at", "data"}`` published with ``Nats-Msg-Id = id``: JetStream drops a
duplicate inside its window, and consumers still de-duplicate by id (delivery is at-least-once).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.client import Server
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from prometheus_client import Counter, Gauge

from services.catalog import STREAMS as CATALOG_STREAMS
from services.common.logs import REQUEST_ID_HEADER, request_id_var
from services.common.settings import NatsSettings

log = logging.getLogger("venta.nats")


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_seconds: int = 7 * 86400  # 0: kept until replaced
    max_msgs_per_subject: int = -1  # -1: no limit


VENDORS_STREAM = StreamSpec("VENDORS", CATALOG_STREAMS["VENDORS"])
LOCATIONS_STREAM = StreamSpec("LOCATIONS", CATALOG_STREAMS["LOCATIONS"], max_age_seconds=86400)
# Each vendor's latest event on its own subject, kept with no age limit: enough to rebuild what a
# consumer derived from the vendors after losing it, however long ago a vendor last changed.
VENDOR_STATE_STREAM = StreamSpec(
    "VENDOR_STATE", CATALOG_STREAMS["VENDOR_STATE"], max_age_seconds=0, max_msgs_per_subject=1
)
STREAMS = {spec.name: spec for spec in (VENDORS_STREAM, LOCATIONS_STREAM, VENDOR_STATE_STREAM)}


def inbox_prefix(service_name: str) -> str:
    """Replies (JetStream acks, pulled messages) come to `_INBOX.<service>.*`: a service's NATS user
    may subscribe there and to what it consumes, never to another service's replies."""
    return f"_INBOX.{service_name}"


def vendor_state_subject(vendor_id: str) -> str:
    return f"vendor-state.{vendor_id}"


CONNECTED = Gauge("nats_connected", "1 while the NATS connection is up")
DISCONNECTED_SECONDS = Gauge("nats_disconnected_seconds", "How long the NATS connection has been down")
OVER_BUDGET = Gauge(
    "nats_reconnect_budget_exceeded", "1 while NATS has been down longer than the outage budget"
)
RECONNECTS = Counter("nats_reconnects_total", "Times the NATS connection came back after a drop")
_FIRST_PAUSE_SECONDS = 0.25
_LOG_EVERY_ATTEMPTS = 10  # a long outage logs its first failed attempt, then every tenth
_FLUSH_SECONDS = 0.5  # within the readiness check's own 1 s


def reconnect_pause(failed_attempts: int, cap: float) -> float:
    """Seconds to wait before the next attempt: doubling from 0.25 s up to ``cap``, with jitter so
    that every replica does not knock at the same moment when NATS comes back."""
    pause = min(cap, _FIRST_PAUSE_SECONDS * 2**failed_attempts)
    return random.uniform(pause / 2, pause)


class ConnectionWatch:
    """Tracks outages of one connection for readiness and metrics.

    Readiness keeps passing through a blip shorter than the budget (the client is reconnecting and
    every pod would otherwise leave its Service at once), then fails naming the outage; a closed
    connection (nothing will reconnect it) fails at once.
    """

    def __init__(self, budget_seconds: float) -> None:
        self.budget_seconds = budget_seconds
        self.down_since: float | None = None
        CONNECTED.set(0)
        DISCONNECTED_SECONDS.set_function(self.down_for)
        OVER_BUDGET.set_function(lambda: float(self.over_budget))

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since

    @property
    def over_budget(self) -> bool:
        return self.down_since is not None and self.down_for() > self.budget_seconds

    def connected(self, reconnected: bool = False) -> None:
        if reconnected and self.down_since is not None:
            RECONNECTS.inc()
            log.info("nats reconnected", extra={"down_seconds": round(self.down_for(), 1)})
        self.down_since = None
        CONNECTED.set(1)

    def disconnected(self) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
        CONNECTED.set(0)

    async def check(self, nc: NatsClient) -> None:
        """The readiness check: a round trip when connected, the outage against the budget otherwise."""
        if nc.is_closed:
            raise ConnectionError("connection closed")
        if nc.is_connected:
            try:
                await nc.flush(timeout=_FLUSH_SECONDS)  # type: ignore[arg-type]  # seconds, float works
                return
            except (nats.errors.Error, TimeoutError):
                if nc.is_connected:  # connected but not answering
                    raise
                # The connection dropped during the round trip: judged as an outage below.
        self.disconnected()
        if self.over_budget:
            raise ConnectionError(
                f"disconnected for {self.down_for():.0f} s (budget {self.budget_seconds:g} s); reconnecting"
            )


async def connect(settings: NatsSettings, watch: ConnectionWatch | None = None) -> NatsClient:
    """Connect (start-up gives up after the guide's 5 attempts, so a bad address fails the start),
    then keep reconnecting for as long as the process lives."""
    watch = watch or ConnectionWatch(settings.nats_outage_budget_seconds)
    cap = settings.nats_reconnect_wait_seconds

    def next_server(servers: list[Server], _: dict[str, Any]) -> tuple[Server | None, float]:
        # Called before every reconnect attempt; servers carry their failed attempts so far.
        server = min(servers, key=lambda s: s.reconnects)
        if server.reconnects % _LOG_EVERY_ATTEMPTS == 1:
            log.warning("nats still unreachable, reconnecting", extra={"attempts": server.reconnects})
        return server, reconnect_pause(server.reconnects, cap)

    async def on_error(exc: Exception) -> None:
        if nc.is_connected:  # failed reconnect attempts are logged by next_server, not one by one
            log.warning("nats error", extra={"error": str(exc)})

    async def on_disconnected() -> None:
        if not nc.is_closed:
            log.warning("nats disconnected")
        watch.disconnected()

    async def on_reconnected() -> None:
        watch.connected(reconnected=True)

    options: dict[str, Any] = {}
    if settings.nats_user:
        options = {"user": settings.nats_user, "password": settings.nats_password.get_secret_value()}
    nc = NatsClient()
    await nc.connect(
        servers=settings.nats_servers,
        name=settings.service_name,
        max_reconnect_attempts=settings.nats_max_reconnect_attempts,  # at start-up, as before
        reconnect_time_wait=cap,  # type: ignore[arg-type]  # seconds; a float works, the hint says int
        reconnect_to_server_handler=next_server,
        connect_timeout=2,
        drain_timeout=5,
        allow_reconnect=True,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        inbox_prefix=inbox_prefix(settings.service_name),
        **options,
    )
    # Connected: from now on a drop is reconnected without a limit (nats-py reads this per attempt).
    nc.options["max_reconnect_attempts"] = -1
    watch.connected()
    return nc


async def close(nc: NatsClient) -> None:
    """Drain a live connection at shutdown; one that is reconnecting (or closed) is simply closed,
    since draining needs the server. Never raises: shutdown goes on with the other clients."""
    if nc.is_closed:
        return
    if nc.is_connected:
        try:
            await nc.drain()
            return
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("nats drain failed; closing", extra={"error": str(exc)})
    await nc.close()


async def ensure_streams(js: JetStreamContext, *specs: StreamSpec) -> None:
    for spec in specs:
        config = StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=float(spec.max_age_seconds),
            max_msgs_per_subject=spec.max_msgs_per_subject,
            duplicate_window=120.0,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Exists with a different config (e.g. created by an older release): bring it in line.
            await js.update_stream(config)


def new_event(subject: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": subject,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "data": data,
    }


async def publish_event(
    js: JetStreamContext,
    event: dict[str, Any],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 (nats-py's own ack wait)
) -> None:
    headers = {"Nats-Msg-Id": str(event["id"])}
    request_id = request_id_var.get()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    await js.publish(event["type"], orjson.dumps(event), timeout=timeout, headers=headers)


def parse_event(payload: bytes) -> dict[str, Any]:
    """Decode and check the envelope; ``ValueError`` names what is wrong."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"event is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise ValueError("event is not a JSON object")
    for key in ("id", "type", "occurred_at", "data"):
        if key not in event:
            raise ValueError(f"event lacks {key!r}")
    if not isinstance(event["data"], dict):
        raise ValueError("event data is not an object")
    return event
