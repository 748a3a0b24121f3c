"""dev: one replica per service, small requests, single-node data stores."""

from __future__ import annotations

from typing import Any

from stacks.catalog import SERVICE_NAMES
from stacks.monitoring import DEV_THRESHOLDS

_SMALL = {"cpuRequest": "50m", "memoryRequest": "64Mi", "cpuLimit": "500m", "memoryLimit": "256Mi"}

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
        },
    },
    "redis": {
        "resources": {
            "cpuRequest": "50m",
            "memoryRequest": "64Mi",
            "cpuLimit": "500m",
            "memoryLimit": "256Mi",
        },
        "appendOnly": False,
        "auth": True,
    },
    "nats": {
        "resources": {
            "cpuRequest": "50m",
            "memoryRequest": "64Mi",
            "cpuLimit": "500m",
            "memoryLimit": "256Mi",
        },
        "replicas": 1,
        "auth": True,
    },
    # Alert thresholds (stacks/monitoring.py); a stack overrides single values under monitoring.thresholds.
    "monitoring": {"thresholds": DEV_THRESHOLDS.model_dump(by_alias=True)},
}
