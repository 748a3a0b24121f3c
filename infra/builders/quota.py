"""Namespace quota sized from the settings: every workload at its maximum, plus one surge pod each."""

from __future__ import annotations

from dataclasses import dataclass

from infra.observability.exporters import RESOURCES as EXPORTER_RESOURCES
from infra.observability.exporters import exporters
from stacks.model import Resources, StackSettings
from stacks.quantities import cpu_millis, format_cpu, format_memory, memory_bytes

# Room for a rolling update of a data store or a manual job without hitting the quota.
HEADROOM_PERCENT = 20


@dataclass(frozen=True)
class Footprint:
    pods: int = 0
    cpu_requests: int = 0
    memory_requests: int = 0
    cpu_limits: int = 0
    memory_limits: int = 0

    def plus(self, count: int, res: Resources) -> Footprint:
        return Footprint(
            self.pods + count,
            self.cpu_requests + count * cpu_millis(res.cpu_request),
            self.memory_requests + count * memory_bytes(res.memory_request),
            self.cpu_limits + count * cpu_millis(res.cpu_limit),
            self.memory_limits + count * memory_bytes(res.memory_limit),
        )


def footprint(settings: StackSettings) -> Footprint:
    total = Footprint()
    for service in settings.services.values():
        total = total.plus(service.max_pods + 1, service.resources)  # +1: maxSurge during a rollout
    total = total.plus(1 + int(settings.postgres.read_replica), settings.postgres.resources)
    if settings.postgres.backup:
        total = total.plus(1, settings.postgres.resources)
    total = total.plus(1, settings.redis.resources)
    total = total.plus(settings.nats.replicas, settings.nats.resources)
    monitoring = settings.monitoring
    if monitoring.prometheus_operator:
        # The data stores' exporters (infra/observability), each with a surge pod like the services.
        count = len(exporters(monitoring.exporters, settings.nats.replicas))
        total = total.plus(count * (monitoring.exporters.replicas + 1), EXPORTER_RESOURCES)
    return total


def hard_limits(settings: StackSettings) -> dict[str, str]:
    used = footprint(settings)

    def grow(value: int) -> int:
        return value + value * HEADROOM_PERCENT // 100

    storage = settings.storage
    claims = (
        3 + int(settings.postgres.read_replica) + settings.nats.replicas + int(bool(settings.postgres.backup))
    )
    disk = (
        memory_bytes(storage.postgres) * (1 + int(settings.postgres.read_replica))
        + memory_bytes(storage.redis)
        + memory_bytes(storage.nats) * settings.nats.replicas
        + memory_bytes(storage.files)
        + (memory_bytes(storage.backups) if settings.postgres.backup else 0)
    )
    return {
        "pods": str(grow(used.pods)),
        "requests.cpu": format_cpu(grow(used.cpu_requests)),
        "requests.memory": format_memory(grow(used.memory_requests)),
        "limits.cpu": format_cpu(grow(used.cpu_limits)),
        "limits.memory": format_memory(grow(used.memory_limits)),
        "persistentvolumeclaims": str(claims),
        "requests.storage": format_memory(disk),
        # Only the gateway's Ingress exposes anything; no NodePort or LoadBalancer Services.
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
