"""No pod can fill its node's disk: every container (services, data stores, exporters, the backup job,
init containers) declares ephemeral-storage, sized per stack, with room for the pod's emptyDirs and
its logs; the namespace quota counts it; the backup CronJob has a starting deadline."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import stacks
from infra.render import CapturedStack
from stacks.quantities import memory_bytes
from tests.infra.helpers import Manifest, containers, named, of_kind, pod_template, workloads
from tests.infra.test_settings import config, problems

DISK = "ephemeral-storage"
# Beyond its emptyDirs, a pod writes its containers' logs (the kubelet rotates them at 5 x 10Mi).
LOG_ROOM = 64 * 2**20


@pytest.fixture(scope="module", params=["dev", "prod", "prod-monitoring"])
def captured(request: pytest.FixtureRequest, captured_stack: Callable[..., CapturedStack]) -> CapturedStack:
    """Both stacks, and prod with the monitoring objects on (the exporters' Deployments)."""
    if request.param == "prod-monitoring":
        return captured_stack("prod", config("prod", monitoring={"prometheusOperator": True}))
    return captured_stack(request.param)


def disk(container: Manifest, kind: str) -> int:
    return memory_bytes(container["resources"][kind][DISK])


def test_every_container_declares_ephemeral_storage(captured: CapturedStack) -> None:
    missing = [
        f"{w['kind']} {w['metadata']['name']}: {c['name']} {kind}"
        for w in workloads(captured)
        for c in containers(w)
        for kind in ("requests", "limits")
        if DISK not in c.get("resources", {}).get(kind, {})
    ]
    assert missing == []
    kinds = {w["kind"] for w in workloads(captured)}
    assert {"Deployment", "StatefulSet"} <= kinds


def test_each_pod_has_room_for_its_scratch_and_logs(captured: CapturedStack) -> None:
    """The kubelet evicts a pod whose emptyDirs and logs pass the sum of its containers' limits: a
    limit below what the emptyDirs may legitimately hold would evict a healthy pod."""
    for workload in workloads(captured):
        spec = pod_template(workload)["spec"]
        scratch = sum(
            memory_bytes(v["emptyDir"]["sizeLimit"]) for v in spec.get("volumes", []) if "emptyDir" in v
        )
        limit = sum(disk(c, "limits") for c in spec["containers"])
        assert scratch + LOG_ROOM <= limit, workload["metadata"]["name"]
        for container in containers(workload):
            assert disk(container, "requests") <= disk(container, "limits")


def test_sizes_are_the_stacks_own() -> None:
    dev, prod = stacks.load("dev", config("dev")), stacks.load("prod", config("prod"))
    service_limits = {
        memory_bytes(s.services["webhooks"].resources.ephemeral_storage_limit) for s in (dev, prod)
    }
    assert len(service_limits) == 2
    assert memory_bytes(prod.postgres.resources.ephemeral_storage_limit) > memory_bytes(
        prod.services["webhooks"].resources.ephemeral_storage_limit
    )
    bad = {
        "resources": {
            "cpuRequest": "50m",
            "memoryRequest": "64Mi",
            "cpuLimit": "500m",
            "memoryLimit": "256Mi",
            "ephemeralStorageRequest": "1Gi",
            "ephemeralStorageLimit": "512Mi",
        }
    }
    assert problems("dev", config(redis=bad)) == [
        'redis.resources.ephemeralStorageRequest: given "1Gi"; allowed at most ephemeralStorageLimit (512Mi)'
    ]


def test_the_quota_counts_ephemeral_storage(captured: CapturedStack) -> None:
    hard = named(captured, "ResourceQuota", f"venta-{captured.stack}")["spec"]["hard"]
    hpa_max = {
        h["metadata"]["name"]: h["spec"]["maxReplicas"] for h in of_kind(captured, "HorizontalPodAutoscaler")
    }
    needed = 0
    for workload in workloads(captured):
        # A Deployment's rollout adds a surge pod; a StatefulSet replaces its pods one by one.
        surge = 1 if workload["kind"] == "Deployment" else 0
        count = hpa_max.get(workload["metadata"]["name"], workload["spec"].get("replicas", 1)) + surge
        needed += count * sum(disk(c, "limits") for c in pod_template(workload)["spec"]["containers"])
    assert memory_bytes(hard[f"limits.{DISK}"]) >= needed
    # Containers that forget their own get the LimitRange's, so the quota never refuses them silently.
    limits = named(captured, "LimitRange", f"venta-{captured.stack}")["spec"]["limits"][0]
    assert DISK in limits["default"] and DISK in limits["defaultRequest"]


def test_the_backup_cronjob_has_a_starting_deadline(prod_stack: CapturedStack) -> None:
    (cronjob,) = of_kind(prod_stack, "CronJob")
    deadline = cronjob["spec"]["startingDeadlineSeconds"]
    # Long enough for a controller restart, shorter than the day between two runs.
    assert 60 <= deadline < 86400
