"""Namespace quota from what the workloads declare: every pod at its maximum, plus headroom.

Pure: each component reports its workloads (`Workload`), the Platform hands them here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stacks.model import Resources
from stacks.quantities import cpu_millis, format_cpu, format_memory, memory_bytes

# Room for a rolling update of a data store or a manual job without hitting the quota.
HEADROOM_PERCENT = 20


@dataclass(frozen=True)
class Workload:
    """The most one workload runs at once: its pods (a rollout's surge pod included), each with these
    resources, and the sizes of the volumes it claims."""

    pods: int
    resources: Resources
    claims: tuple[str, ...] = ()


@dataclass(frozen=True)
class Footprint:
    pods: int = 0
    cpu_requests: int = 0
    memory_requests: int = 0
    cpu_limits: int = 0
    memory_limits: int = 0
    disk_requests: int = 0
    disk_limits: int = 0
    claims: int = 0
    storage: int = 0

    def plus(self, w: Workload) -> Footprint:
        res, count = w.resources, w.pods
        return Footprint(
            self.pods + count,
            self.cpu_requests + count * cpu_millis(res.cpu_request),
            self.memory_requests + count * memory_bytes(res.memory_request),
            self.cpu_limits + count * cpu_millis(res.cpu_limit),
            self.memory_limits + count * memory_bytes(res.memory_limit),
            self.disk_requests + count * memory_bytes(res.ephemeral_storage_request),
            self.disk_limits + count * memory_bytes(res.ephemeral_storage_limit),
            self.claims + len(w.claims),
            self.storage + sum(memory_bytes(size) for size in w.claims),
        )


def footprint(workloads: Iterable[Workload]) -> Footprint:
    total = Footprint()
    for workload in workloads:
        total = total.plus(workload)
    return total


def hard_limits(workloads: Iterable[Workload]) -> dict[str, str]:
    used = footprint(workloads)

    def grow(value: int) -> int:
        return value + value * HEADROOM_PERCENT // 100

    return {
        "pods": str(grow(used.pods)),
        "requests.cpu": format_cpu(grow(used.cpu_requests)),
        "requests.memory": format_memory(grow(used.memory_requests)),
        "limits.cpu": format_cpu(grow(used.cpu_limits)),
        "limits.memory": format_memory(grow(used.memory_limits)),
        "requests.ephemeral-storage": format_memory(grow(used.disk_requests)),
        "limits.ephemeral-storage": format_memory(grow(used.disk_limits)),
        "persistentvolumeclaims": str(used.claims),
        "requests.storage": format_memory(used.storage),
        # Only the gateway's Ingress exposes anything; no NodePort or LoadBalancer Services.
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
