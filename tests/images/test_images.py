"""The eight service images, built from services/Dockerfile and run as the dev stack's pods run them
(same user, capabilities, read-only root, /tmp, resources, environment), against real PostgreSQL,
Redis and NATS set up from the stack's own init script and config files.

The tests share one set of running containers (session fixtures in conftest.py); the last test
stops them, as a rollout would.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from services.catalog import SERVICES
from services.common.settings import ServiceSettings
from tests.images.build import BuiltImage
from tests.images.containers import Pod, logs, probe_passes, state, wait_healthy
from tests.images.daemon import Docker

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
BERLIN = (52.52, 13.405)


def test_each_service_has_its_image_and_each_pod_names_it(
    service_images: dict[str, BuiltImage], service_pods: dict[str, Pod], docker: Docker
) -> None:
    assert set(service_images) == set(SERVICES)
    for service, pod in service_pods.items():
        config = docker.inspect(service_images[service].reference, kind="image")[0]["Config"]
        assert config["User"] == "10001:10001" and f"SERVICE_NAME={service}" in config["Env"]
        assert config["Healthcheck"]["Test"][0] == "CMD", f"{service}: HEALTHCHECK in exec form"
        # The pod spec names an image of this service (the tests run the one built here in its place).
        repository = pod.run.image.rsplit("@", 1)[0].rsplit(":", 1)[0]
        assert repository.rsplit("/", 1)[-1] == service, f"{service}'s pod runs {pod.run.image}"


def test_every_pod_is_ready_within_its_startup_budget(service_pods: dict[str, Pod]) -> None:
    for pod in service_pods.values():
        startup = pod.run.probes.get("startupProbe")
        assert startup is not None, f"{pod.service}: no startup probe"
        window = startup.initial_delay_s + startup.period_s * startup.failure_threshold
        assert pod.ready_after_s is not None and pod.ready_after_s < window, (
            f"{pod.service} ready after {pod.ready_after_s} s; its startup probe allows {window} s"
        )


def test_every_probe_of_the_pod_spec_answers_healthy(service_pods: dict[str, Pod]) -> None:
    failures = []
    for pod in service_pods.values():
        assert set(pod.run.probes) == {"startupProbe", "readinessProbe", "livenessProbe"}, pod.service
        for kind, probe in pod.run.probes.items():
            passed, answer = probe_passes(pod, probe)
            if not passed:
                failures.append(f"{pod.service} {kind} {probe.path} on port {probe.port}: {answer}")
    assert not failures, "\n".join(failures)


def test_docker_healthcheck_turns_healthy(docker: Docker, service_pods: dict[str, Pod]) -> None:
    # The image's HEALTHCHECK (first check after its 15 s interval) under the pod's constraints.
    status = wait_healthy(docker, list(service_pods.values()), timeout_s=120)
    unhealthy = {service: s for service, s in status.items() if s != "healthy"}
    details = {
        service: logs(docker, service_pods[service], 15)
        + str(state(docker, service_pods[service]).get("Health"))
        for service in unhealthy
    }
    assert not unhealthy, f"{unhealthy}\n{details}"


def test_the_root_filesystem_is_read_only_and_tmp_writable_for_uid_10001(
    docker: Docker, service_pods: dict[str, Pod]
) -> None:
    script = (
        "import os, tempfile\n"
        "print(os.getuid(), os.getgid())\n"
        "try:\n    open('/app/written', 'w')\nexcept OSError as exc:\n    print('root', exc.errno)\n"
        "with tempfile.NamedTemporaryFile(dir='/tmp') as f:\n    f.write(b'x'); f.flush(); print('tmp ok')\n"
    )
    for pod in service_pods.values():
        out = docker("exec", pod.name, "python", "-c", script).stdout.split("\n")
        assert out[:3] == ["10001 10001", "root 30", "tmp ok"], f"{pod.service}: {out}"  # 30: EROFS


async def test_a_journey_through_the_gateway_reaches_every_service(service_pods: dict[str, Pod]) -> None:
    gateway = _public_url(service_pods["api-gateway"])
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as http:
        view = await http.get(_internal_url(service_pods["api-gateway"]) + "/health/upstreams")
        upstreams = view.json()["upstreams"]
        assert {name for name, up in upstreams.items() if up["ready"]} == set(SERVICES) - {"api-gateway"}

        email = f"vendor-{uuid.uuid4().hex[:8]}@example.com"
        registered = await http.post(
            "/api/users/register", json={"email": email, "password": "image test password", "role": "vendor"}
        )
        assert registered.status_code == 201, registered.text
        login = await http.post("/api/users/login", json={"email": email, "password": "image test password"})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/api/users/me", headers=auth)).json()["email"] == email

        created = await http.post(
            "/api/vendors", json={"name": "Container Tacos", "category": "tacos"}, headers=auth
        )
        assert created.status_code == 201, created.text
        vendor = created.json()["id"]

        # vendor-management's outbox -> NATS -> search-discovery's read model.
        async def found_in_search() -> bool:
            hits = (await http.get("/api/search/vendors", params={"q": "Container Tacos"})).json()["items"]
            return vendor in {hit["id"] for hit in hits}

        await _eventually(found_in_search, "the vendor in search results")

        # real-time clients connect to real-time directly (the gateway proxies HTTP only).
        ws_url = gateway.replace("http", "ws") + "/api/realtime/ws"  # one public address
        async with connect(ws_url, compression=None) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
            assert (await _frame(ws))["type"] == "ready"
            await ws.send(orjson.dumps({"type": "subscribe", "id": "v", "vendor_ids": [vendor]}).decode())
            assert (await _frame(ws, "subscribed", "error"))["type"] == "subscribed"

            # geolocation learns the vendor from NATS, then takes its position and publishes it.
            async def moved() -> bool:
                body = {"lat": BERLIN[0], "lon": BERLIN[1]}
                answer = await http.put(f"/api/locations/vendors/{vendor}", json=body, headers=auth)
                assert answer.status_code in (200, 404), answer.text
                return answer.status_code == 200

            await _eventually(moved, "geolocation accepting the vendor's position")
            update = await _frame(ws, "updates")
            assert [u["vendor_id"] for u in update["updates"]] == [vendor]

        near = await http.get(
            "/api/locations/nearby",
            params={"lat": BERLIN[0], "lon": BERLIN[1], "radius_m": 500},
            headers=auth,
        )
        assert vendor in {r["vendor_id"] for r in near.json()["results"]}, near.text

        # file-management writes to its volume as uid 10001 (the pod's fsGroup makes it writable).
        uploaded = await http.post("/api/files", files={"file": ("menu.png", PNG, "image/png")}, headers=auth)
        assert uploaded.status_code == 201, uploaded.text
        content = await http.get(f"/api/files/{uploaded.json()['id']}/content", headers=auth)
        assert content.status_code == 200 and content.content == PNG

        assert (await http.get("/api/webhooks/subscriptions", headers=auth)).json() == []
        assert (await http.get("/api/webhooks/dead-letters", headers=auth)).status_code == 200
        # real-time has no HTTP route there: its own 404 shows the gateway reached it (not a 502).
        realtime = await http.get("/api/realtime/ws", headers=auth)
        assert realtime.status_code == 404, realtime.text


def test_containers_stop_cleanly_on_sigterm_within_the_grace_period(
    docker: Docker, service_pods: dict[str, Pod]
) -> None:
    # What the kubelet does when a pod goes: the preStop hook, SIGTERM, then SIGKILL once
    # terminationGracePeriodSeconds (counted from the start, hook included) have passed.
    def stop(pod: Pod) -> str | None:
        began = time.monotonic()
        time.sleep(pod.run.pre_stop_sleep_s)
        docker("stop", "--time", str(pod.run.stop_timeout_s - pod.run.pre_stop_sleep_s), pod.name)
        took, exit_code = time.monotonic() - began, state(docker, pod)["ExitCode"]
        if exit_code == 0 and took < pod.run.stop_timeout_s:
            return None
        return f"{pod.service} exited {exit_code} after {took:.1f} s:\n{logs(docker, pod)}"

    with ThreadPoolExecutor(len(service_pods)) as pool:
        problems = [problem for problem in pool.map(stop, service_pods.values()) if problem]
    assert not problems, "\n".join(problems)


def _public_url(pod: Pod) -> str:
    """Where the pod's Service sends its traffic: the container port the Service targets."""
    return f"http://{pod.ip}:{pod.serving_port}"


def _internal_url(pod: Pod) -> str:
    """Probes, metrics and the gateway's upstream view: the container's internal port."""
    port = pod.run.ports.get("internal", ServiceSettings.model_fields["internal_port"].default)
    return f"http://{pod.ip}:{port}"


async def _eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        await asyncio.sleep(0.2)


async def _frame(ws: Any, *kinds: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
        if not kinds or frame["type"] in kinds:
            return frame
