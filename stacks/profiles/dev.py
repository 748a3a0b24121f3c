"""dev: one replica per service, small requests, single-node data stores."""

from __future__ import annotations

from typing import Any

from stacks.catalog import SERVICE_NAMES
from stacks.monitoring import DEV_THRESHOLDS

_SMALL = {"cpuRequest": "50m", "memoryRequest": "64Mi", "cpuLimit": "500m", "memoryLimit": "256Mi"}

PROFILE: dict[str, Any] = {
    "images": {"pullPolicy": "IfNotPresent"},
    "spreadAcrossNodes": False,
    "services": {name: {"replicas": 1, "resources": _SMALL, "logLevel": "DEBUG"} for name in SERVICE_NAMES},
    "storage": {"postgres": "1Gi", "redis": "256Mi", "nats": "1Gi", "files": "1Gi", "backups": "1Gi"},
    "postgres": {
        "resources": {
            "cpuRequest": "100m",
            "memoryRequest": "256Mi",
            "cpuLimit": "1",
            "memoryLimit": "512Mi",
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
