"""dev: one replica per service, small requests, single-node data stores."""

from __future__ import annotations

from typing import Any

from stacks.catalog import SERVICE_NAMES
from stacks.monitoring import DEV_THRESHOLDS

# Node disk outside volumes (emptyDirs, logs): a service's /tmp is 64Mi; a data store's scratch and
# logs may grow more. Past its limit a pod is evicted rather than filling the node's disk.
_SERVICE_DISK = {"ephemeralStorageRequest": "64Mi", "ephemeralStorageLimit": "256Mi"}
_STORE_DISK = {"ephemeralStorageRequest": "128Mi", "ephemeralStorageLimit": "512Mi"}
_SMALL = {
    "cpuRequest": "50m",
    "memoryRequest": "64Mi",
    "cpuLimit": "500m",
    "memoryLimit": "256Mi",
    **_SERVICE_DISK,
}

PROFILE: dict[str, Any] = {
    "images": {"pullPolicy": "IfNotPresent"},
    "spreadAcrossNodes": False,
    # /docs on each pod's internal port, reached with `kubectl port-forward`: nothing public exposes it.
    "apiDocs": True,
    # No proxy is trusted: a local cluster's clients are counted by the address they connect from.
    "gateway": {"trustedProxyCidrs": []},
    "services": {name: {"replicas": 1, "resources": _SMALL, "logLevel": "DEBUG"} for name in SERVICE_NAMES},
    "storage": {"postgres": "1Gi", "redis": "256Mi", "nats": "1Gi", "files": "1Gi", "backups": "1Gi"},
    "postgres": {
        "resources": {
            "cpuRequest": "100m",
            "memoryRequest": "256Mi",
            "cpuLimit": "1",
            "memoryLimit": "512Mi",
            **_STORE_DISK,
        },
        # A nightly dump onto the backups volume; a target (postgres.backup.target) is optional here.
        "backup": {"schedule": "0 3 * * *", "retentionDays": 3},
    },
    "redis": {
        "resources": {
            "cpuRequest": "50m",
            "memoryRequest": "64Mi",
            "cpuLimit": "500m",
            "memoryLimit": "256Mi",
            **_STORE_DISK,
        },
        "appendOnly": False,
        "auth": True,
    },
    # search-discovery's result cache: its own small Redis that evicts, never persists.
    "redisCache": {
        "resources": {
            "cpuRequest": "20m",
            "memoryRequest": "32Mi",
            "cpuLimit": "250m",
            "memoryLimit": "128Mi",
            **_STORE_DISK,
        },
    },
    "nats": {
        "resources": {
            "cpuRequest": "50m",
            "memoryRequest": "64Mi",
            "cpuLimit": "500m",
            "memoryLimit": "256Mi",
            **_STORE_DISK,
        },
        "replicas": 1,
        "auth": True,
    },
    # Abuse limits, tighter than prod where the volumes are small: the 1Gi files volume and PostgreSQL.
    "webhooks": {"maxSubscriptionsPerOwner": 10, "retentionDays": 3},
    "outbox": {"retentionDays": 2},
    "fileQuota": {"uploads": 50, "bytes": "200Mi", "windowSeconds": 3600},
    # Alert thresholds (stacks/monitoring.py); a stack overrides single values under monitoring.thresholds.
    "monitoring": {"thresholds": DEV_THRESHOLDS.model_dump(by_alias=True)},
}
