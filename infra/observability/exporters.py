"""The official Prometheus exporters for the stack's data stores, as pure specs.

PostgreSQL and Redis speak no Prometheus; NATS serves its monitoring endpoint (port 8222) as JSON. Each
gets the upstream exporter as its own Deployment beside it, so the data stores' pods stay untouched:

- postgres_exporter reads `postgres:5432` as the superuser, its password from the store's credentials
  Secret mounted as a file (`DATA_SOURCE_PASS_FILE`): `pg_up`, ...
- redis_exporter reads `redis:6379` with the password from a mounted file (`REDIS_PASSWORD_FILE`, its
  JSON map of Redis URI -> password, kept in a Secret of its own): `redis_up`, ...
- prometheus-nats-exporter, without `-prefix`, reads every server's `:8222` (`-varz -connz -healthz
  -jsz=consumers`): `gnatsd_healthz_status`, `gnatsd_varz_*`, `jetstream_consumer_num_pending`, ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.builders import images, names, network, pod
from infra.builders.labels import labels, selector
from stacks.model import Exporters, Resources

apps, core, meta, net = k8s.apps.v1, k8s.core.v1, k8s.meta.v1, k8s.networking.v1

METRICS_PORT = "metrics"
METRICS_PATH = "/metrics"
COMPONENT = "monitoring"  # their app.kubernetes.io/component, which tells them from the services
UID = 65534  # nobody: the exporters are static binaries that need no user of their own
# In-cluster traffic, no TLS configured.
POSTGRES_URI = f"{names.POSTGRES}:{names.POSTGRES_PORT}/postgres?sslmode=disable"
REDIS_URI = f"redis://{names.REDIS}:{names.REDIS_PORT}"
# Passwords are read from Secret files, never from the environment (as the data stores read theirs).
CREDENTIALS_VOLUME = "credentials"
CREDENTIALS_DIR = "/etc/exporter"
REDIS_PASSWORD_MAP_KEY = "passwords.json"
RESOURCES = Resources(cpu_request="10m", memory_request="32Mi", cpu_limit="200m", memory_limit="128Mi")


@dataclass(frozen=True)
class SecretFile:
    """One key of a Secret (by its generated name), mounted read-only at `path`."""

    secret: pulumi.Input[str]
    key: str

    @property
    def path(self) -> str:
        return f"{CREDENTIALS_DIR}/{self.key}"


@dataclass(frozen=True)
class Exporter:
    name: str  # also the Service, the scrape job and the ServiceMonitor
    store: str  # the data store's app.kubernetes.io/name
    store_port: int
    image: str
    port: int
    args: tuple[str, ...] = ()
    env: tuple[core.EnvVarArgs, ...] = ()
    credentials: SecretFile | None = None


@dataclass(frozen=True)
class StoreSecrets:
    """What the exporters log in with: the store's Secret where one holds the password as the exporter
    reads it, else the password itself (a Pulumi secret), which the component puts in a Secret. A store
    the stack does not run (an external one, which its own operator watches) gets no exporter: None for
    `postgres`, False for `redis` or `nats`."""

    postgres: (
        pulumi.Input[str] | None
    )  # the credentials Secret's name; key POSTGRES_PASSWORD, the superuser's
    redis_password: pulumi.Input[str] | None  # None: Redis runs without a password, or is not the stack's
    redis: bool = True  # whether the stack runs the main Redis
    nats: bool = True  # whether the stack runs NATS (its exporter needs no password)


def redis_password_map(password: str) -> str:
    """redis_exporter's password file: a JSON map of the Redis URI it scrapes to that server's password."""
    return json.dumps({REDIS_URI: password})


def exporters(
    settings: Exporters,
    nats_servers: int,
    postgres_secret: pulumi.Input[str] | None,
    redis_password_secret: pulumi.Input[str] | None,
    *,
    redis: bool = True,
    nats: bool = True,
) -> list[Exporter]:
    """One exporter per store the stack runs: PostgreSQL unless `postgres_secret` is None, Redis when
    `redis`, NATS when `nats`. `postgres_secret` holds key POSTGRES_PASSWORD; `redis_password_secret`
    (when Redis has a password) holds redis_exporter's password map under REDIS_PASSWORD_MAP_KEY."""
    installed = []
    if postgres_secret is not None:
        installed.append(_postgres_exporter(settings, postgres_secret))
    if redis:
        installed.append(_redis_exporter(settings, redis_password_secret))
    if nats:
        installed.append(_nats_exporter(settings, nats_servers))
    return installed


def _postgres_exporter(settings: Exporters, secret: pulumi.Input[str]) -> Exporter:
    password = SecretFile(secret, "POSTGRES_PASSWORD")
    env = (
        core.EnvVarArgs(name="DATA_SOURCE_URI", value=POSTGRES_URI),
        core.EnvVarArgs(name="DATA_SOURCE_USER", value=names.POSTGRES_SUPERUSER),
        core.EnvVarArgs(name="DATA_SOURCE_PASS_FILE", value=password.path),
    )
    image, port = settings.postgres_image, 9187
    return Exporter(
        "postgres-exporter", names.POSTGRES, names.POSTGRES_PORT, image, port, env=env, credentials=password
    )


