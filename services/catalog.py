"""The one list of services: what each is called, where its code lives and what it needs to run.

``python -m services <name>``, the local run, ``stacks/`` (which services a stack configures) and
``infra/`` (what to wire to each service) read this table; so do the tests that hold
docker-compose.yml, the deploy workflow's image matrix and the gateway's route table to it. It imports
nothing from the project: it is the one part of services/ that infra/ and stacks/ may
import. A new service is one line in ``SERVICES``, its package under services/ and its route in
``services/api_gateway/routes_table.py``, plus the scaling prod gives it (``stacks/profiles/prod.py``,
a choice prod refuses to load without, naming the key); every other list of services is derived from
this table or fails a test until it agrees (Compose, the image matrix, the dashboards, the docs).
``SHUTDOWN`` holds how long each step of stopping a service takes, read by the services' settings and
by the pod spec (its preStop hook and termination grace period), so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

# NATS subjects (docs/contracts.md, "NATS subjects and streams").
VENDOR_EVENTS = ("vendor.created", "vendor.updated", "vendor.deleted")
LOCATION_UPDATED = "location.updated"
VENDOR_STATE = "vendor-state.*"  # each vendor's latest event, on vendor-state.<vendor id>
# JetStream streams and the subjects each captures (services/common/nats_client.py configures them).
STREAMS: dict[str, tuple[str, ...]] = {
    "VENDORS": VENDOR_EVENTS,
    "LOCATIONS": (LOCATION_UPDATED,),
    "VENDOR_STATE": (VENDOR_STATE,),
}

# Defaults that a stack's settings and the services' own settings share, so that a service started
# without a stack behaves as one deployed with the stack's defaults.
DB_POOL_MIN = 2
DB_POOL_MAX = 10
# PostgreSQL's default max_connections is 100: one pool may never ask for more.
DB_POOL_MAX_LIMIT = 100
# A vendor that has not reported its location for this long drops out of every result.
LOCATION_STALE_AFTER_SECONDS = 120
# Limits that keep one account from flooding a shared store; a stack tunes them (stacks/model.py).
WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER = 10
WEBHOOK_RETENTION_DAYS = 14  # finished deliveries and their attempts
OUTBOX_RETENTION_DAYS = 7  # vendor-management's published outbox rows
FILE_QUOTA_UPLOADS = 100  # per user and window
FILE_QUOTA_BYTES = 500 * 1024 * 1024  # per user and window
FILE_QUOTA_WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class Service:
    name: str  # Kubernetes name, SERVICE build arg, NATS user and queue / durable-consumer name
    package: str  # module under services/
    dev_port: int  # port of the local run (python -m localdev)
    area: str  # marketplace, location, communication or infrastructure (the `component` label)
    database: bool = False  # its own PostgreSQL database and role
    redis: bool = False  # the main Redis (REDIS_URL): nothing in it is ever evicted
    # Caches in the bounded Redis that evicts its least recently used keys (CACHE_REDIS_URL).
    cache: bool = False
    # NATS subjects. Its NATS user may publish and subscribe to these and nothing else beyond the
    # JetStream API its streams and consumers need (infra/builders/nats_permissions.py).
    publishes: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    # JetStream consumers it creates and reads, as (stream, consumer name): durable ones are named
    # `<name>[-<suffix>]`; "*" stands for short-lived ones named at random (one per use).
    consumers: tuple[tuple[str, str], ...] = ()
    # Consumes through JetStream durable consumers named `<name>[-<suffix>]` (alerts watch their backlog).
    durable_consumer: bool = False
    # Holds JWT_SIGNING_SEED and signs access tokens; every service gets the public key.
    signs_tokens: bool = False
    file_storage: bool = False  # uploads on a volume at STORAGE_DIR
    internet_egress: bool = False  # connects to public addresses (webhook targets)
    # The public entry: the only service reached from outside, and the one that calls every other one.
    public_entry: bool = False
    # Environment beyond what the flags above imply, with its default value.
    env: tuple[tuple[str, str], ...] = ()

    @property
    def nats(self) -> bool:
        return bool(self.publishes or self.consumes)

    @property
    def env_suffix(self) -> str:
        """`user-management` -> `USER_MANAGEMENT`, as in `UPSTREAM_USER_MANAGEMENT`."""
        return self.name.upper().replace("-", "_")

    @property
    def database_name(self) -> str:
        """PostgreSQL identifiers cannot hold `-` unquoted, so `vendor-management` -> `vendor_management`."""
        return self.name.replace("-", "_")

    @property
    def dev_internal_port(self) -> int:
        """The local run's INTERNAL_PORT (probes, metrics, docs): 9080 and up."""
        return self.dev_port + 1000


