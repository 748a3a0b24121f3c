"""prod: the scaling table below, pods spread over nodes, replicated data stores."""

from __future__ import annotations

from typing import Any

from stacks.monitoring import PROD_THRESHOLDS


def _scale(low: int, high: int, cpu: int, memory: int) -> dict[str, Any]:
    return {"minReplicas": low, "maxReplicas": high, "cpuTarget": cpu, "memoryTarget": memory}


# Node disk outside volumes (emptyDirs, logs; kubelet rotates logs at 5 x 10Mi): past its limit a pod is
# evicted rather than filling the node's disk. Data stores get more for their scratch and logs.
_SERVICE_DISK = ("128Mi", "512Mi")
_STORE_DISK = ("256Mi", "1Gi")


def _resources(
    cpu_request: str,
    memory_request: str,
    cpu_limit: str,
    memory_limit: str,
    disk: tuple[str, str] = _SERVICE_DISK,
) -> dict[str, str]:
    return {
        "cpuRequest": cpu_request,
        "memoryRequest": memory_request,
        "cpuLimit": cpu_limit,
        "memoryLimit": memory_limit,
        "ephemeralStorageRequest": disk[0],
        "ephemeralStorageLimit": disk[1],
    }


_STANDARD = _resources("250m", "256Mi", "1", "512Mi")

# The scaling table the platform was specified with (the policy pack holds prod to it, in its own
# policy/constants.py): user- and vendor-management 2-5 replicas at 70% CPU / 80% memory,
# geolocation 3-10 at 60/70, real-time 2-8 at 50/60; the gateway and the other services at least 2.
SCALING: dict[str, dict[str, Any]] = {
    "api-gateway": _scale(2, 10, 60, 75),
    "user-management": _scale(2, 5, 70, 80),
    "vendor-management": _scale(2, 5, 70, 80),
    "search-discovery": _scale(2, 6, 70, 80),
    "geolocation": _scale(3, 10, 60, 70),
    "real-time": _scale(2, 8, 50, 60),
    "webhooks": _scale(2, 6, 70, 80),
    "file-management": _scale(2, 4, 70, 80),
}

_RESOURCES: dict[str, dict[str, str]] = {
    "api-gateway": _resources("500m", "256Mi", "1", "512Mi"),
    "geolocation": _resources("500m", "384Mi", "1", "768Mi"),
    "real-time": _resources("250m", "384Mi", "1", "768Mi"),
}

PROFILE: dict[str, Any] = {
    "spreadAcrossNodes": True,
    "apiDocs": False,
    # Empty trusts no X-Forwarded-For: set it in Pulumi.prod.yaml to the ingress controller's pod
    # CIDR, or every anonymous client shares the controller's rate-limit bucket.
    "gateway": {"trustedProxyCidrs": []},
    "services": {
        name: {"autoscaling": scaling, "resources": _RESOURCES.get(name, _STANDARD), "logLevel": "INFO"}
        for name, scaling in SCALING.items()
    },
    "storage": {
        "postgres": "50Gi",
        "redis": "10Gi",
        "nats": "20Gi",
        "files": "100Gi",
        "backups": "100Gi",
        # file-management runs 2-4 pods that must see the same files.
        "filesAccessMode": "ReadWriteMany",
    },
    "postgres": {
        "resources": _resources("500m", "1Gi", "2", "2Gi", _STORE_DISK),
        "readReplica": True,
        "backup": {"schedule": "0 3 * * *", "retentionDays": 14},
    },
    "redis": {
        "resources": _resources("250m", "512Mi", "1", "1Gi", _STORE_DISK),
        "appendOnly": True,
        "auth": True,
    },
    # search-discovery's result cache: its own Redis, maxmemory 3/4 of 512Mi, evicting, never persisted.
    "redisCache": {"resources": _resources("100m", "256Mi", "1", "512Mi", _STORE_DISK)},
    "nats": {
        "resources": _resources("250m", "256Mi", "1", "512Mi", _STORE_DISK),
        "replicas": 3,
        "auth": True,
    },
    # Abuse limits: an owner's few receivers (subscriptions only to their own vendors), two weeks of
    # delivery history for support, a week of outbox rows, 100 uploads or 500 MiB per user and hour.
    "webhooks": {"maxSubscriptionsPerOwner": 10, "retentionDays": 14},
    "outbox": {"retentionDays": 7},
    "fileQuota": {"uploads": 100, "bytes": "500Mi", "windowSeconds": 3600},
    # Alert thresholds (stacks/monitoring.py); a stack overrides single values under monitoring.thresholds.
    # Two exporter pods each, spread like every other prod workload; alerts count what they report once.
    "monitoring": {
        # prod ships its monitors, exporters and alerts: the cluster must run the Prometheus Operator
        # (its CRDs are checked before anything is created), or the stack sets this to false.
        "prometheusOperator": True,
        "thresholds": PROD_THRESHOLDS.model_dump(by_alias=True),
        "exporters": {"replicas": 2},
    },
}