def _redis_exporter(settings: Exporters, password_secret: pulumi.Input[str] | None) -> Exporter:
    env = [core.EnvVarArgs(name="REDIS_ADDR", value=REDIS_URI)]
    passwords = None
    if password_secret is not None:
        passwords = SecretFile(password_secret, REDIS_PASSWORD_MAP_KEY)
        env.append(core.EnvVarArgs(name="REDIS_PASSWORD_FILE", value=passwords.path))
    image, port = settings.redis_image, 9121
    return Exporter(
        "redis-exporter", names.REDIS, names.REDIS_PORT, image, port, env=tuple(env), credentials=passwords
    )


def _nats_exporter(settings: Exporters, nats_servers: int) -> Exporter:
    # One URL per NATS server, tagged with its pod name so `server_id` names the server in alerts.
    monitor = names.NATS_PORTS["monitor"]
    urls = [
        f"{names.NATS}-{i},http://{names.pod_address(names.NATS, i)}:{monitor}" for i in range(nats_servers)
    ]
    args = ("-port=7777", "-varz", "-connz", "-healthz", "-jsz=consumers", *urls)
    return Exporter("nats-exporter", names.NATS, monitor, settings.nats_image, 7777, args=args)


def exporter_labels(exporter: Exporter, instance: str) -> dict[str, str]:
    return labels(exporter.name, COMPONENT, instance, images.tag_of(exporter.image))


def deployment_spec(
    exporter: Exporter, instance: str, replicas: int, account: pulumi.Input[str], pull_policy: str
) -> apps.DeploymentSpecArgs:
    sel = selector(exporter.name, instance)
    mounts = [pod.mount(pod.TMP_VOLUME, "/tmp")]
    volumes = [pod.scratch_volume()]
    if exporter.credentials:
        mounts.append(pod.mount(CREDENTIALS_VOLUME, CREDENTIALS_DIR, read_only=True))
        volumes.append(credentials_volume(exporter.credentials))
    container = core.ContainerArgs(
        name=exporter.name,
        image=exporter.image,
        image_pull_policy=pull_policy,
        args=list(exporter.args) or None,
        env=list(exporter.env) or None,
        ports=[core.ContainerPortArgs(name=METRICS_PORT, container_port=exporter.port, protocol="TCP")],
        resources=pod.resources(RESOURCES),
        # Started once it listens (a static binary: within a second or two); liveness waits for that.
        startup_probe=pod.tcp_probe(METRICS_PORT, 0, 2, failures=30),
        liveness_probe=pod.tcp_probe(METRICS_PORT, 10, 10),
        # Ready once it serves metrics; a store it cannot reach shows as pg_up/redis_up 0, not as unready.
        readiness_probe=pod.http_probe(METRICS_PATH, METRICS_PORT, 5, 10),
        security_context=pod.container_security(UID),
        volume_mounts=mounts,
    )
    return apps.DeploymentSpecArgs(
        replicas=replicas,
        selector=meta.LabelSelectorArgs(match_labels=sel),
        strategy=apps.DeploymentStrategyArgs(
            type="RollingUpdate",
            rolling_update=apps.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
        ),
        min_ready_seconds=10,
        template=core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=exporter_labels(exporter, instance)),
            spec=pod.restricted_pod(
                account, [container], volumes, uid=UID, spread=sel if replicas > 1 else None
            ),
        ),
    )


def credentials_volume(file: SecretFile) -> core.VolumeArgs:
    """Only the one key, readable by the pod's group (fsGroup), as the data stores mount theirs."""
    return core.VolumeArgs(
        name=CREDENTIALS_VOLUME,
        secret=core.SecretVolumeSourceArgs(
            secret_name=file.secret,
            items=[core.KeyToPathArgs(key=file.key, path=file.key)],
            default_mode=0o440,
        ),
    )


def exporter_policy(exporter: Exporter, instance: str, monitoring: str) -> net.NetworkPolicySpecArgs:
    """Prometheus may scrape the exporter; the exporter may reach its store and DNS, nothing else."""
    store = network.pods(selector(exporter.store, instance))
    return network.policy(
        selector(exporter.name, instance),
        [network.allow_from([network.namespace(monitoring)], METRICS_PORT)],
        [network.allow_to([store], exporter.store_port), network.dns()],
    )


def store_access_policy(exporter: Exporter, instance: str) -> net.NetworkPolicySpecArgs:
    """Admits the exporter into its store. Policies add up, so the store's own policy stays as it is;
    this one lists Ingress only, so it adds nothing to (and takes nothing from) the store's egress."""
    return net.NetworkPolicySpecArgs(
        pod_selector=meta.LabelSelectorArgs(match_labels=selector(exporter.store, instance)),
        policy_types=["Ingress"],
        ingress=[network.allow_from([network.pods(selector(exporter.name, instance))], exporter.store_port)],
    )
