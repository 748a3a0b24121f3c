"""The nats.conf each stack renders, run by real nats-server (Debian's 2.9; the image runs 2.10).

dev runs one server, prod its cluster of three, each node on a loopback address of its own.
Substituted (tests/datastores/servers.py, ``RenderedNats``): the client and monitoring listeners
(``0.0.0.0:4222``, ``0.0.0.0:8222``) by the node's address and free ports, the route listener
``0.0.0.0:6222`` by the node's address (port kept), ``store_dir: /data`` by a temp dir, and each pod's
host name in the routes (``nats-<n>.nats-headless.<namespace>.svc``, what Kubernetes names a
StatefulSet's pods) by that node's address. ``$POD_NAME`` comes from the pod spec's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from services.catalog import SERVICES, STREAMS
from services.common.nats_client import inbox_prefix
from tests.datastores.conftest import STACKS
from tests.datastores.nats import rendered_nats, wait_healthy
from tests.datastores.rendered import Manifest, command_file, container_env, find
from tests.datastores.servers import RenderedNats

USERS = [name for name, entry in SERVICES.items() if entry.nats]


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def servers(stack: str, objects_of: Callable[[str], list[Manifest]]) -> Iterator[list[RenderedNats]]:
    with rendered_nats(objects_of(stack)) as started:
        wait_healthy(started)
        yield started


def credentials(objects: list[Manifest], service: str) -> tuple[str, str]:
    """The user and password the service's own pod gets (its Secret), not the NATS config's copy."""
    env = container_env(find(objects, "Deployment", service), objects)
    return env["NATS_USER"], env["NATS_PASSWORD"]


@contextlib.asynccontextmanager
async def connected(
    servers: list[RenderedNats], user: str, password: str, reconnect: bool = True
) -> AsyncIterator[tuple[Client, list[Exception]]]:
    errors: list[Exception] = []

    async def collect(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(
        [s.url for s in servers],
        user=user,
        password=password,
        error_cb=collect,
        allow_reconnect=reconnect,
        max_reconnect_attempts=5 if reconnect else 0,
        connect_timeout=2,
        inbox_prefix=inbox_prefix(user),  # the replies each user may read: its own inbox (as a service)
    )
    try:
        yield nc, errors
    finally:
        await nc.close()


async def refused(servers: list[RenderedNats], user: str, password: str) -> bool:
    try:
        async with connected(servers, user, password, reconnect=False):
            return False
    except (nats.errors.Error, OSError):
        return True


async def acked(js: JetStreamContext, subject: str, data: str, within: float) -> bool:
    """Publish until the stream acknowledges (a leader election in between answers nothing)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            await js.publish(subject, data.encode(), timeout=2)
            return True
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error):
            await asyncio.sleep(0.2)
    return False


async def stream_cluster(servers: list[RenderedNats], stream: str) -> dict[str, Any]:
    """The stream's cluster view (leader, replicas) from a node's monitoring port: no user of the
    config may ask the JetStream API for a stream's info."""
    url = f"http://{servers[0].host}:{servers[0].monitor_port}/jsz?accounts=true&streams=true"
    async with httpx.AsyncClient(timeout=2) as http:
        accounts = (await http.get(url)).json().get("account_details") or []
    found = [s for a in accounts for s in a.get("stream_detail") or [] if s["name"] == stream]
    assert found, f"{stream} not in {url}"
    return dict(found[0].get("cluster") or {})


async def read_all(js: JetStreamContext, stream: str, durable: str, within: float) -> list[str]:
    """Every message of ``stream`` through the durable consumer ``durable`` (its reader's grant)."""
    deadline = time.monotonic() + within
    while True:
        try:
            consumer = await js.pull_subscribe("", durable=durable, stream=stream)
            return [m.data.decode() for m in await consumer.fetch(10, timeout=5)]
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.mark.parametrize("service", USERS)
async def test_each_services_user_authenticates_with_its_pods_credentials(
    stack: str, servers: list[RenderedNats], objects_of: Callable[[str], list[Manifest]], service: str
) -> None:
    user, password = credentials(objects_of(stack), service)
    assert user == service and password
    async with connected(servers, user, password) as (nc, errors):
        await nc.flush()
        assert nc.is_connected and not errors
    assert await refused(servers, user, password + "x")
    assert await refused(servers, "nobody", password)


