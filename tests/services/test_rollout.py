"""Rollouts lose no request: replicas of a service run as real processes (``python -m services``, the
container command) behind the real gateway and a small TCP balancer that behaves like kube-proxy; one
replica is replaced under steady POST load and terminated the way the kubelet does it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.builders.shutdown import core, drained_pod
from localdev.servers import die_with_parent, free_port
from localdev.services import ROOT, Ports, service_env
from services.api_gateway.app import create_app as create_gateway
from services.catalog import SERVICES
from services.common.metrics import sample_value
from tests.services.marketplace import Servers, bearer

VENDORS = SERVICES["vendor-management"]


@dataclass
class Balancer:
    """Each new connection goes to one backend, round robin, and stays there (kube-proxy's DNAT).

    A backend marked terminating keeps getting new connections for ``lag`` seconds, the time an
    endpoint removal takes to reach every node; a backend that refuses one gets the client's
    connection reset, as the kernel does behind a DNAT rule.
    """

    lag: float
    backends: dict[str, int] = field(default_factory=dict)
    terminating: dict[str, float] = field(default_factory=dict)
    connections: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    _turn: int = 0

    def add(self, name: str, port: int) -> None:
        self.backends[name] = port

    def terminate(self, name: str) -> None:
        self.terminating[name] = time.monotonic()

    def _pick(self) -> str:
        now = time.monotonic()
        routable = [n for n in self.backends if now - self.terminating.get(n, now) < self.lag]
        self._turn += 1
        return routable[self._turn % len(routable)]

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        name = self._pick()
        try:
            backend_reader, backend = await asyncio.open_connection("127.0.0.1", self.backends[name])
        except OSError:
            self.refused += 1
            sock = client.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.transport.abort()  # RST
            return
        self.connections[name] += 1
        await asyncio.gather(_pipe(client_reader, backend), _pipe(backend_reader, client))


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        sink.close()


@dataclass
class Replica:
    name: str
    port: int
    internal_port: int  # probes
    proc: asyncio.subprocess.Process
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def replicas() -> AsyncIterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for replica in started:
        if replica.proc.returncode is None:
            replica.proc.kill()
            await replica.proc.wait()


async def start_replica(
    name: str, env: dict[str, str], replicas: list[Replica], tmp_path: Path, **extra: str
) -> Replica:
    port, internal_port = free_port(), free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services",
            VENDORS.name,
            cwd=ROOT,
            env={**os.environ, **env, "PORT": str(port), "INTERNAL_PORT": str(internal_port), **extra},
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    replica = Replica(name, port, internal_port, proc, log)
    replicas.append(replica)
    async with httpx.AsyncClient(timeout=2) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.returncode is None, f"{name} exited during start-up:\n{replica.logs()[-3000:]}"
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"http://127.0.0.1:{internal_port}/health/ready")).status_code == 200:
                    return replica
            await asyncio.sleep(0.1)
    raise AssertionError(f"{name} not ready within 60 s:\n{replica.logs()[-3000:]}")


async def vendor_env(servers: Servers, tmp_path: Path) -> dict[str, str]:
    """The environment infra gives vendor-management, on this test's servers; the drain as deployed."""
    urls = {"db:vendor-management": await servers.new_database(), "nats": servers.nats_url}
    env = service_env(VENDORS, urls, {VENDORS.name: Ports(0, 0)}, servers.signing_seed, tmp_path)
    env.pop("SHUTDOWN_DRAIN_SECONDS")  # the local runner's 0; pods drain for the catalog's time
    return env


async def terminate_like_the_kubelet(replica: Replica, balancer: Balancer) -> float:
    """Pod deletion: marked terminating (endpoint removal starts), the preStop hook of the real pod
    spec runs, then SIGTERM, then SIGKILL if the grace period runs out. Returns seconds to exit."""
    pod = drained_pod(core.ContainerArgs(name=VENDORS.name))
    hook = pod["containers"][0].lifecycle.pre_stop
    started = time.monotonic()
    balancer.terminate(replica.name)
    await asyncio.sleep(hook.sleep.seconds)
    replica.proc.send_signal(signal.SIGTERM)
    deadline = started + pod["termination_grace_period_seconds"]
    while replica.proc.returncode is None:
        if time.monotonic() > deadline:
            replica.proc.kill()
            raise AssertionError(f"{replica.name} outlived its grace period and was killed")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_replacing_a_replica_under_post_load_fails_no_request(
    servers: Servers, serve: Any, replicas: list[Replica], tmp_path: Path
) -> None:
    env = await vendor_env(servers, tmp_path)
    balancer = Balancer(lag=2.0)
    for name in ("old-a", "old-b"):
        replica = await start_replica(name, env, replicas, tmp_path)
        balancer.add(name, replica.port)
    token = bearer(servers.issuer().issue(str(uuid.uuid4()), "vendor"))
    statuses: Counter[int | str] = Counter()
    stop = asyncio.Event()

    async def post_steadily(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            try:
                response = await client.post(
                    "/api/vendors", json={"name": "Stall", "category": "food"}, headers=token
                )
                statuses[response.status_code] += 1
            except httpx.TransportError as exc:
                statuses[type(exc).__name__] += 1
            await asyncio.sleep(0.005)

    async with balancer.serving() as upstream:
        gateway_url = await serve(
            create_gateway(servers.gateway_settings({VENDORS.name: upstream}, rate_limit_requests=1_000_000))
        )
        async with httpx.AsyncClient(base_url=gateway_url, timeout=15) as client:
            load = [asyncio.create_task(post_steadily(client)) for _ in range(4)]
            await asyncio.sleep(2)
            # The rollout: a new replica first (maxSurge 1), then the old one goes.
            new = await start_replica("new-c", env, replicas, tmp_path)
            balancer.add(new.name, new.port)
            old = replicas[0]
            served_before = sum(statuses.values())
            took = await terminate_like_the_kubelet(old, balancer)
            await asyncio.sleep(1)
            stop.set()
            await asyncio.gather(*load)

    assert statuses == Counter({201: statuses[201]}), f"failed requests: {statuses}"
    assert statuses[201] - served_before > 100  # the load went on through the whole termination
    assert balancer.refused == 0
    assert balancer.connections["old-a"] > 0 and balancer.connections["new-c"] > 0
    assert old.proc.returncode == 0, old.logs()[-3000:]
    assert "Application shutdown complete." in old.logs()
    assert took < drained_pod(core.ContainerArgs(name="x"))["termination_grace_period_seconds"]


async def test_draining_replica_is_not_ready_closes_each_connection_and_then_stops(
    servers: Servers, replicas: list[Replica], tmp_path: Path
) -> None:
    env = await vendor_env(servers, tmp_path)
    replica = await start_replica("solo", env, replicas, tmp_path, SHUTDOWN_DRAIN_SECONDS="2")
    url = f"http://127.0.0.1:{replica.port}"
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        assert (await client.get("/vendors")).headers.get("connection") != "close"
        replica.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.sleep(0.3)
        ready = await client.get(f"http://127.0.0.1:{replica.internal_port}/health/ready")
        assert ready.status_code == 503 and ready.json()["failed"] == ["draining"]
        listing = await client.get("/vendors")  # still served, on a fresh connection each time
        assert listing.status_code == 200 and listing.headers["connection"] == "close"
        await asyncio.wait_for(replica.proc.wait(), 10)
    assert time.monotonic() - signalled >= 2
    assert replica.proc.returncode == 0 and "Application shutdown complete." in replica.logs()


async def test_a_post_the_service_may_have_received_is_not_sent_twice(servers: Servers, serve: Any) -> None:
    # An upstream that reads the request and drops the connection without answering: the request
    # went out, so only an idempotent one may be tried again (a refused one is: test_api_gateway).
    accepted: list[bytes] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(await reader.read(65536))
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    gateway_url = await serve(create_gateway(servers.gateway_settings({VENDORS.name: upstream})))
    token = bearer(servers.issuer().issue(str(uuid.uuid4()), "vendor"))
    retried = {"upstream": VENDORS.name, "outcome": "retried"}
    before = sample_value("gateway_upstream_requests_total", retried)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        post = await client.post("/api/vendors", json={"name": "Once", "category": "food"}, headers=token)
        assert post.status_code == 502 and len(accepted) == 1
        assert sample_value("gateway_upstream_requests_total", retried) == before
        get = await client.get("/api/vendors")
        assert get.status_code == 502 and len(accepted) - 1 >= 3  # GET: tried again
    server.close()