SERVICES: dict[str, Service] = {
    entry.name: entry
    for entry in (
        Service("api-gateway", "api_gateway", 8080, "infrastructure", redis=True, public_entry=True),
        Service("user-management", "user_management", 8081, "marketplace", database=True, signs_tokens=True),
        Service(
            "vendor-management",
            "vendor_management",
            8082,
            "marketplace",
            database=True,
            publishes=(*VENDOR_EVENTS, VENDOR_STATE),
            env=(("OUTBOX_RETENTION_DAYS", str(OUTBOX_RETENTION_DAYS)),),
        ),
        Service(
            "search-discovery",
            "search_discovery",
            8083,
            "marketplace",
            database=True,
            cache=True,
            consumes=VENDOR_EVENTS,
            consumers=(("VENDORS", "search-discovery"),),
            durable_consumer=True,
        ),
        Service(
            "geolocation",
            "geolocation",
            8084,
            "location",
            redis=True,
            publishes=(LOCATION_UPDATED,),
            consumes=(*VENDOR_EVENTS, VENDOR_STATE),
            # Its vendor events; VENDOR_STATE read whole when Redis lost the vendor data.
            consumers=(("VENDORS", "geolocation"), ("VENDOR_STATE", "*")),
            durable_consumer=True,
            env=(("LOCATION_STALE_AFTER_SECONDS", str(LOCATION_STALE_AFTER_SECONDS)),),
        ),
        Service("real-time", "real_time", 8085, "location", consumes=(LOCATION_UPDATED,)),
        Service(
            "webhooks",
            "webhooks",
            8086,
            "communication",
            database=True,
            consumes=(*VENDOR_EVENTS, LOCATION_UPDATED),
            # The fan-out of each stream, and the owners read from the start of VENDORS.
            consumers=(
                ("VENDORS", "webhooks-vendors"),
                ("LOCATIONS", "webhooks-locations"),
                ("VENDORS", "webhooks-owners"),
            ),
            durable_consumer=True,
            internet_egress=True,
            env=(
                ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false"),
                ("WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER", str(WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER)),
                ("WEBHOOK_RETENTION_DAYS", str(WEBHOOK_RETENTION_DAYS)),
            ),
        ),
        Service(
            "file-management",
            "file_management",
            8087,
            "infrastructure",
            database=True,
            file_storage=True,
            env=(
                ("FILE_QUOTA_UPLOADS", str(FILE_QUOTA_UPLOADS)),
                ("FILE_QUOTA_BYTES", str(FILE_QUOTA_BYTES)),
                ("FILE_QUOTA_WINDOW_SECONDS", str(FILE_QUOTA_WINDOW_SECONDS)),
            ),
        ),
    )
}


@dataclass(frozen=True)
class ShutdownTimes:
    """Stopping a replica without losing a request, step by step (seconds)."""

    # preStop: the pod is already marked terminating and keeps serving everything while its removal
    # from the endpoints reaches kube-proxy, the Ingress and the gateway's DNS.
    endpoint_propagation: int = 5
    # After SIGTERM: readiness answers 503 and every response says `Connection: close`, so clients
    # holding keep-alive connections move to other replicas. Longer than the gateway's pooled
    # keep-alive (15 s): every pooled connection is either used in this time (and closed after its
    # answer) or too old for the gateway to use again, so none is closed under a request.
    drain: int = 20
    # Then the listener closes and requests still running get this long to finish.
    in_flight: int = 10
    # Then the app's shutdown: consumers finish their batch, NATS drains, pools close.
    cleanup: int = 10

    @property
    def grace_period(self) -> int:
        """terminationGracePeriodSeconds: every step above; past it the kubelet sends SIGKILL."""
        return self.endpoint_propagation + self.drain + self.in_flight + self.cleanup


SHUTDOWN = ShutdownTimes()
