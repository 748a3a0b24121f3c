"""The official Prometheus exporters for the stack's data stores, as pure specs.

PostgreSQL and Redis speak no Prometheus; NATS serves its monitoring endpoint (port 8222) as JSON. Each
gets the upstream exporter as its own Deployment beside it, so the data stores' pods stay untouched:

- postgres_exporter reads `postgres:5432` as the superuser, password from the store's credentials
  Secret: `pg_up`, ...
- redis_exporter reads `redis:6379` with the password from the store's config Secret: `redis_up`, ...
- prometheus-nats-exporter, without `-prefix`, reads every server's `:8222` (`-varz -connz -healthz
  -jsz=consumers`): `gnatsd_healthz_status`, `gnatsd_varz_*`, `jetstream_consumer_num_pending`, ...
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.builders import images, names, network, pod
from infra.builders.labels import labels, selector
from stacks.model import Exporters, Resources

apps, core, meta, net = k8s.apps.v1, k8s.core.v1, k8s.meta.v1, k8s.networking.v1

METRICS_PORT = "metrics"
METRICS_PATH = "/metrics"
UID = 65534  # nobody: the exporters are static binaries that need no user of their own
# In-cluster traffic, no TLS configured.
POSTGRES_URI = f"{names.POSTGRES}:{names.POSTGRES_PORT}/postgres?sslmode=disable"
RESOURCES = Resources(cpu_request="10m", memory_request="32Mi", cpu_limit="200m", memory_limit="128Mi")


@dataclass(frozen=True)
class Exporter:
    name: str  # also the Service, the scrape job and the ServiceMonitor
    store: str  # the data store's app.kubernetes.io/name
    store_port: int
    image: str
    port: int
    args: tuple[str, ...] = ()
    env: tuple[core.EnvVarArgs, ...] = ()


@dataclass(frozen=True)
class StoreSecrets:
    """The generated names of the Secrets the exporters read a password from; None for a store the
    stack does not run (an external one, which its own operator watches)."""

    postgres: pulumi.Input[str] | None  # key POSTGRES_PASSWORD: the superuser's
    redis: pulumi.Input[str] | None  # key password
    nats: bool = True  # whether the stack runs NATS (its exporter needs no Secret)


def exporters(settings: Exporters, nats_servers: int, secrets: StoreSecrets) -> list[Exporter]:
    """One exporter per store the stack runs."""
    return [exporter for exporter in _all_exporters(settings, nats_servers, secrets) if exporter is not None]


def _all_exporters(settings: Exporters, nats_servers: int, secrets: StoreSecrets) -> list[Exporter | None]:
    # One URL per NATS server, tagged with its pod name so `server_id` names the server in alerts.
    monitor = names.NATS_PORTS["monitor"]
    nats_urls = [
        f"{names.NATS}-{i},http://{names.pod_address(names.NATS, i)}:{monitor}" for i in range(nats_servers)
    ]
    return [
        None
        if secrets.postgres is None
        else Exporter(
            "postgres-exporter",
            names.POSTGRES,
            names.POSTGRES_PORT,
            settings.postgres_image,
            9187,
            env=(
                core.EnvVarArgs(name="DATA_SOURCE_URI", value=POSTGRES_URI),
                core.EnvVarArgs(name="DATA_SOURCE_USER", value=names.POSTGRES_SUPERUSER),
                pod.secret_env("DATA_SOURCE_PASS", secrets.postgres, "POSTGRES_PASSWORD"),
            ),
        ),
        None
        if secrets.redis is None
        else Exporter(
            "redis-exporter",
            names.REDIS,
            names.REDIS_PORT,
            settings.redis_image,
            9121,
            env=(
                core.EnvVarArgs(name="REDIS_ADDR", value=f"redis://{names.REDIS}:{names.REDIS_PORT}"),
                pod.secret_env("REDIS_PASSWORD", secrets.redis, "password"),
            ),
        ),
        None
        if not secrets.nats
        else Exporter(
            "nats-exporter",
            names.NATS,
            monitor,
            settings.nats_image,
            7777,
            args=("-port=7777", "-varz", "-connz", "-healthz", "-jsz=consumers", *nats_urls),
        ),
    ]


def exporter_labels(exporter: Exporter, instance: str) -> dict[str, str]:
    return labels(exporter.name, "monitoring", instance, images.tag_of(exporter.image))


def deployment_spec(
    exporter: Exporter, instance: str, replicas: int, account: pulumi.Input[str]
) -> apps.DeploymentSpecArgs:
    sel = selector(exporter.name, instance)
    container = core.ContainerArgs(
        name=exporter.name,
        image=exporter.image,
        # Upstream images: checked against the registry at every start, as every prod image is.
        image_pull_policy="Always",
        args=list(exporter.args) or None,
        env=list(exporter.env) or None,
        ports=[core.ContainerPortArgs(name=METRICS_PORT, container_port=exporter.port, protocol="TCP")],
        resources=pod.resources(RESOURCES),
        liveness_probe=pod.tcp_probe(METRICS_PORT, 10, 10),
        # Ready once it serves metrics; a store it cannot reach shows as pg_up/redis_up 0, not as unready.
        readiness_probe=pod.http_probe(METRICS_PATH, METRICS_PORT, 5, 10),
        security_context=pod.container_security(UID),
        volume_mounts=[pod.mount(pod.TMP_VOLUME, "/tmp")],
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
                account, [container], [pod.scratch_volume()], uid=UID, spread=sel if replicas > 1 else None
            ),
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
