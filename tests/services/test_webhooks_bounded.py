"""webhooks under abuse, against real PostgreSQL, NATS and local receivers.

A receiver answering with a gzip bomb leaves the worker's memory where it was; a receiver that hangs
delays only its own deliveries; one that keeps failing has its circuit opened and spends no attempts
meanwhile; one that never accepts the connection costs the connect timeout, not the whole timeout;
nobody subscribes to another owner's vendors; finished deliveries go after the retention period.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import nats
import pytest

from localdev.servers import free_port
from localdev.services import start_service, stop_all, wait_ready
from services.catalog import SERVICES
from services.common.auth import TokenIssuer
from services.common.metrics import sample_value
from services.webhooks.gate import TargetGate
from tests.services.webhooks_harness import FAST, Hooks, Receiver, publish, receiver, start_hooks

__all__ = ["receiver", "start_hooks"]  # fixtures, used by name
MIB = 1024 * 1024


@pytest.fixture
async def second_receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    yield rec
    await rec.stop()


def gzip_bomb(expanded_mib: int) -> bytes:
    """A gzip stream of zeros: about 1/1000 of its expanded size on the wire."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MIB)
    return b"".join(squeeze.compress(zeros) for _ in range(expanded_mib)) + squeeze.flush()


def peak_rss_mib(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


async def test_a_gzip_bomb_answer_leaves_the_workers_memory_where_it_was(
    new_database: Callable[[], Awaitable[str]],
    nats_url: str,
    public_pem: str,
    signing_seed: str,
    receiver: Receiver,
) -> None:
    # 256 KiB on the wire, 256 MiB once inflated: what a hostile subscription owner can answer with.
    receiver.answer = gzip_bomb(256)
    receiver.answer_headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert len(receiver.answer) < 300 * 1024
    await receiver.start()
    port, internal_port = free_port(), free_port()
    env = {
        "SERVICE_NAME": "webhooks",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "INTERNAL_PORT": str(internal_port),
        "DATABASE_URL": await new_database(),
        "NATS_SERVERS": nats_url,
        "JWT_PUBLIC_KEY": public_pem,
        **{
            key.upper(): str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in FAST.items()
        },
    }
    # The worker runs as in its container (python -m services webhooks): its memory is its own.
    proc = start_service(SERVICES["webhooks"], env)
    try:
        await asyncio.to_thread(wait_ready, internal_port, proc, "webhooks", 60)
        started_mib = peak_rss_mib(proc.pid)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            hooks = Hooks(http, TokenIssuer(signing_seed, 900), nats_url, env["DATABASE_URL"])
            sub = await hooks.subscribe("alice", receiver.url, ["vendor.created"])
            nc = await nats.connect(nats_url)
            sent = await publish(nc.jetstream(), 3)
            await nc.close()

            async def delivered() -> bool:
                rows = await hooks.deliveries("alice", sub["id"])
                return len(rows) == 3 and all(r["status"] == "delivered" for r in rows)

            await hooks.wait_for(delivered, "the three deliveries answered with the bomb")
        # Measured as growth: the worker's own start (imports) is already about 95-100 MiB here.
        # Before the answers were bounded this run peaked at 977 MiB.
        peak = peak_rss_mib(proc.pid)
        grown = peak - started_mib
        assert grown < 20, f"the answers grew the worker by {grown:.0f} MiB (to {peak:.0f} MiB)"
        assert set(receiver.event_ids(sub["secret"])) == set(sent)
    finally:
        await asyncio.to_thread(stop_all, {"webhooks": proc})


async def test_a_receiver_that_hangs_delays_only_its_own_deliveries(
    start_hooks: Callable[..., Awaitable[Hooks]],
    nats_url: str,
    receiver: Receiver,
    second_receiver: Receiver,
) -> None:
    # The hanging receiver would be given up on only after 60 s; everything below happens long before.
    hooks = await start_hooks(nats_url, webhook_timeout_seconds=60.0, webhook_max_in_flight_per_target=2)
    hanging, healthy = receiver, second_receiver
    hanging.hold = asyncio.Event()
    await hanging.start()
    await healthy.start()
    stuck = await hooks.subscribe("alice", hanging.url, ["vendor.created"])
    served = await hooks.subscribe("alice", healthy.url, ["vendor.created"])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    first = await publish(js, 6)

    def healthy_got(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(healthy.received) >= count and hanging.active == 2

        return check

    await hooks.wait_for(healthy_got(6), "the first wave at the healthy receiver", seconds=10)
    # The hanging receiver now holds two requests (its limit). A second wave still flows past it.
    second = await publish(js, 6)
    await hooks.wait_for(healthy_got(12), "the second wave at the healthy receiver", seconds=10)
    assert sorted(healthy.event_ids(served["secret"])) == sorted(first + second)
    assert hanging.received == [] and hanging.peak == 2  # never more than its limit in flight
    waiting = await hooks.deliveries("alice", stuck["id"])
    assert len(waiting) == 12 and all(row["status"] == "pending" for row in waiting)
    hanging.hold.set()  # the receiver recovers: its deliveries follow

    async def all_arrived() -> bool:
        return len(hanging.received) == 12

    await hooks.wait_for(all_arrived, "the held deliveries once the receiver answers")
    assert sorted(hanging.event_ids(stuck["secret"])) == sorted(first + second)
    await nc.close()


async def test_a_failing_receiver_has_its_circuit_opened_and_spends_no_attempts_meanwhile(
    start_hooks: Callable[..., Awaitable[Hooks]],
    nats_url: str,
    receiver: Receiver,
    second_receiver: Receiver,
) -> None:
    hooks = await start_hooks(
        nats_url,
        webhook_max_attempts=50,
        webhook_breaker_failures=3,
        webhook_breaker_open_seconds=120.0,
        webhook_max_in_flight_per_target=1,
    )
    failing, healthy = receiver, second_receiver
    failing.failing = True
    await failing.start()
    await healthy.start()
    broken = await hooks.subscribe("alice", failing.url, ["vendor.created"])
    fine = await hooks.subscribe("alice", healthy.url, ["vendor.created"])
    opened_before = sample_value("webhook_circuits_opened_total")
    nc = await nats.connect(nats_url)
    sent = await publish(nc.jetstream(), 8)

    async def healthy_has_all() -> bool:
        return len(healthy.received) == 8 and failing.failures >= 3

    await hooks.wait_for(healthy_has_all, "every event at the healthy receiver")
    await asyncio.sleep(1.0)  # with backoff capped at 0.3 s, a closed circuit would have retried by now
    assert failing.failures == 3  # three failures in a row, then nothing while the circuit is open
    assert sample_value("webhook_circuits_opened_total") - opened_before == 1
    rows = await hooks.deliveries("alice", broken["id"])
    assert sum(r["attempts"] for r in rows) == 3 and {r["status"] for r in rows} == {"pending"}
    # What was tried waits for the circuit's pause to end (so claims do not scan past it).
    soon = datetime.now(UTC) + timedelta(seconds=60)
    assert all(datetime.fromisoformat(r["next_attempt_at"]) > soon for r in rows if r["attempts"])
    assert sorted(healthy.event_ids(fine["secret"])) == sorted(sent)
    await nc.close()


def test_the_gate_half_opens_with_one_trial_after_the_pause() -> None:
    now = [0.0]
    gate = TargetGate(per_target=2, failures_to_open=2, open_seconds=10.0, clock=lambda: now[0])
    assert gate.acquire("a:1") is None and gate.acquire("a:1") is None
    assert gate.acquire("a:1") == 0.0 and gate.blocked() == ["a:1"]  # full: two in flight
    assert gate.release("a:1", healthy=False) is False
    assert gate.release("a:1", healthy=False) is True  # the second failure in a row opens it
    assert gate.acquire("a:1") == 10.0 and gate.acquire("b:1") is None  # other targets unaffected
    now[0] = 10.5
    assert gate.acquire("a:1") is None  # half-open: one trial
    assert gate.acquire("a:1") == 0.0
    assert gate.release("a:1", healthy=False) is True  # the trial failed: open again
    now[0] = 21.0
    assert gate.acquire("a:1") is None
    assert gate.release("a:1", healthy=True) is False  # the trial succeeded: closed, limit back to 2
    assert gate.acquire("a:1") is None and gate.acquire("a:1") is None


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A URL whose host never completes a TCP handshake: its accept queue is full and nobody accepts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}/hook"
    for sock in (*fillers, listener):
        sock.close()


async def test_a_receiver_that_never_accepts_costs_the_connect_timeout_only(
    start_hooks: Callable[..., Awaitable[Hooks]], nats_url: str, blackhole: str
) -> None:
    hooks = await start_hooks(
        nats_url, webhook_timeout_seconds=30.0, webhook_connect_timeout_seconds=0.5, webhook_max_attempts=1
    )
    sub = await hooks.subscribe("alice", blackhole, ["vendor.created"])
    nc = await nats.connect(nats_url)
    await publish(nc.jetstream(), 1)
    await nc.close()

    async def dead() -> bool:
        return len(await hooks.deliveries("alice", sub["id"], "dead")) == 1

    await hooks.wait_for(dead, "the one attempt to fail at connecting", seconds=10)
    [row] = await hooks.deliveries("alice", sub["id"])
    attempts = await hooks.http.get(
        f"/api/webhooks/deliveries/{row['id']}/attempts", headers=hooks.auth("alice")
    )
    [attempt] = attempts.json()
    assert attempt["error"].startswith("timed out") and "Connection timeout" in attempt["error"]
    assert attempt["duration_ms"] < 5000  # the 30 s request timeout never came into it


async def test_subscriptions_reach_only_the_subscribers_own_vendors(
    start_hooks: Callable[..., Awaitable[Hooks]], nats_url: str, receiver: Receiver
) -> None:
    hooks = await start_hooks(nats_url)
    await receiver.start()
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    alices, bobs = str(uuid.uuid4()), str(uuid.uuid4())
    await publish(js, 1, owner="alice", vendor_id=alices)
    await publish(js, 1, owner="bob", vendor_id=bobs)

    async def both_known() -> bool:
        return len(await hooks.sql("SELECT 1 FROM webhook_vendors")) == 2

    await hooks.wait_for(both_known, "webhooks to learn both vendors' owners")
    types = ["vendor.updated", "location.updated"]
    # Naming someone else's vendor is refused, naming the field; so is a vendor nobody has heard of.
    theirs = await hooks.try_subscribe("mallory", receiver.url, types, [bobs])
    assert theirs.status_code == 403
    assert theirs.json()["detail"].startswith(f"vendor_ids.0: vendor {bobs} belongs to another user")
    mixed = await hooks.try_subscribe("alice", receiver.url, types, [alices, bobs])
    assert mixed.status_code == 403 and mixed.json()["detail"].startswith("vendor_ids.1:")
    unknown = await hooks.try_subscribe("alice", receiver.url, types, [alices, str(uuid.uuid4())])
    assert unknown.status_code == 422
    assert [f["field"] for f in unknown.json()["fields"]] == ["vendor_ids.1"]
    assert (await hooks.try_subscribe("alice", receiver.url, types, ["not-a-uuid"])).status_code == 422
    named = await hooks.subscribe("alice", receiver.url, types, [alices])
    assert named["vendor_ids"] == [alices]
    # Without vendor_ids a subscription follows every vendor of its owner, and only those: mallory's
    # subscription to everything gets nothing of alice's or bob's.
    everything = await hooks.subscribe("mallory", receiver.url, ["vendor.created", *types])
    mine = await hooks.subscribe("bob", receiver.url, types)
    sent_alice = await publish(js, 2, "location.updated", vendor_id=alices)
    sent_alice += await publish(js, 1, "vendor.updated", owner="alice", vendor_id=alices)
    sent_bob = await publish(js, 3, "location.updated", vendor_id=bobs)

    async def all_delivered() -> bool:
        alice_rows = await hooks.deliveries("alice", named["id"])
        bob_rows = await hooks.deliveries("bob", mine["id"])
        return len(alice_rows) == 3 and len(bob_rows) == 3 and len(receiver.received) == 6

    await hooks.wait_for(all_delivered, "each owner's events at their own subscription")
    assert {r["event_id"] for r in await hooks.deliveries("alice", named["id"])} == set(sent_alice)
    assert {r["event_id"] for r in await hooks.deliveries("bob", mine["id"])} == set(sent_bob)
    assert await hooks.deliveries("mallory", everything["id"]) == []
    await nc.close()


async def test_the_per_owner_quota_is_a_setting(
    start_hooks: Callable[..., Awaitable[Hooks]], nats_url: str
) -> None:
    hooks = await start_hooks(nats_url)  # the default: 10 per owner
    for i in range(10):
        await hooks.subscribe("alice", f"http://127.0.0.1:9/hook{i}", ["vendor.created"])
    over = await hooks.try_subscribe("alice", "http://127.0.0.1:9/hook10", ["vendor.created"])
    assert over.status_code == 409 and over.json()["detail"] == "at most 10 subscriptions per user"


async def test_finished_deliveries_go_after_the_retention_period_and_recent_ones_stay(
    start_hooks: Callable[..., Awaitable[Hooks]], nats_url: str, receiver: Receiver
) -> None:
    hooks = await start_hooks(
        nats_url, webhook_retention_days=7.0, webhook_retention_interval_seconds=0.1, webhook_max_attempts=1
    )
    await receiver.start()
    sub = await hooks.subscribe("alice", receiver.url, ["vendor.created"])
    nc = await nats.connect(nats_url)
    sent = await publish(nc.jetstream(), 6)

    async def delivered() -> bool:
        return len([r for r in await hooks.deliveries("alice", sub["id"]) if r["status"] == "delivered"]) == 6

    await hooks.wait_for(delivered, "six deliveries")
    receiver.failing = True  # one more event becomes a dead letter, which is finished too
    [dead_event] = await publish(nc.jetstream(), 1)
    await nc.close()

    async def dead() -> bool:
        return len(await hooks.deliveries("alice", sub["id"], "dead")) == 1

    await hooks.wait_for(dead, "the dead letter")
    # And one as old but still pending (say, behind an open circuit): never deleted, however old.
    await hooks.sql(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body, next_attempt_at)"
        " VALUES ($1, 'still-pending', 'vendor.created', '{}', now() + interval '1 hour')",
        uuid.UUID(sub["id"]),
    )
    old = [*sent[:3], dead_event, "still-pending"]
    await hooks.sql(
        "UPDATE webhook_deliveries SET created_at = now() - interval '30 days',"
        " finished_at = CASE WHEN status = 'pending' THEN NULL ELSE now() - interval '8 days' END"
        " WHERE event_id = ANY ($1)",
        old,
    )

    async def purged() -> bool:
        return len(await hooks.deliveries("alice", sub["id"])) == 4

    await hooks.wait_for(purged, "the old finished deliveries to be deleted")
    left = {r["event_id"]: r["status"] for r in await hooks.deliveries("alice", sub["id"])}
    assert left == {**dict.fromkeys(sent[3:], "delivered"), "still-pending": "pending"}
    [orphans] = await hooks.sql(
        "SELECT count(*) AS n FROM webhook_attempts a"
        " WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id)"
    )
    assert orphans["n"] == 0  # the attempts went with their deliveries
    [kept] = await hooks.sql("SELECT count(*) AS n FROM webhook_attempts")
    assert kept["n"] == 3  # those of the three recent deliveries
