"""Each service's NATS user may do what its service does and nothing else. A real nats-server runs the
dev stack's rendered config (only its addresses and store moved); each service connects with the user
and password of its rendered Secret through the shared client (services/common/nats_client.py) and
does what it does in production: create its streams, publish its events, create, pull and acknowledge
its consumers. Then forged publishes, another service's consumer and another service's replies are
tried, and the server refuses them all."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from infra.render import CapturedStack
from services.catalog import SERVICES
from services.common import nats_client
from services.common.nats_client import (
    LOCATIONS_STREAM,
    VENDOR_STATE_STREAM,
    VENDORS_STREAM,
    new_event,
    publish_event,
)
from services.common.settings import NatsSettings
from tests.images.stores import RenderedNats, command_file
from tests.infra.helpers import Manifest
from tests.infra.test_redis_memory import clear_manifests

NATS_USERS = [name for name, spec in SERVICES.items() if spec.nats]
WAIT = 2.0  # seconds for an answer that a refusal never sends


@pytest.fixture(scope="module")
def objects(dev_stack: CapturedStack) -> list[Manifest]:
    return clear_manifests(dev_stack)


@pytest.fixture(scope="module")
def server(objects: list[Manifest]) -> Iterator[RenderedNats]:
    (workload,) = [m for m in objects if m["kind"] == "StatefulSet" and m["metadata"]["name"] == "nats"]
    rendered = RenderedNats(
        "127.0.0.1", command_file(workload, objects, after="--config"), {"POD_NAME": "nats-0"}
    )
    try:
        rendered.start()
        yield rendered
    finally:
        rendered.cleanup()


@pytest.fixture(scope="module")
def passwords(objects: list[Manifest]) -> dict[str, str]:
    """Each service's NATS_USER and NATS_PASSWORD, from the Secret its Deployment reads."""
    secrets = {m["metadata"]["name"]: m.get("stringData", {}) for m in objects if m["kind"] == "Secret"}
    found = {}
    for m in objects:
        if m["kind"] == "Deployment" and m["metadata"]["name"] in NATS_USERS:
            refs = m["spec"]["template"]["spec"]["containers"][0]["envFrom"]
            (name,) = [r["secretRef"]["name"] for r in refs if "secretRef" in r]
            assert secrets[name]["NATS_USER"] == m["metadata"]["name"]
            found[m["metadata"]["name"]] = secrets[name]["NATS_PASSWORD"]
    assert sorted(found) == sorted(NATS_USERS)
    return found


@contextlib.asynccontextmanager
async def as_service(server: RenderedNats, service: str, password: str) -> AsyncIterator[Client]:
    """Connected as the service does it (its inbox prefix included)."""
    settings = NatsSettings(
        service_name=service, nats_servers=[server.url], nats_user=service, nats_password=password
    )
    nc = await nats_client.connect(settings)
    try:
        yield nc
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def watched(
    server: RenderedNats, service: str, password: str
) -> AsyncIterator[tuple[Client, list[str]]]:
    """A raw connection as the service's user that records the server's refusals."""
    refused: list[str] = []

    async def on_error(exc: Exception) -> None:
        refused.append(str(exc))

    nc = await nats.connect(
        server.url,
        user=service,
        password=password,
        inbox_prefix=nats_client.inbox_prefix(service),
        error_cb=on_error,
        allow_reconnect=False,
    )
    try:
        yield nc, refused
    finally:
        await nc.close()


async def pull_one(js: Any, subject: str, durable: str | None, stream: str, deliver: DeliverPolicy) -> Any:
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=deliver, ack_wait=30)
    sub = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
    (msg,) = await sub.fetch(1, timeout=WAIT)
    await msg.ack_sync(timeout=WAIT)  # acknowledged, and the server said so
    return msg


