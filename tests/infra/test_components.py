"""Each component on its own, with its own args, under mocks: what it creates for a given input, and that
two instances with different names live side by side (every child is named from its component's name)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

import stacks
from infra import Platform, PlatformArgs
from infra.builders import network
from infra.components.datastore import DataStoreCommon
from infra.components.nats import Nats, NatsArgs
from infra.components.postgres import Postgres, PostgresArgs
from infra.components.redis import Redis, RedisArgs
from infra.components.service import FileStorage, VentaService, VentaServiceArgs
from infra.observability.component import Observability, ObservabilityArgs
from infra.observability.exporters import StoreSecrets
from infra.render import CapturedStack, capture_program
from infra.render.capture import stack_config
from infra.render.manifests import to_manifests
from stacks.catalog import ServiceSpec
from stacks.model import Autoscaling, Backup, Images, Monitoring, Resources, ServiceSettings
from stacks.model import Nats as NatsSettings
from stacks.model import Postgres as PostgresSettings
from stacks.model import Redis as RedisSettings

SMALL = Resources(cpu_request="10m", memory_request="32Mi", cpu_limit="100m", memory_limit="64Mi")
COMMON = DataStoreCommon(namespace="test", instance="test", storage_class="fast", monitoring_namespace="prom")


def run(build: Callable[[], Any]) -> tuple[CapturedStack, dict[str, dict[str, Any]]]:
    captured = capture_program(build, "dev")
    by_kind: dict[str, dict[str, Any]] = {}
    for manifest in to_manifests(captured):
        by_kind.setdefault(manifest["kind"], {})[manifest["metadata"]["name"]] = manifest
    return captured, by_kind


def service_args(**changes: Any) -> VentaServiceArgs:
    spec = ServiceSpec("demo", "demo", 9999, "testing", database=True)
    args: dict[str, Any] = {
        "spec": spec,
        "settings": ServiceSettings(
            autoscaling=Autoscaling(min_replicas=1, max_replicas=3, cpu_target=55, memory_target=65),
            resources=SMALL,
        ),
        "namespace": "test",
        "instance": "test",
        "images": Images(registry="r.example/x", tag="7"),
        "config": {"SERVICE_NAME": "demo"},
        "secrets": pulumi.Output.secret({"DATABASE_URL": "postgresql://u:p@h:5432/d"}),
        "network": network.policy({"app": "demo"}, [], [network.dns()]),
    }
    args.update(changes)
    return VentaServiceArgs(**args)


def postgres_args(**changes: Any) -> PostgresArgs:
    args: dict[str, Any] = {
        "settings": PostgresSettings(resources=SMALL),
        "common": COMMON,
        "storage_size": "2Gi",
        "backup_size": "1Gi",
        "databases": ["alpha", "beta"],
        "clients": [{"app": "alpha"}],
    }
    return PostgresArgs(**(args | changes))


def observability_args() -> ObservabilityArgs:
    return ObservabilityArgs(
        settings=Monitoring(prometheus_operator=True),
        namespace="test",
        namespace_name="test",
        instance="test",
        version="1",
        services=["api-gateway"],
        nats_servers=1,
        store_secrets=StoreSecrets(postgres="pg-credentials", redis_password="redis-password"),
    )


def test_venta_service_that_scales() -> None:
    storage = FileStorage(size="5Gi", access_mode="ReadWriteMany", class_name="nfs")
    captured, objects = run(
        lambda: VentaService("demo", service_args(file_storage=storage, spread_across_nodes=True))
    )
    assert set(objects) == {
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "PersistentVolumeClaim",
    }
    deployment = objects["Deployment"]["demo"]
    hpa = objects["HorizontalPodAutoscaler"]["demo"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    assert deployment["spec"]["replicas"] == hpa["minReplicas"]  # created at the HPA's minimum
    claim = objects["PersistentVolumeClaim"]["demo-files"]["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"] and claim["storageClassName"] == "nfs"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"]
    assert pod["volumes"][1]["persistentVolumeClaim"]["claimName"] == "demo-files"
    # The environment comes from the generated names of its ConfigMap and Secret.
    (config_map,) = objects["ConfigMap"]
    (secret,) = objects["Secret"]
    env_from = pod["containers"][0]["envFrom"]
    assert env_from == [{"configMapRef": {"name": config_map}}, {"secretRef": {"name": secret}}]
    assert config_map.startswith("demo-config-") and secret.startswith("demo-secret-")
    (svc,) = captured.of_type("venta:service:VentaService")
    assert svc.outputs["image"] == "r.example/x/demo:7" and svc.outputs["deployment"] == "demo"
    assert all(r.parent == svc.urn for r in captured.resources if r is not svc)


def test_venta_service_fixed_single_pod_on_a_node_local_volume() -> None:
    storage = FileStorage(size="1Gi", access_mode="ReadWriteOnce", class_name=None)
    settings = ServiceSettings(replicas=1, resources=SMALL)
    _, objects = run(lambda: VentaService("demo", service_args(settings=settings, file_storage=storage)))
    assert "HorizontalPodAutoscaler" not in objects and "PodDisruptionBudget" not in objects
    deployment = objects["Deployment"]["demo"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}


def test_postgres_single() -> None:
    captured, objects = run(lambda: Postgres("pg", postgres_args()))
    assert set(objects["StatefulSet"]) == {"postgres"} and "CronJob" not in objects
    assert "PodDisruptionBudget" not in objects
    init = captured.by_name("pg-init").inputs["stringData"]["value"]
    assert set(init) == {"01-databases.sql"} and 'CREATE DATABASE "beta"' in init["01-databases.sql"]
    statefulset = objects["StatefulSet"]["postgres"]["spec"]
    claim = statefulset["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast" and claim["resources"]["requests"]["storage"] == "2Gi"
    mounted = {
        v["name"]: v["secret"]["secretName"]
        for v in statefulset["template"]["spec"]["volumes"]
        if "secret" in v
    }
    assert mounted == {
        "credentials": captured.by_name("pg-credentials").inputs["metadata"]["name"],
        "init": captured.by_name("pg-init").inputs["metadata"]["name"],
    }
    (pg,) = captured.of_type("venta:data:Postgres")
    assert pg.outputs["databases"] == ["alpha", "beta"]


def test_postgres_with_replica_and_backups() -> None:
    settings = PostgresSettings(resources=SMALL, read_replica=True, backup=Backup(retention_days=3))
    captured, objects = run(
        lambda: Postgres("pg", postgres_args(settings=settings, databases=["alpha"], clients=[]))
    )
    assert set(objects["StatefulSet"]) == {"postgres", "postgres-replica"}
    job = objects["CronJob"]["postgres-backup"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    # What the scripts do is proven by running them (tests/datastores); here, what they are wired to.
    assert "PGHOST=postgres-replica " in job["containers"][0]["command"][2]  # dumps read the replica
    assert "initContainers" not in job  # no target: the dump is the job's only container
    clone = objects["StatefulSet"]["postgres-replica"]["spec"]["template"]["spec"]["initContainers"][0]
    assert "-h postgres-0.postgres-headless " in clone["args"][0]
    init = captured.by_name("pg-init").inputs["stringData"]["value"]
    assert {"02-replication.sql", "03-replication-hba.sh"} <= set(init)
    assert set(objects["NetworkPolicy"]) == {"postgres", "postgres-replica", "postgres-backup"}
    assert set(objects["PodDisruptionBudget"]) == {"postgres"}


def test_redis_without_auth() -> None:
    settings = RedisSettings(resources=SMALL, auth=False, append_only=True)
    captured, objects = run(
        lambda: Redis("cache", RedisArgs(settings=settings, common=COMMON, storage_size="1Gi", clients=[]))
    )
    assert not captured.of_type("random:index/randomPassword:RandomPassword")
    conf = captured.by_name("cache-config").inputs["stringData"]["value"]["redis.conf"]
    assert "requirepass" not in conf and "appendonly yes" in conf
    template = objects["StatefulSet"]["redis"]["spec"]["template"]
    probe = template["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["sh", "-c"] and "REDISCLI_AUTH" not in probe[2] and "ping" in probe[2]
    assert "annotations" not in template["metadata"]  # a new config is a new Secret name, no checksum
    assert objects["NetworkPolicy"]["redis"]["spec"]["ingress"] == []


def test_nats_cluster_with_auth() -> None:
    settings = NatsSettings(resources=SMALL, replicas=3, auth=True)
    captured, objects = run(
        lambda: Nats(
            "bus",
            NatsArgs(
                settings=settings,
                common=COMMON,
                storage_size="1Gi",
                users=["webhooks", "real-time"],
                clients=[{"x": "y"}],
                app="events",
            ),
        )
    )
    assert (
        len(captured.of_type("random:index/randomPassword:RandomPassword")) == 3
    )  # two users, cluster routes
    sts = objects["StatefulSet"]["events"]["spec"]
    assert sts["replicas"] == 3 and sts["podManagementPolicy"] == "Parallel"
    assert sts["serviceName"] == "events-headless" and set(objects["Service"]) == {
        "events",
        "events-headless",
    }
    assert "PodDisruptionBudget" in objects
    conf = captured.by_name("bus-config").inputs["stringData"]["value"]["nats.conf"]
    assert "routes: [nats://cluster:" in conf and "events-2.events-headless.test.svc:6222" in conf
    ingress = objects["NetworkPolicy"]["events"]["spec"]["ingress"]
    assert [rule["ports"][0]["port"] for rule in ingress] == [4222, 6222, 8222]


def test_nats_single_without_auth() -> None:
    settings = NatsSettings(resources=SMALL, replicas=1, auth=False)
    captured, objects = run(
        lambda: Nats(
            "nats",
            NatsArgs(settings=settings, common=COMMON, storage_size="1Gi", users=["webhooks"], clients=[]),
        )
    )
    assert not captured.of_type("random:index/randomPassword:RandomPassword")
    conf = captured.by_name("nats-config").inputs["stringData"]["value"]["nats.conf"]
    assert "authorization" not in conf and "cluster" not in conf
    assert "PodDisruptionBudget" not in objects


def _redis(name: str) -> None:
    Redis(
        name,
        RedisArgs(settings=RedisSettings(resources=SMALL), common=COMMON, storage_size="1Gi", clients=[]),
    )


def _nats(name: str) -> None:
    settings = NatsSettings(resources=SMALL, replicas=3)
    Nats(name, NatsArgs(settings=settings, common=COMMON, storage_size="1Gi", users=["webhooks"], clients=[]))


def _postgres(name: str) -> None:
    settings = PostgresSettings(resources=SMALL, read_replica=True, backup=Backup())
    Postgres(name, postgres_args(settings=settings))


def _observability(name: str) -> None:
    Observability(name, observability_args())


def _platform(name: str) -> None:
    # Two stacks' settings, so the two platforms also differ in namespace (as they must on one cluster).
    stack = {"one": "dev", "two": "prod"}[name]
    Platform(name, PlatformArgs(settings=stacks.load(stack, stack_config(stack))))


BUILDERS: dict[str, Callable[[str], None]] = {
    "Postgres": _postgres,
    "Redis": _redis,
    "Nats": _nats,
    "Observability": _observability,
    "Platform": _platform,
}


@pytest.mark.parametrize("component", BUILDERS)
def test_two_instances_with_different_names_do_not_collide(component: str) -> None:
    build = BUILDERS[component]

    def both() -> None:
        build("one")
        build("two")

    captured = capture_program(both, "dev")  # raises on a URN registered twice
    alone = [len(capture_program(functools.partial(build, name), "dev").resources) for name in ("one", "two")]
    assert len(captured.resources) == sum(alone)
    children = [r for r in captured.resources if r.parent and r.type != "pulumi:pulumi:Stack"]
    assert all(r.name.startswith(("one", "two")) for r in children), [r.name for r in children]
