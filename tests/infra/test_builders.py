"""Pure builders, without Pulumi: labels, pod specs, environment, data-store config, quota, keys."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import stacks
from infra.builders import datastore_config, images, keys, labels, pod, quota, service_env
from infra.builders.checksum import checksum
from stacks.catalog import BY_NAME
from stacks.model import Images, Resources
from stacks.quantities import cpu_millis, format_cpu, format_memory, memory_bytes
from tests.infra.test_settings import config


def test_labels_and_stable_selector() -> None:
    full = labels.labels("geolocation", "location", "venta-dev", "1.2.3@sha256:abc")
    assert full["app.kubernetes.io/version"] == "1.2.3"
    assert full["app.kubernetes.io/part-of"] == "venta" and full["app.kubernetes.io/managed-by"] == "pulumi"
    selector = labels.selector("geolocation", "venta-dev")
    assert selector.items() <= full.items() and "app.kubernetes.io/version" not in selector
    assert labels.labels("x", "y", "z", "weird/tag+1")["app.kubernetes.io/version"] == "weird-tag-1"


def test_container_security_is_restricted() -> None:
    sc = pod.container_security(10001)
    assert (sc.run_as_user, sc.run_as_non_root, sc.read_only_root_filesystem) == (10001, True, True)
    assert sc.allow_privilege_escalation is False and sc.privileged is False
    assert sc.capabilities.drop == ["ALL"]  # type: ignore[union-attr]
    assert sc.seccomp_profile.type == "RuntimeDefault"  # type: ignore[union-attr]
    group = pod.pod_security(999)
    assert (group.run_as_user, group.fs_group) == (999, 999)


def test_probes_and_resources() -> None:
    probe = pod.http_probe("/health/live", "http", 30, 10)
    assert probe.http_get.path == "/health/live"  # type: ignore[union-attr]
    assert (probe.initial_delay_seconds, probe.period_seconds, probe.failure_threshold) == (30, 10, 3)
    exec_probe = pod.exec_probe(["pg_isready"], 5, 5)
    assert exec_probe.exec_.command == ["pg_isready"]  # type: ignore[union-attr]
    res = pod.resources(
        Resources(cpu_request="50m", memory_request="64Mi", cpu_limit="1", memory_limit="1Gi")
    )
    assert res.requests == {"cpu": "50m", "memory": "64Mi"} and res.limits == {"cpu": "1", "memory": "1Gi"}


def test_quantities() -> None:
    assert cpu_millis("250m") == 250 and cpu_millis("1.5") == 1500 and cpu_millis("2") == 2000
    assert memory_bytes("256Mi") == 256 * 2**20 and memory_bytes("1G") == 10**9
    assert format_cpu(2000) == "2" and format_cpu(2500) == "2500m"
    assert format_memory(3 * 2**30) == "3Gi" and format_memory(1536 * 2**20) == "1536Mi"
    with pytest.raises(ValueError):
        cpu_millis("1 core")
    with pytest.raises(ValueError):
        memory_bytes("12 GB")


def test_config_follows_the_contract() -> None:
    settings = stacks.load("prod", config("prod"))
    where = service_env.endpoints("venta-prod")
    gateway = service_env.config_data(BY_NAME["api-gateway"], settings, where, "PEM")
    assert gateway["UPSTREAM_USER_MANAGEMENT"] == "http://user-management"
    assert len([k for k in gateway if k.startswith("UPSTREAM_")]) == 7
    assert "DB_POOL_MIN" not in gateway and "NATS_SERVERS" not in gateway
    search = service_env.config_data(BY_NAME["search-discovery"], settings, where, "PEM")
    assert search | {} == {
        "SERVICE_NAME": "search-discovery",
        "PORT": "8000",
        "LOG_LEVEL": "INFO",
        "ENVIRONMENT": "prod",
        "JWT_PUBLIC_KEY": "PEM",
        "DB_POOL_MIN": "2",
        "DB_POOL_MAX": "10",
        "NATS_SERVERS": "nats://nats.venta-prod.svc:4222",
        "NATS_QUEUE": "search-discovery",
    }
    files = service_env.config_data(BY_NAME["file-management"], settings, where, "PEM")
    assert files["STORAGE_DIR"] == "/data/files"
    assert (
        service_env.config_data(BY_NAME["webhooks"], settings, where, "")["WEBHOOK_ALLOW_PRIVATE_TARGETS"]
        == "false"
    )
    assert "LOCATION_STALE_AFTER_SECONDS" in service_env.config_data(
        BY_NAME["geolocation"], settings, where, ""
    )


def test_secret_env_and_urls() -> None:
    where = service_env.endpoints("ns")
    creds = service_env.Credentials(database_password="p@ss/word", redis_password="r", nats_password="n")
    data = service_env.secret_data(BY_NAME["search-discovery"], where, creds)
    assert (
        data["DATABASE_URL"]
        == "postgresql://search_discovery:p%40ss%2Fword@postgres.ns.svc:5432/search_discovery"
    )
    assert data["REDIS_URL"] == "redis://:r@redis.ns.svc:6379/0"
    assert (data["NATS_USER"], data["NATS_PASSWORD"]) == ("search-discovery", "n")
    no_auth = service_env.secret_data(BY_NAME["real-time"], where, service_env.Credentials())
    assert no_auth == {"NATS_USER": "", "NATS_PASSWORD": ""}
    assert service_env.redis_url(None, "h") == "redis://h:6379/0"


def test_postgres_init_sql_escapes_and_isolates() -> None:
    sql = datastore_config.postgres_init_sql({"webhooks": "it's", "user_management": "x"})
    assert "CREATE ROLE \"webhooks\" LOGIN PASSWORD 'it''s';" in sql
    assert 'CREATE DATABASE "user_management" OWNER "user_management";' in sql
    assert 'REVOKE ALL ON DATABASE "webhooks" FROM PUBLIC;' in sql
    assert "replication" in datastore_config.POSTGRES_REPLICATION_HBA


def test_redis_conf() -> None:
    with_auth = datastore_config.redis_conf("pw", append_only=True)
    assert "requirepass pw" in with_auth and "appendonly yes" in with_auth
    assert "requirepass" not in datastore_config.redis_conf(None, append_only=False)


def test_nats_conf_cluster_and_users() -> None:
    single = datastore_config.nats_conf({"geolocation": "g"}, "ns", 1, 10 * 2**30, None)
    assert "cluster" not in single and '{user: "geolocation", password: "g"}' in single
    assert f"max_file_store: {10 * 2**30 * 9 // 10}" in single
    cluster = datastore_config.nats_conf({}, "ns", 3, 2**30, "cpw")
    assert "nats://cluster:cpw@nats-2.nats-headless.ns.svc:6222" in cluster
    assert "authorization" in cluster and "users" not in cluster


def test_public_key_matches_the_seed() -> None:
    seed = bytes(range(32))
    pem = keys.public_key_pem(base64.b64encode(seed).decode())
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and pem == keys.public_key_pem(
        base64.b64encode(seed).decode()
    )
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(b"token")
    public.verify(signature, b"token")  # raises if the key pair does not match


def test_image_references() -> None:
    settings = Images(registry="ghcr.io/venta", tag="1.0.0", digests={"webhooks": "sha256:" + "0" * 64})
    assert images.reference(settings, "geolocation") == "ghcr.io/venta/geolocation:1.0.0"
    assert images.reference(settings, "webhooks") == "ghcr.io/venta/webhooks:1.0.0@sha256:" + "0" * 64


def test_quota_counts_max_replicas_and_surge() -> None:
    prod = stacks.load("prod", config("prod"))
    used = quota.footprint(prod)
    max_pods = sum(s.max_pods + 1 for s in prod.services.values())
    assert used.pods == max_pods + 2 + 1 + 1 + 3  # postgres + replica, backup, redis, 3 nats
    hard = quota.hard_limits(prod)
    assert int(hard["pods"]) == used.pods * 120 // 100
    assert hard["persistentvolumeclaims"] == "8"  # postgres, replica, redis, 3 nats, files, backups


def test_checksum_changes_with_content() -> None:
    assert checksum({"a": "1"}, {"b": "2"}) == checksum({"a": "1"}, {"b": "2"})
    assert checksum({"a": "1"}, {"b": "2"}) != checksum({"a": "1"}, {"b": "3"})


def test_checkov_skips_only_what_applies() -> None:
    from infra.builders.scanner import REASONS, checkov_skips

    assert checkov_skips(["postgres:16.4@sha256:" + "0" * 64], "Always") == {}
    skips = checkov_skips(["ghcr.io/venta/webhooks:1.0"], "IfNotPresent", secret_env=True)
    assert list(skips) == ["checkov.io/skip1", "checkov.io/skip2", "checkov.io/skip3"]
    assert skips["checkov.io/skip3"] == f"CKV_K8S_43={REASONS['CKV_K8S_43']}"
    assert all("\n" not in reason and len(reason) > 15 for reason in REASONS.values())


def test_quota_grows_with_the_exporters() -> None:
    without = quota.footprint(stacks.load("prod", config("prod")))
    watched = stacks.load("prod", config("prod", monitoring={"prometheusOperator": True}))
    with_exporters = quota.footprint(watched)
    assert with_exporters.pods - without.pods == 3 * (watched.monitoring.exporters.replicas + 1)
