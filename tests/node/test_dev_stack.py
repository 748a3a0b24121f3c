"""The dev stack on the real node, deployed by the real engine with its data stores external (servers
on the host): every service pod Ready through its own probes, a journey from the host through the
gateway's Service, and a config rollout that replaces pods one at a time with none unready.

The tests run in file order on one deployment (tests/node/conftest.py); the rollout comes last.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from stacks.catalog import SERVICES
from tests.images import journey
from tests.node import ingress
from tests.node.stack import NAME_LABEL, STACK, NodeStack, node_image
from tests.node.watch import Watching

pytestmark = pytest.mark.e2e

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def test_every_service_pod_is_ready_through_its_own_probes(node_stack: NodeStack) -> None:
    node_range = ipaddress.IPv4Network(node_stack.node.node()["spec"]["podCIDR"])
    by_service: dict[str, list[dict[str, object]]] = {}
    for pod in node_stack.pods():
        by_service.setdefault(pod["metadata"]["labels"][NAME_LABEL], []).append(pod)
    assert sorted(by_service) == sorted(spec.name for spec in SERVICES)
    for service, pods in by_service.items():
        assert len(pods) == node_stack.settings.services[service].min_pods, service
        for pod in pods:
            spec, status = pod["spec"], pod["status"]
            assert isinstance(spec, dict) and isinstance(status, dict)
            (container,) = spec["containers"]
            assert container["image"] == node_image(service)
            # Ready came from the kubelet running these probes against the container.
            assert all("httpGet" in container[probe] for probe in PROBES), service
            conditions = {c["type"]: c["status"] for c in status["conditions"]}
            assert conditions["Ready"] == conditions["ContainersReady"] == "True", service
            (state,) = status["containerStatuses"]
            assert state["started"] and state["ready"] and state["restartCount"] == 0, (service, state)
            assert state["containerID"].startswith("containerd://")
            assert ipaddress.ip_address(status["podIP"]) in node_range


def test_no_data_store_runs_in_the_cluster(node_stack: NodeStack) -> None:
    cluster, namespace = node_stack.node.cluster, node_stack.namespace
    assert cluster.get_json("statefulsets", "-n", namespace)["items"] == []
    claims = cluster.get_json("persistentvolumeclaims", "-n", namespace)["items"]
    names = [claim["metadata"]["name"] for claim in claims]
    assert all(name.startswith("file-management") for name in names), names


async def test_the_gateway_service_answers_a_journey_from_the_host(node_stack: NodeStack) -> None:
    try:
        await journey.walk(node_stack.gateway_url)
    except httpx.TransportError as exc:
        namespace = node_stack.settings.gateway.ingress_namespace
        stand_in_log = ingress.log(node_stack.node.cluster, namespace)
        raise AssertionError(f"{exc!r}; the ingress stand-in's log:\n{stand_in_log}") from exc


@contextmanager
def requests_through_the_gateway(url: str) -> Iterator[list[str]]:
    """GETs through the public address every 50 ms until the block ends; yields the failures."""
    failures: list[str] = []
    done = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=5) as http:
            while not done.is_set():
                try:
                    answer = http.get("/api/search/vendors", params={"q": "rollout"})
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        done.set()
        thread.join(10)


def test_a_config_change_rolls_every_service_one_pod_at_a_time_with_none_unready(
    node_stack: NodeStack,
) -> None:
    settings = node_stack.settings
    wanted = {name: service.min_pods for name, service in settings.services.items()}
    before = node_stack.service_pods()
    args = ["config", "set-all", "--stack", STACK, "--path"]
    for spec in SERVICES:
        level = "DEBUG" if settings.services[spec.name].log_level != "DEBUG" else "INFO"
        args += ["--plaintext", f'venta:services["{spec.name}"].logLevel={level}']
    node_stack.project.run(*args)
    watching = Watching(node_stack.node.cluster, node_stack.namespace)
    watching.wait_until_seen(set(before.values()))
    began = time.monotonic()
    try:
        with requests_through_the_gateway(node_stack.gateway_url) as failures:
            node_stack.up("up config rollout")
            # The old pods go after their replacements are ready and available (minReadySeconds).
            deadline = time.monotonic() + 120
            while set(node_stack.service_pods().values()) & set(before.values()):
                assert time.monotonic() < deadline, "old pods still running 120 s after the update"
                time.sleep(1)
    finally:
        watch = node_stack.rollouts["config rollout"] = watching.stop()
    node_stack.timings["config rollout of every service"] = time.monotonic() - began
    replaced = watch.created_since(began)
    assert sorted(replaced) == sorted(wanted), "every service rolled"
    too_few, too_many = [], []
    for snapshot in watch.since(began):
        at = f"{snapshot.at - began:6.1f} s"
        for service, count in wanted.items():
            ready, live = snapshot.ready.get(service, 0), snapshot.live.get(service, 0)
            if ready < count:
                too_few.append(f"{at} {service}: {ready} ready")
            if live > count + 1:
                too_many.append(f"{at} {service}: {live} pods")
    assert not too_few, "a service went below its Ready pods:\n" + "\n".join(too_few)
    assert not too_many, "more than one surge pod:\n" + "\n".join(too_many)
    assert not failures, f"{len(failures)} requests failed during the rollout: {failures[:5]}"