@pytest.mark.parametrize("service", USERS)
async def test_each_user_is_held_to_its_subjects_when_the_config_grants_them(
    stack: str, servers: list[RenderedNats], objects_of: Callable[[str], list[Manifest]], service: str
) -> None:
    objects = objects_of(stack)
    conf = command_file(find(objects, "StatefulSet", "nats"), objects, after="--config")
    if "permissions" not in conf:
        pytest.skip("the rendered nats.conf grants no subject permissions: every user may use every subject")
    entry = SERVICES[service]
    others = {s for e in SERVICES.values() for s in e.publishes} - set(entry.publishes)
    async with connected(servers, *credentials(objects, service)) as (nc, errors):
        for subject in entry.publishes:
            await nc.publish(subject, b"{}")
        await nc.flush()
        await asyncio.sleep(0.2)
        assert not errors, f"{service} may not publish its own subjects {entry.publishes}: {errors}"
        for subject in sorted(others):
            await nc.publish(subject, b"{}")
        await nc.flush()
        await asyncio.sleep(0.3)
        violations = " ".join(str(e).lower() for e in errors)
        for subject in sorted(others):
            assert "permissions violation" in violations and subject in violations, (service, subject, errors)


@pytest.mark.parametrize("stack", ["prod"], indirect=True)  # dev runs one NATS server
async def test_prods_cluster_keeps_a_replicated_stream_serving_with_a_node_stopped(
    stack: str, servers: list[RenderedNats], objects_of: Callable[[str], list[Manifest]]
) -> None:
    assert len(servers) == 3
    objects = objects_of(stack)
    # The routes formed: every node sees the two others.
    async with httpx.AsyncClient(timeout=2) as http:
        for server in servers:
            routes = (await http.get(f"http://{server.host}:{server.monitor_port}/routez")).json()
            assert routes["num_routes"] >= len(servers) - 1, routes
    # A stream of the catalog and a durable consumer on it, as the services' users are granted them
    # (each user may touch only its own streams and consumers).
    reader, (stream, durable) = next(
        (name, c) for name, e in SERVICES.items() for c in e.consumers if c[1] != "*"
    )
    publisher = next(name for name, e in SERVICES.items() if set(e.publishes) & set(STREAMS[stream]))
    subject = next(s for s in SERVICES[publisher].publishes if s in STREAMS[stream])
    async with connected(servers, *credentials(objects, publisher)) as (nc, _):
        js = nc.jetstream()
        config = StreamConfig(name=stream, subjects=list(STREAMS[stream]), num_replicas=len(servers))
        await js.add_stream(config)
        for n in range(5):
            assert await acked(js, subject, f"before {n}", within=20), "the new stream accepts nothing"
        cluster = await stream_cluster(servers, stream)
        assert len(cluster.get("replicas") or []) == len(servers) - 1, cluster
        leader = next(s for s in servers if s.env["POD_NAME"] == cluster["leader"])
        leader.stop()  # the node that leads the stream: the others elect a new leader and go on
        accepted = 0
        while accepted < 5 and await acked(js, subject, f"after {accepted}", within=20):
            accepted += 1
        assert accepted == 5, "the stream stopped accepting messages with one node stopped"
        # Serving: a new consumer (placed by the meta leader, re-elected too if it was that node)
        # reads every message, those acknowledged before the stop and after it.
        async with connected(servers, *credentials(objects, reader)) as (reader_nc, _):
            messages = await read_all(reader_nc.jetstream(), stream, durable, within=30)
        assert messages == [f"before {n}" for n in range(5)] + [f"after {n}" for n in range(5)]
        cluster = await stream_cluster([s for s in servers if s is not leader], stream)
        assert cluster.get("leader") not in (None, leader.env["POD_NAME"]), cluster
