"""Ports and object names that more than one part of infra/ refers to: components, builders, exporters.

Only names that are contracts are fixed here. A Service's name is its DNS name (clients connect to
`postgres.<namespace>.svc`); a StatefulSet's name makes its pods' names (`nats-0.nats-headless`, used
in NATS routes and by the replica's clone); a Deployment is named after its service for the HPA's
`scaleTargetRef` and for operators (`kubectl rollout status deployment/geolocation`). ConfigMaps and
Secrets are never named here: the engine names them and their readers use the generated name.
"""

from __future__ import annotations

# Every service: container port 8000 named `http` (docs/contracts.md), exposed by its Service on 80.
SERVICE_PORT = 8000
SERVICE_PORT_NAME = "http"
SERVICE_CLUSTER_PORT = 80
# And 9090 named `internal` for probes, /metrics, the gateway's /health/upstreams and the API docs,
# exposed by its Service on 9090 too (the gateway calls `http://<service>:9090/health/ready`); the
# Ingress and the public port never reach it.
INTERNAL_PORT = 9090
INTERNAL_PORT_NAME = "internal"
# file-management keeps uploads here, on its volume.
STORAGE_DIR = "/data/files"

# The data stores as the Platform names them: their Services' DNS names and their pods' names.
POSTGRES = "postgres"
REDIS = "redis"
# search-discovery's result cache: a Redis of its own that may evict (infra/components/redis.py).
REDIS_CACHE = "redis-cache"
NATS = "nats"
POSTGRES_PORT = 5432
REDIS_PORT = 6379
NATS_PORTS = {"client": 4222, "cluster": 6222, "monitor": 8222}
POSTGRES_SUPERUSER = "postgres"


def headless(name: str) -> str:
    """The headless Service of a StatefulSet: it gives each pod a stable DNS name."""
    return f"{name}-headless"


def pod_address(name: str, ordinal: int) -> str:
    """`nats-2.nats-headless`: one pod of a StatefulSet, reachable from the same namespace."""
    return f"{name}-{ordinal}.{headless(name)}"


def replica(name: str) -> str:
    """The PostgreSQL read replica's StatefulSet and Service: the services' DATABASE_READ_URL host."""
    return f"{name}-replica"


def cluster_host(name: str, namespace: str) -> str:
    """A Service's address from any namespace."""
    return f"{name}.{namespace}.svc"
