"""Session fixtures of the image tests: the dev stack's data stores as local servers, and the dev
stack's service pods as running containers of the images tests/images/fixtures.py builds.

What they measured (start-to-ready times, phase times) is printed at the end of the run under
"service images".
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest

from infra.render.capture import CapturedStack
from services.catalog import SERVICES
from tests.datastores.rendered import cluster_objects
from tests.images.addresses import (
    NAME_LABEL,
    Address,
    dns_names,
    repoint,
    resolver,
    selects,
    services,
    target_port,
)
from tests.images.build import BuiltImage
from tests.images.containers import Network, Pod, create_network, start, wait_ready
from tests.images.daemon import Docker
from tests.images.fixtures import REPORT, timed
from tests.images.pods import Manifest, container_run
from tests.images.stores import rendered_data_stores


@pytest.fixture(scope="session")
def stack_manifests(dev_stack: CapturedStack) -> list[Manifest]:
    """The dev stack's Kubernetes objects, secrets in the clear (what the cluster would hold)."""
    return cluster_objects(dev_stack)


def service_workloads(manifests: list[Manifest]) -> dict[str, Manifest]:
    """The Deployment of each service of the catalog, by its name label."""
    found = {
        (m["metadata"].get("labels") or {}).get(NAME_LABEL): m for m in manifests if m["kind"] == "Deployment"
    }
    missing = sorted(set(SERVICES) - set(found))
    assert not missing, f"the dev stack renders no Deployment for {missing}"
    return {service: found[service] for service in SERVICES}


@pytest.fixture(scope="session")
def container_network(docker: Docker) -> Iterator[Network]:
    network = create_network(docker, f"venta-images-{os.getpid()}")
    yield network
    docker("network", "rm", network.name, check=False)


@pytest.fixture(scope="session")
def data_stores(stack_manifests: list[Manifest], container_network: Network) -> Iterator[dict[str, Address]]:
    with rendered_data_stores(stack_manifests, container_network.gateway) as stores:
        yield stores


@pytest.fixture(scope="session")
def service_pods(
    docker: Docker,
    service_images: dict[str, BuiltImage],
    stack_manifests: list[Manifest],
    container_network: Network,
    data_stores: dict[str, Address],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Pod]]:
    """Every service pod of the dev stack as a container of its image, all started at once (as a
    deploy does), each ready by its own readiness probe."""
    workloads = service_workloads(stack_manifests)
    runs = {service: container_run(workload, stack_manifests) for service, workload in workloads.items()}
    namespace = next(iter(workloads.values()))["metadata"]["namespace"]
    resolve = resolver(
        namespace, stack_manifests, workloads, {s: r.ports for s, r in runs.items()}, data_stores
    )
    fronting = {
        service: [svc for svc in services(stack_manifests) if selects(svc, workload)]
        for service, workload in workloads.items()
    }
    pods = {
        service: Pod(
            service=service,
            name=f"venta-{service}-{os.getpid()}",
            run=dataclasses.replace(run, env={k: repoint(v, resolve) for k, v in run.env.items()}),
            image=service_images[service].reference,
            serving_port=_serving_port(fronting[service], run.ports),
        )
        for service, run in runs.items()
    }
    volumes = tmp_path_factory.mktemp("volumes")
    try:
        with timed("eight containers started, all ready"):
            for service, pod in pods.items():
                dns = [
                    name
                    for svc in fronting[service]
                    for name in dns_names(svc["metadata"]["name"], namespace)
                ]
                start(docker, pod, container_network, dns, volumes)
            wait_ready(docker, list(pods.values()), max(_startup_budget(pod) for pod in pods.values()))
        for pod in pods.values():
            REPORT.append(f"  {pod.service:<18} ready {pod.ready_after_s:5.1f} s after docker run")
        yield pods
    finally:
        docker("rm", "--force", "--volumes", *(pod.name for pod in pods.values()), check=False)


def _serving_port(fronting: list[Manifest], ports: dict[str, int]) -> int:
    assert len(fronting) == 1, f"{len(fronting)} Services select the pod; expected one"
    return target_port(fronting[0], int(fronting[0]["spec"]["ports"][0]["port"]), ports)


def _startup_budget(pod: Pod) -> float:
    """How long the kubelet lets the pod start: the startup probe's window, then readiness' first."""
    probes = pod.run.probes
    startup = probes.get("startupProbe")
    window = startup.initial_delay_s + startup.period_s * startup.failure_threshold if startup else 0.0
    readiness = probes["readinessProbe"]
    return window + readiness.initial_delay_s + readiness.period_s * readiness.failure_threshold
