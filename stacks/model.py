"""The validated, immutable settings of one stack.

Field names are snake_case in Python and camelCase in `Pulumi.<stack>.yaml` (`minReplicas`).
Every constraint carries the words shown to an operator as "allowed ..." when a value breaks it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from services.catalog import (
    DB_POOL_MAX,
    DB_POOL_MAX_LIMIT,
    DB_POOL_MIN,
    FILE_QUOTA_BYTES,
    FILE_QUOTA_UPLOADS,
    FILE_QUOTA_WINDOW_SECONDS,
    LOCATION_STALE_AFTER_SECONDS,
    OUTBOX_RETENTION_DAYS,
    WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER,
    WEBHOOK_RETENTION_DAYS,
)
from stacks.catalog import SERVICE_NAMES, SERVICES, ServiceName
from stacks.monitoring import DEV_THRESHOLDS, AlertThresholds
from stacks.quantities import cpu_millis, format_memory, memory_bytes

ProfileName = Literal["dev", "prod"]


def allowed_error(allowed: str, field: str | None = None) -> PydanticCustomError:
    """An error the loader renders as `<path>[.<field>]: given <value>; allowed <allowed>`."""
    ctx: dict[str, Any] = {"allowed": allowed}
    if field is not None:
        ctx["field"] = field
    return PydanticCustomError("venta_allowed", "allowed {allowed}", ctx)


def _constraint(predicate: Callable[[str], bool], allowed: str) -> AfterValidator:
    def check(value: str) -> str:
        if not predicate(value):
            raise allowed_error(allowed)
        return value

    return AfterValidator(check)


def _matches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda value: bool(compiled.fullmatch(value))


def _parses(parse: Callable[[str], int]) -> Callable[[str], bool]:
    def ok(value: str) -> bool:
        try:
            parse(value)
        except ValueError:
            return False
        return True

    return ok


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


def _is_seed(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"

DnsLabel = Annotated[
    str, _constraint(_matches(_DNS_LABEL), "a DNS label: lower-case letters, digits and '-', at most 63")
]
HostName = Annotated[
    str, _constraint(_matches(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"), "a host name such as api.example.com")
]


def _is_range(value: str) -> bool:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return "/" in value


def _is_address(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


AddressRange = Annotated[
    str, _constraint(_is_range, "an IPv4 address range such as 10.0.5.0/24 (its host bits zero)")
]
StoreHost = Annotated[
    str,
    _constraint(
        lambda v: _is_address(v) or bool(re.fullmatch(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*", v)),
        "a host name such as db.example.com or an IPv4 address",
    ),
]
Port = Annotated[int, Field(ge=1, le=65535)]
CpuQuantity = Annotated[str, _constraint(_parses(cpu_millis), "a CPU quantity such as 250m or 1")]
MemoryQuantity = Annotated[
    str, _constraint(_parses(memory_bytes), "a memory or storage quantity such as 256Mi or 10Gi")
]
ImageTag = Annotated[
    str,
    _constraint(
        lambda v: bool(re.fullmatch(_TAG, v)) and v != "latest",
        "an image tag of letters, digits, '_', '.', '-' (at most 128), never 'latest'",
    ),
]
Digest = Annotated[str, _constraint(_matches(_DIGEST), "a digest 'sha256:' followed by 64 hex digits")]
Registry = Annotated[
    str,
    _constraint(
        _matches(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*"),
        "a registry and path such as ghcr.io/venta or localhost:5000",
    ),
]
PinnedImage = Annotated[
    str,
    _constraint(
        lambda v: bool(re.fullmatch(rf"[a-z0-9./_-]+:{_TAG}(@{_DIGEST})?", v)) and ":latest" not in v,
        "an image with an explicit tag (optionally @sha256:...), never 'latest', e.g. postgres:16.4",
    ),
]
Cidr = Annotated[
    str,
    _constraint(_is_cidr, "a CIDR block such as 10.244.0.0/16 or fd00:10:244::/56, without host bits set"),
]
CronSchedule = Annotated[
    str, _constraint(_matches(r"(\S+\s+){4}\S+"), "a five-field cron schedule such as '0 3 * * *'")
]
LabelKey = Annotated[
    str,
    _constraint(
        _matches(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"),
        "a label key such as release or example.com/team",
    ),
]
LabelValue = Annotated[
    str,
    _constraint(
        _matches(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?"),
        "a label value of at most 63 letters, digits, '-', '_', '.'",
    ),
]
Percent = Annotated[int, Field(ge=1, le=100)]
ReplicaCount = Annotated[int, Field(ge=1, le=100)]


_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----\s+[A-Za-z0-9+/=\s]+-----END PUBLIC KEY-----\s*")


def _is_ed25519_public_pem(value: str) -> bool:
    """Exactly one PEM block holding an Ed25519 public key, the kind user-management signs with."""
    if not _PEM_BLOCK.fullmatch(value.strip() + "\n"):
        return False
    try:
        return isinstance(load_pem_public_key(value.encode()), Ed25519PublicKey)
    except (ValueError, UnsupportedAlgorithm):
        return False


PublicKeyPem = Annotated[
    str,
    _constraint(
        _is_ed25519_public_pem,
        "one Ed25519 public key in PEM ('-----BEGIN PUBLIC KEY-----' ... '-----END PUBLIC KEY-----')",
    ),
]
Days = Annotated[int, Field(ge=1, le=3650)]


def _check_seed(value: SecretStr) -> SecretStr:
    if not _is_seed(value.get_secret_value()):
        raise allowed_error("base64 of exactly 32 random bytes")
    return value


Seed = Annotated[SecretStr, AfterValidator(_check_seed)]


class Settings(BaseModel):
    """Base: unknown keys are errors, values are never coerced from another type, nothing mutates."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, alias_generator=to_camel, populate_by_name=True
    )