def test_each_service_does_what_it_needs(server: RenderedNats, passwords: dict[str, str]) -> None:
    vendor = str(uuid.uuid4())

    async def run() -> None:
        # real-time listens first (core NATS, no stream), as it does all along.
        async with as_service(server, "real-time", passwords["real-time"]) as realtime:
            heard: asyncio.Queue[bytes] = asyncio.Queue()

            async def on_update(msg: Any) -> None:
                await heard.put(msg.data)

            await realtime.subscribe("location.updated", cb=on_update)
            await realtime.flush()
            async with as_service(server, "vendor-management", passwords["vendor-management"]) as nc:
                js = nc.jetstream()
                await nats_client.ensure_streams(js, VENDORS_STREAM, VENDOR_STATE_STREAM)
                event = new_event("vendor.created", {"id": vendor, "owner_id": "u1", "version": 1})
                await publish_event(js, event)
                await js.publish(nats_client.vendor_state_subject(vendor), b"{}", timeout=WAIT)
            async with as_service(server, "search-discovery", passwords["search-discovery"]) as nc:
                js = nc.jetstream()
                await nats_client.ensure_streams(js, VENDORS_STREAM)
                msg = await pull_one(js, "vendor.>", "search-discovery", "VENDORS", DeliverPolicy.ALL)
                assert msg.subject == "vendor.created"
            async with as_service(server, "geolocation", passwords["geolocation"]) as nc:
                js = nc.jetstream()
                await nats_client.ensure_streams(js, VENDORS_STREAM, LOCATIONS_STREAM, VENDOR_STATE_STREAM)
                await pull_one(js, "vendor.*", "geolocation", "VENDORS", DeliverPolicy.ALL)
                # The reload of VENDOR_STATE: a short-lived consumer, read, then deleted.
                config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
                sub = await js.pull_subscribe("vendor-state.*", stream="VENDOR_STATE", config=config)
                info = await sub.consumer_info()
                assert info.num_pending == 1
                assert len(await sub.fetch(1, timeout=WAIT)) == 1
                await sub.unsubscribe()
                assert await js.delete_consumer("VENDOR_STATE", info.name)
                await publish_event(js, new_event("location.updated", {"vendor_id": vendor}))
            assert b"location.updated" in await asyncio.wait_for(heard.get(), WAIT)
            async with as_service(server, "webhooks", passwords["webhooks"]) as nc:
                js = nc.jetstream()
                await nats_client.ensure_streams(js, VENDORS_STREAM, LOCATIONS_STREAM)
                await pull_one(js, "vendor.*", "webhooks-owners", "VENDORS", DeliverPolicy.ALL)
                await pull_one(js, "vendor.*", "webhooks-vendors", "VENDORS", DeliverPolicy.ALL)
                await pull_one(js, "location.updated", "webhooks-locations", "LOCATIONS", DeliverPolicy.ALL)

    asyncio.run(run())


async def refused_publish(nc: Client, refused: list[str], subject: str) -> None:
    await nc.publish(subject, b"{}")
    await nc.flush()
    await asyncio.sleep(0.2)  # the refusal comes back asynchronously
    # nats-py lower-cases the server's message.
    assert any(f'permissions violation for publish to "{subject.lower()}"' in r.lower() for r in refused), (
        refused
    )


def test_forged_and_foreign_use_is_refused(server: RenderedNats, passwords: dict[str, str]) -> None:
    async def run() -> None:
        # webhooks reassigning a vendor's owner as geolocation would see it.
        async with watched(server, "webhooks", passwords["webhooks"]) as (nc, refused):
            await refused_publish(nc, refused, "vendor.updated")
            js = nc.jetstream(timeout=WAIT)
            # Through JetStream too: no PubAck ever comes, the event is not stored.
            with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
                await js.publish("vendor.updated", b"{}")
            # Another service's durable consumer: neither pulled from nor deleted.
            for subject in (
                "$JS.API.CONSUMER.MSG.NEXT.VENDORS.search-discovery",
                "$JS.API.CONSUMER.DELETE.VENDORS.search-discovery",
                "$JS.API.STREAM.DELETE.VENDORS",
                "$JS.API.STREAM.PURGE.VENDORS",
            ):
                await refused_publish(nc, refused, subject)
            # Another service's replies.
            await nc.subscribe("_INBOX.search-discovery.>")
            await nc.flush()
            await asyncio.sleep(0.2)
            assert any('subscription to "_inbox.search-discovery.>"' in r.lower() for r in refused), refused
        async with watched(server, "geolocation", passwords["geolocation"]) as (nc, refused):
            await refused_publish(nc, refused, "vendor.deleted")
            await refused_publish(nc, refused, "vendor-state.someone")
        async with watched(server, "real-time", passwords["real-time"]) as (nc, refused):
            await refused_publish(nc, refused, "location.updated")
        async with watched(server, "search-discovery", passwords["search-discovery"]) as (nc, refused):
            await refused_publish(nc, refused, "$JS.API.STREAM.UPDATE.LOCATIONS")
        # A service's password is its own: another user's name with it does not log in.
        with pytest.raises(nats.errors.Error):
            await nats.connect(
                server.url, user="vendor-management", password=passwords["webhooks"], allow_reconnect=False
            )

    asyncio.run(run())
