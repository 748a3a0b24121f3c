"""webhooks against real PostgreSQL and NATS, delivering to a real local HTTP receiver.

Nothing lost: a receiver that is down for several retries gets every event once it is back, each
signed; an event that exhausts its retries becomes a dead letter and is redelivered on request; a
NATS restart in the middle of the traffic loses nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import uuid
from collections.abc import Awaitable, Callable

import nats
import pytest

from localdev.servers import Server
from services.common.metrics import sample_value
from services.common.nats_client import (
    LOCATIONS_STREAM,
    VENDORS_STREAM,
    ensure_streams,
)
from services.webhooks.backoff import retry_delay
from services.webhooks.signing import signature, verify
from services.webhooks.targets import GuardedResolver, TargetRefused, parse_target, refused_reason
from tests.services.webhooks_harness import Hooks, Receiver, publish, receiver, start_hooks

__all__ = ["receiver", "start_hooks"]  # fixtures, used by name


def test_signature_verifies_only_the_signed_body_and_recent_timestamps() -> None:
    header = signature("whsec_k", 1_700_000_000, b'{"a":1}')
    assert verify("whsec_k", header, b'{"a":1}', now=1_700_000_010)
    assert not verify("whsec_k", header, b'{"a":2}', now=1_700_000_010)
    assert not verify("whsec_other", header, b'{"a":1}', now=1_700_000_010)
    assert not verify("whsec_k", header, b'{"a":1}', now=1_700_009_999)  # replayed much later


def test_backoff_is_exponential_with_full_jitter_under_the_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0), (200, 30.0)):
        delays = [retry_delay(attempt, 1.0, 30.0, rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays) and max(delays) > ceiling * 0.8


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.8",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "224.0.0.251",
        "0.0.0.0",
        "100.64.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refused_reason(ipaddress.ip_address(address)) is not None
    assert refused_reason(ipaddress.ip_address("93.184.216.34")) is None


async def test_delivery_time_resolution_refuses_names_that_point_inside() -> None:
    # What a DNS-rebinding name does at delivery time: it now resolves to loopback.
    with pytest.raises(TargetRefused, match="loopback"):
        await GuardedResolver(allow_private=False).resolve("localhost", 80)
    assert await GuardedResolver(allow_private=True).resolve("localhost", 80)
    for bad in ("ftp://example.com/x", "http://user:pw@example.com/", "http:///nohost", "http://h:99999/"):
        with pytest.raises(TargetRefused):
            parse_target(bad)


async def test_receiver_down_for_several_retries_gets_every_event_signed(
    start_hooks: Callable[..., Awaitable[Hooks]], nats_url: str, receiver: Receiver
) -> None:
    # Retries are what this test watches: the circuit breaker (tested below) would pause them.
    hooks = await start_hooks(nats_url, webhook_max_attempts=40, webhook_breaker_failures=1000)
    sub = await hooks.subscribe("alice", receiver.url, ["vendor.created", "location.updated"])
    other = await hooks.subscribe("bob", receiver.url, ["vendor.deleted"])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stall = str(uuid.uuid4())
    sent = await publish(js, 1, vendor_id=stall) + await publish(js, 11)
    sent += await publish(js, 8, "location.updated", vendor_id=stall)

    async def all_retried_while_down() -> bool:
        rows = await hooks.deliveries("alice", sub["id"])
        return len(rows) == len(sent) and all(r["attempts"] >= 3 and r["status"] == "pending" for r in rows)

    await hooks.wait_for(all_retried_while_down, "three failed attempts of every delivery")
    await receiver.start()

    async def all_delivered() -> bool:
        rows = await hooks.deliveries("alice", sub["id"])
        return all(r["status"] == "delivered" for r in rows)

    await hooks.wait_for(all_delivered, "every delivery to succeed")
    assert sorted(receiver.event_ids(sub["secret"])) == sorted(sent)  # each once, each signed
    assert await hooks.deliveries("bob", other["id"]) == []  # not subscribed to these types
    row = (await hooks.deliveries("alice", sub["id"]))[0]
    attempts = (
        await hooks.http.get(f"/api/webhooks/deliveries/{row['id']}/attempts", headers=hooks.auth("alice"))
    ).json()
    assert [a["attempt"] for a in attempts] == list(range(1, row["attempts"] + 1))
    assert attempts[-1]["status_code"] == 204 and "Connect" in attempts[0]["error"]
    await nc.close()


async def test_exhausted_retries_become_a_dead_letter_that_can_be_redelivered(
    start_hooks: Callable[..., Awaitable[Hooks]], nats_url: str, receiver: Receiver
) -> None:
    hooks = await start_hooks(nats_url, webhook_max_attempts=3)
    sub = await hooks.subscribe("alice", receiver.url, ["vendor.created"])
    dead_before = sample_value("webhook_dead_letters_total")
    retried_before = sample_value("webhook_deliveries_total", {"outcome": "retried"})
    receiver.failing = True
    await receiver.start()
    nc = await nats.connect(nats_url)
    [event_id] = await publish(nc.jetstream(), 1)

    async def dead() -> bool:
        return len(await hooks.deliveries("alice", sub["id"], "dead")) == 1

    await hooks.wait_for(dead, "the dead letter")
    [letter] = (await hooks.http.get("/api/webhooks/dead-letters", headers=hooks.auth("alice"))).json()
    assert letter["event_id"] == event_id and letter["attempts"] == 3 and letter["last_status_code"] == 500
    # What the dead-letter alert and the communication dashboard read.
    assert sample_value("webhook_dead_letters_total") - dead_before == 1
    assert sample_value("webhook_deliveries_total", {"outcome": "retried"}) - retried_before == 2
    assert (await hooks.http.get("/api/webhooks/dead-letters", headers=hooks.auth("bob"))).json() == []
    redeliver = f"/api/webhooks/deliveries/{letter['id']}/redeliver"
    assert (await hooks.http.post(redeliver, headers=hooks.auth("bob"))).status_code == 403
    receiver.failing = False
    resp = await hooks.http.post(redeliver, headers=hooks.auth("alice"))
    assert resp.status_code == 202 and resp.json()["status"] == "pending"

    async def delivered() -> bool:
        return [r["status"] for r in await hooks.deliveries("alice", sub["id"])] == ["delivered"]

    await hooks.wait_for(delivered, "the redelivery")
    assert receiver.event_ids(sub["secret"]) == [event_id]
    log = (
        await hooks.http.get(f"/api/webhooks/deliveries/{letter['id']}/attempts", headers=hooks.auth("alice"))
    ).json()
    assert [a["status_code"] for a in log] == [500, 500, 500, 204]
    await nc.close()


async def test_nats_restart_during_delivery_loses_nothing(
    start_hooks: Callable[..., Awaitable[Hooks]], private_server: Callable[[str], Server], receiver: Receiver
) -> None:
    server = private_server("nats")
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await ensure_streams(nc.jetstream(), VENDORS_STREAM, LOCATIONS_STREAM)
    hooks = await start_hooks(server.url)
    sub = await hooks.subscribe("alice", receiver.url, ["vendor.created"])
    await receiver.start()
    sent = await publish(nc.jetstream(), 15)
    server.restart()  # JetStream keeps its streams and durable consumers in its store dir
    for _ in range(100):
        if nc.is_connected:
            break
        await asyncio.sleep(0.1)
    sent += await publish(nc.jetstream(), 15)

    async def everything_arrived() -> bool:
        return len(set(receiver.event_ids(sub["secret"]))) == len(sent)

    await hooks.wait_for(everything_arrived, "all 30 events after the restart")
    assert sorted(set(receiver.event_ids(sub["secret"]))) == sorted(sent)
    await nc.close()


async def test_subscription_validation_ownership_and_ssrf_refusal(
    start_hooks: Callable[..., Awaitable[Hooks]], nats_url: str
) -> None:
    hooks = await start_hooks(
        nats_url, webhook_allow_private_targets=False, webhook_max_subscriptions_per_owner=1
    )
    path = "/api/webhooks/subscriptions"
    assert (await hooks.http.get(path)).status_code == 401
    for body, reason in [
        ({"url": "http://127.0.0.1:9/hook", "event_types": ["vendor.created"]}, "loopback"),
        ({"url": "http://169.254.169.254/latest", "event_types": ["vendor.created"]}, "link-local"),
        ({"url": "http://10.1.2.3/", "event_types": ["vendor.created"]}, "private"),
        ({"url": "http://localhost:8080/", "event_types": ["vendor.created"]}, "loopback"),
        ({"url": "gopher://example.com/", "event_types": ["vendor.created"]}, "http"),
        ({"url": "http://93.184.216.34/", "event_types": ["user.created"]}, "event_types"),
        ({"url": "http://93.184.216.34/", "event_types": []}, "event_types"),
        ({"event_types": ["vendor.created"]}, "url"),
    ]:
        resp = await hooks.http.post(path, json=body, headers=hooks.auth("alice"))
        assert resp.status_code == 422 and reason in resp.text, (body, resp.text)
    created = await hooks.subscribe("alice", "http://93.184.216.34/hook", ["vendor.updated"])
    assert created["secret"].startswith("whsec_")
    second = {"url": "http://93.184.216.34/x", "event_types": ["vendor.created"]}
    again = await hooks.http.post(path, json=second, headers=hooks.auth("alice"))
    assert again.status_code == 409  # over the per-user limit
    one = f"{path}/{created['id']}"
    shown = (await hooks.http.get(one, headers=hooks.auth("alice"))).json()
    assert "secret" not in shown and shown["url"] == "http://93.184.216.34/hook"  # the secret is shown once
    listed = (await hooks.http.get(path, headers=hooks.auth("alice"))).json()
    assert [s["id"] for s in listed] == [created["id"]]
    assert (await hooks.http.get(path, headers=hooks.auth("bob"))).json() == []
    assert (await hooks.http.get(one, headers=hooks.auth("bob"))).status_code == 403
    assert (await hooks.http.delete(one, headers=hooks.auth("bob"))).status_code == 403
    assert (await hooks.http.get(f"{path}/{uuid.uuid4()}", headers=hooks.auth("alice"))).status_code == 404
    assert (await hooks.http.get(f"{path}/not-a-uuid", headers=hooks.auth("alice"))).status_code == 422
    assert (
        await hooks.http.get(f"{one}/deliveries", params={"status": "lost"}, headers=hooks.auth("alice"))
    ).status_code == 422
    assert (await hooks.http.delete(one, headers=hooks.auth("alice"))).status_code == 204
    assert (await hooks.http.get(one, headers=hooks.auth("alice"))).status_code == 404