class Resources(Settings):
    cpu_request: CpuQuantity
    memory_request: MemoryQuantity
    cpu_limit: CpuQuantity
    memory_limit: MemoryQuantity
    # Node disk a container may use outside its volumes: its emptyDirs (/tmp), logs, writable layer.
    # Past the limit the kubelet evicts the pod instead of letting it fill the node's disk.
    ephemeral_storage_request: MemoryQuantity = "64Mi"
    ephemeral_storage_limit: MemoryQuantity = "256Mi"

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        if cpu_millis(self.cpu_request) > cpu_millis(self.cpu_limit):
            raise allowed_error(f"at most cpuLimit ({self.cpu_limit})", field="cpuRequest")
        if memory_bytes(self.memory_request) > memory_bytes(self.memory_limit):
            raise allowed_error(f"at most memoryLimit ({self.memory_limit})", field="memoryRequest")
        if memory_bytes(self.ephemeral_storage_request) > memory_bytes(self.ephemeral_storage_limit):
            raise allowed_error(
                f"at most ephemeralStorageLimit ({self.ephemeral_storage_limit})",
                field="ephemeralStorageRequest",
            )
        return self


class Autoscaling(Settings):
    min_replicas: ReplicaCount
    max_replicas: ReplicaCount
    cpu_target: Percent
    memory_target: Percent
    # Wait this long before removing pods, so a short lull does not undo a scale-up.
    scale_down_window_seconds: Annotated[int, Field(ge=0, le=3600)] = 300

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise allowed_error(f"at most maxReplicas ({self.max_replicas})", field="minReplicas")
        return self


class ServiceSettings(Settings):
    # Fixed replica count, used only when `autoscaling` is null.
    replicas: ReplicaCount | None = None
    autoscaling: Autoscaling | None = None
    resources: Resources
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _one_way_to_scale(self) -> ServiceSettings:
        if (self.replicas is None) == (self.autoscaling is None):
            raise allowed_error("exactly one of replicas or autoscaling (set the other to null)", "replicas")
        return self

    @property
    def min_pods(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas or 1

    @property
    def max_pods(self) -> int:
        return self.autoscaling.max_replicas if self.autoscaling else self.replicas or 1


class Images(Settings):
    # true: Pulumi builds services/Dockerfile per service (needs a Docker daemon, even to preview).
    # false: the stack references images already pushed as <registry>/<service>:<tag>[@digest].
    build: bool = False
    registry: Registry
    tag: ImageTag
    digests: dict[ServiceName, Digest] = {}
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    # For every container. IfNotPresent lets a local cluster run images loaded into it (kind load).
    pull_policy: Literal["Always", "IfNotPresent"] = "Always"


class Gateway(Settings):
    host: HostName
    ingress_class: DnsLabel = "nginx"
    # Name of a kubernetes.io/tls Secret in the namespace (e.g. from cert-manager); null serves http.
    tls_secret: DnsLabel | None = None
    # Namespace of the ingress controller, the only source allowed to reach the gateway's pods.
    ingress_namespace: DnsLabel = "ingress-nginx"
    # Peers whose X-Forwarded-For the gateway believes (its TRUSTED_PROXY_CIDRS). Behind an ingress
    # controller every client arrives from the controller's pods, so without their pod CIDR here all
    # anonymous clients share one rate-limit bucket; empty (the default) trusts no header.
    trusted_proxy_cidrs: list[Cidr] = []


class Storage(Settings):
    # null uses the cluster's default StorageClass.
    class_name: DnsLabel | None = None
    postgres: MemoryQuantity
    redis: MemoryQuantity
    nats: MemoryQuantity
    files: MemoryQuantity
    backups: MemoryQuantity
    # Several file-management pods share one volume only when it is ReadWriteMany.
    files_access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
    files_class_name: DnsLabel | None = None


class KubernetesSettings(Settings):
    # Write manifests here instead of talking to a cluster (the provider's renderYamlToDirectory).
    render_dir: str | None = None
    kubeconfig: str | None = None
    context: str | None = None


class Exporters(Settings):
    """Official Prometheus exporters for PostgreSQL, Redis and NATS, deployed when the operator is on."""

    postgres_image: PinnedImage = "quay.io/prometheuscommunity/postgres-exporter:v0.15.0"
    redis_image: PinnedImage = "oliver006/redis_exporter:v1.62.0"
    nats_image: PinnedImage = "natsio/prometheus-nats-exporter:0.15.0"
    replicas: ReplicaCount = 1


class Monitoring(Settings):
    # Prometheus scrapes from this namespace; NetworkPolicies admit it on the metrics ports.
    namespace: DnsLabel = "monitoring"
    # The cluster runs the Prometheus Operator: deploy ServiceMonitors, PrometheusRules, the data stores'
    # exporters and the Grafana dashboards. Off: pods keep only their prometheus.io scrape annotations.
    prometheus_operator: bool = False
    # Labels the operator's serviceMonitorSelector and ruleSelector match (release: kube-prometheus-stack).
    resource_labels: dict[LabelKey, LabelValue] = {}
    # Where alerts' runbook_url links point (docs/runbooks.md in this repo, or its published address).
    runbook_base_url: Annotated[str, Field(min_length=1)] = "docs/runbooks.md"
    thresholds: AlertThresholds = DEV_THRESHOLDS
    exporters: Exporters = Exporters()


BucketName = Annotated[
    str,
    _constraint(
        _matches(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
        "an S3 bucket name: 3-63 lower-case letters, digits, '.', '-'",
    ),
]
EndpointUrl = Annotated[
    str,
    _constraint(
        _matches(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?"),
        "the http(s) address of an S3 API, such as https://s3.eu-central-1.amazonaws.com",
    ),
]
ObjectPrefix = Annotated[
    str,
    _constraint(_matches(r"([A-Za-z0-9._-]+/)*[A-Za-z0-9._-]+"), "a key prefix such as venta-prod/postgres"),
]


class BackupTarget(Settings):
    """An S3-compatible bucket outside the cluster that every backup set is uploaded to and pruned in
    by the same retention; the keys are secrets (`secrets.backupAccessKeyId`, `backupSecretAccessKey`)."""

    bucket: BucketName
    endpoint: EndpointUrl
    prefix: ObjectPrefix = "postgres"
    region: Annotated[str, Field(max_length=64)] = ""
    # rclone's name for the service (AWS, Minio, Ceph, Cloudflare, Wasabi, ...; Other for any other).
    provider: Literal["AWS", "Minio", "Ceph", "Cloudflare", "Wasabi", "DigitalOcean", "GCS", "Other"] = (
        "Other"
    )


class Backup(Settings):
    schedule: CronSchedule = "0 3 * * *"
    retention_days: Annotated[int, Field(ge=1, le=365)] = 7
    # null: the dumps stay on the backups volume in the namespace (a prod stack warns before it deploys).
    target: BackupTarget | None = None
    # The client that uploads to the target; pin it by digest like the data stores' images.
    upload_image: PinnedImage = "rclone/rclone:1.60.1"


class ExternalStore(Settings):
    """A data store the stack does not run (a managed database, say): where the services connect,
    and the address range it lives in. Their NetworkPolicies admit that range on that port only: a
    policy can name nothing outside the cluster but addresses."""

    host: StoreHost
    port: Port
    cidr: AddressRange

    @model_validator(mode="after")
    def _host_in_range(self) -> ExternalStore:
        if _is_address(self.host) and ipaddress.IPv4Address(self.host) not in ipaddress.IPv4Network(
            self.cidr
        ):
            raise allowed_error(f"an address inside cidr ({self.cidr})", field="host")
        return self


class ExternalPostgres(ExternalStore):
    port: Port = 5432


class ExternalRedis(ExternalStore):
    port: Port = 6379


class ExternalNats(ExternalStore):
    port: Port = 4222


# With `external` set, the store's other settings (image, resources, replicas, persistence, backup,
# read replica) describe nothing: the stack deploys no part of that store.
class Postgres(Settings):
    image: PinnedImage = "postgres:16.4"
    resources: Resources
    read_replica: bool = False
    backup: Backup | None = None
    external: ExternalPostgres | None = None

    @property
    def runs_read_replica(self) -> bool:
        """A replica the stack runs: none beside an external PostgreSQL, its provider's to replicate."""
        return self.read_replica and self.external is None

    @property
    def runs_backup(self) -> Backup | None:
        """The backups the stack takes: none of an external PostgreSQL, its provider's to back up."""
        return self.backup if self.external is None else None


class RedisMemory(Settings):
    """A Redis server's memory: `maxmemory` (what it may hold) inside its container's memory limit."""

    image: PinnedImage = "redis:7.4.1"
    resources: Resources
    # null: three quarters of memoryLimit. The rest is for forks (snapshots, AOF rewrites), client
    # buffers and fragmentation, so the container reaches its limit (and is killed) only in pathology.
    max_memory: MemoryQuantity | None = None

    @model_validator(mode="after")
    def _fits_the_container(self) -> RedisMemory:
        if self.max_memory is not None and self.max_memory_bytes > self.memory_ceiling:
            ceiling = format_memory(self.memory_ceiling)
            raise allowed_error(f"at most 3/4 of resources.memoryLimit ({ceiling})", field="maxMemory")
        return self

    @property
    def memory_ceiling(self) -> int:
        return memory_bytes(self.resources.memory_limit) * 3 // 4

    @property
    def max_memory_bytes(self) -> int:
        return self.memory_ceiling if self.max_memory is None else memory_bytes(self.max_memory)


class Redis(RedisMemory):
    """The main Redis: locations, vendor ownership, rate-limit counters. Full means writes fail
    (`noeviction`): none of those keys may ever be dropped to make room."""

    append_only: bool = False
    auth: bool = True
    external: ExternalRedis | None = None


class RedisCache(RedisMemory):
    """search-discovery's result cache, in its own Redis: full means the least recently used entries go
    (`allkeys-lru`), never persisted, so a flood of cached answers cannot crowd out the main Redis."""

    auth: bool = True
    # A Redis of the operator's for the cache: its own server, never the main Redis (an `allkeys-lru`
    # cache beside locations and counters would evict them, and `noeviction` would fail cache writes).
    external: ExternalRedis | None = None


class Nats(Settings):
    image: PinnedImage = "nats:2.10.22-alpine"
    resources: Resources
    replicas: Literal[1, 3, 5] = 1
    auth: bool = True
    external: ExternalNats | None = None


class Secrets(Settings):
    """Operator-supplied secrets (`pulumi config set --secret --path secrets.<key>`); generated if absent.

    An external store's credentials cannot be generated: its operator made them, so the stack must be
    given them (each service's role on an external PostgreSQL, each service's user on an external NATS
    with `auth`, the password of an external Redis or cache Redis with `auth`).
    """

    postgres_password: SecretStr | None = None
    redis_password: SecretStr | None = None
    redis_cache_password: SecretStr | None = None
    jwt_signing_seed: Seed | None = None
    postgres_passwords: dict[ServiceName, SecretStr] = {}
    nats_passwords: dict[ServiceName, SecretStr] = {}
    # The backup target's keys (postgres.backup.target); required when a target is set.
    backup_access_key_id: SecretStr | None = None
    backup_secret_access_key: SecretStr | None = None


class Webhooks(Settings):
    """webhooks' limits (the service's WEBHOOK_* settings): subscriptions one owner may hold, and how
    long finished deliveries and their attempts stay in the shared PostgreSQL."""

    max_subscriptions_per_owner: Annotated[int, Field(ge=1, le=1000)] = WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER
    retention_days: Days = WEBHOOK_RETENTION_DAYS


class Outbox(Settings):
    """vendor-management deletes published outbox rows this long after publishing them."""

    retention_days: Days = OUTBOX_RETENTION_DAYS


class FileQuota(Settings):
    """file-management's per-user upload quota: uploads and bytes within a sliding window."""

    uploads: Annotated[int, Field(ge=1, le=1_000_000)] = FILE_QUOTA_UPLOADS
    bytes: MemoryQuantity = f"{FILE_QUOTA_BYTES // 2**20}Mi"
    window_seconds: Annotated[int, Field(ge=60, le=30 * 86400)] = FILE_QUOTA_WINDOW_SECONDS

    @property
    def byte_count(self) -> int:
        return memory_bytes(self.bytes)


class Auth(Settings):
    # Public keys accepted beside the signing seed's own: the old key (or the next one) while a signing
    # key rotates (docs/runbooks.md, "Rotate the token signing key"). Public, so they go to ConfigMaps.
    extra_public_keys: list[PublicKeyPem] = []

    @model_validator(mode="after")
    def _distinct(self) -> Auth:
        seen = [pem.strip() for pem in self.extra_public_keys]
        if len(set(seen)) != len(seen):
            raise allowed_error("each key once", "extraPublicKeys")
        return self


class StackSettings(Settings):
    stack: str
    profile: ProfileName
    namespace: DnsLabel
    images: Images
    gateway: Gateway
    storage: Storage
    kubernetes: KubernetesSettings = KubernetesSettings()
    monitoring: Monitoring = Monitoring()
    # Spread each workload's pods over nodes (topology spread + anti-affinity).
    spread_across_nodes: bool = False
    # /docs and /openapi.json on every service's internal port (API_DOCS); never in a prod profile.
    api_docs: bool = False
    services: dict[ServiceName, ServiceSettings]
    postgres: Postgres
    redis: Redis
    redis_cache: RedisCache
    nats: Nats
    # The defaults are the services' own (services/catalog.py), so a stack that sets nothing changes nothing.
    db_pool_min: Annotated[int, Field(ge=0, le=DB_POOL_MAX_LIMIT)] = DB_POOL_MIN
    db_pool_max: Annotated[int, Field(ge=1, le=DB_POOL_MAX_LIMIT)] = DB_POOL_MAX
    location_stale_after_seconds: Annotated[int, Field(ge=1, le=86400)] = LOCATION_STALE_AFTER_SECONDS
    secrets: Secrets = Secrets()
    auth: Auth = Auth()
    webhooks: Webhooks = Webhooks()
    outbox: Outbox = Outbox()
    file_quota: FileQuota = FileQuota()

    @model_validator(mode="after")
    def _consistent(self) -> StackSettings:
        missing = [name for name in SERVICE_NAMES if name not in self.services]
        if missing:
            raise allowed_error(f"settings for every service; missing {', '.join(missing)}", "services")
        for spec in SERVICES:
            shared = spec.file_storage and self.services[spec.name].max_pods > 1
            if shared and self.storage.files_access_mode != "ReadWriteMany":
                raise allowed_error(
                    f"ReadWriteMany when {spec.name} can run more than one pod", "storage.filesAccessMode"
                )
        if self.db_pool_min > self.db_pool_max:
            raise allowed_error(f"at most dbPoolMax ({self.db_pool_max})", "dbPoolMin")
        backup = self.postgres.runs_backup
        if backup is not None and backup.target is not None:
            for key in ("backup_access_key_id", "backup_secret_access_key"):
                if getattr(self.secrets, key) is None:
                    field = "secrets." + to_camel(key)
                    raise allowed_error(f"a secret when postgres.backup.target is set ({field})", field)
        if self.api_docs and self.profile == "prod":
            raise allowed_error("false in a prod-profile stack: API docs stay off in prod", "apiDocs")
        if self.file_quota.byte_count > memory_bytes(self.storage.files):
            # One user alone could fill the files volume within a window.
            raise allowed_error(f"at most storage.files ({self.storage.files})", "fileQuota.bytes")
        self._external_credentials()
        return self

    def _external_credentials(self) -> None:
        """Each external store's credentials given, and none given for a store the stack runs."""
        secrets = self.secrets
        users = {
            "postgresPasswords": (
                "postgres",
                [s.name for s in SERVICES if s.database],
                secrets.postgres_passwords,
            ),
            "natsPasswords": ("nats", [s.name for s in SERVICES if s.nats], secrets.nats_passwords),
        }
        for key, (store, wanted, given) in users.items():
            field = f"secrets.{key}"
            if not self.uses_credentials(store):
                if given:
                    raise allowed_error(f"nothing unless {store}.external is set (with auth for NATS)", field)
                continue
            missing = [name for name in wanted if name not in given]
            if missing:
                raise allowed_error(
                    f"a password for each of {', '.join(wanted)}; missing {', '.join(missing)}", field
                )
            extra = sorted(set(given) - set(wanted))
            if extra:
                raise allowed_error(
                    f"passwords of {', '.join(wanted)} only, not of {', '.join(extra)}", field
                )
        if self.uses_credentials("redis") and secrets.redis_password is None:
            raise allowed_error("a password: the external Redis' (redis.auth is on)", "secrets.redisPassword")
        if self.uses_credentials("redis_cache") and secrets.redis_cache_password is None:
            allowed = "a password: the external cache Redis' (redisCache.auth is on)"
            raise allowed_error(allowed, "secrets.redisCachePassword")
        if self.redis_cache.external is not None and self.redis.external is not None:
            same = (self.redis_cache.external.host, self.redis_cache.external.port)
            if same == (self.redis.external.host, self.redis.external.port):
                allowed = "a server of its own, not redis.external's: its evictions would drop locations"
                raise allowed_error(allowed, "redisCache.external")
        if self.postgres.external is not None and secrets.postgres_password is not None:
            allowed = "nothing when postgres.external is set: services sign in with their own roles"
            raise allowed_error(allowed, "secrets.postgresPassword")

    def uses_credentials(self, store: str) -> bool:
        """Whether the stack must be given ``store``'s credentials: it is external, with passwords."""
        if store == "postgres":
            return self.postgres.external is not None
        if store == "redis":
            return self.redis.external is not None and self.redis.auth
        if store == "redis_cache":
            return self.redis_cache.external is not None and self.redis_cache.auth
        return self.nats.external is not None and self.nats.auth

    @property
    def warnings(self) -> list[str]:
        """What is allowed but risky, said before the stack deploys (`__main__.py` logs each)."""
        found = []
        backup = self.postgres.backup
        # An external PostgreSQL's backups are its provider's: nothing of ours to warn about.
        ours = self.postgres.external is None
        if self.profile == "prod" and ours and (backup is None or backup.target is None):
            found.append(
                "venta:postgres.backup.target is not set: the PostgreSQL backups stay on a volume in the "
                f"namespace {self.namespace}, and whatever loses the namespace or the cluster loses them "
                "too; set venta:postgres.backup.target (bucket, endpoint) and the secrets "
                "venta:secrets.backupAccessKeyId and backupSecretAccessKey (docs/runbooks.md)"
            )
        return found

    @property
    def environment(self) -> str:
        return self.profile

    @property
    def service_environment(self) -> dict[str, str]:
        """Values this stack gives the catalog's extra environment (`env`) of any service that reads it."""
        return {
            "LOCATION_STALE_AFTER_SECONDS": str(self.location_stale_after_seconds),
            "WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER": str(self.webhooks.max_subscriptions_per_owner),
            "WEBHOOK_RETENTION_DAYS": str(self.webhooks.retention_days),
            "OUTBOX_RETENTION_DAYS": str(self.outbox.retention_days),
            "FILE_QUOTA_UPLOADS": str(self.file_quota.uploads),
            "FILE_QUOTA_BYTES": str(self.file_quota.byte_count),
            "FILE_QUOTA_WINDOW_SECONDS": str(self.file_quota.window_seconds),
        }
