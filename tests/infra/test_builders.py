"""Pure builders, without Pulumi: what they decide (escaping, derivation, choices), not the literals they
write: labels, environment, data-store config, quota, keys, images, scanner skips."""

from __future__ import annotations

import base64
import os

import pytest

import stacks
from infra.builders import datastore_config, images, keys, labels, quota, service_env
from infra.builders.quota import Workload
from services.common.auth import TokenIssuer, TokenVerifier, public_pem_from_seed
from stacks.catalog import BY_NAME, SERVICES
from stacks.model import Images, Resources
from tests.infra.test_settings import config


def test_labels_and_stable_selector() -> None:
    full = labels.labels("geolocation", "location", "venta-dev", "1.2.3@sha256:abc")
    assert full["app.kubernetes.io/version"] == "1.2.3"
    selector = labels.selector("geolocation", "venta-dev")
    assert selector.items() <= full.items() and "app.kubernetes.io/version" not in selector
    assert labels.labels("x", "y", "z", "weird/tag+1")["app.kubernetes.io/version"] == "weird-tag-1"


def test_environment_follows_the_catalog_not_the_names() -> None:
    settings = stacks.load("prod", config("prod", locationStaleAfterSeconds=45, dbPoolMax=30))
    where = service_env.endpoints("venta-prod")
    for spec in SERVICES:
        data = service_env.config_data(spec, settings, where, "PEM")
        assert ("DB_POOL_MAX" in data) == spec.database and ("NATS_SERVERS" in data) == spec.nats
        assert ("STORAGE_DIR" in data) == spec.file_storage
        upstreams = {k for k in data if k.startswith("UPSTREAM_")}
        assert bool(upstreams) == spec.public_entry
    gateway = service_env.config_data(BY_NAME["api-gateway"], settings, where, "PEM")
    assert gateway["UPSTREAM_USER_MANAGEMENT"] == "http://user-management"
    assert len([k for k in gateway if k.startswith("UPSTREAM_")]) == len(SERVICES) - 1
    search = service_env.config_data(BY_NAME["search-discovery"], settings, where, "PEM")
    assert search["DB_POOL_MAX"] == "30" and search["NATS_SERVERS"] == "nats://nats.venta-prod.svc:4222"
    # The stack's value replaces the catalog's default; a catalog value no setting tunes stays as it is.
    geolocation = service_env.config_data(BY_NAME["geolocation"], settings, where, "")
    assert geolocation["LOCATION_STALE_AFTER_SECONDS"] == "45"
    webhooks = service_env.config_data(BY_NAME["webhooks"], settings, where, "")
    assert webhooks["WEBHOOK_ALLOW_PRIVATE_TARGETS"] == "false"


def test_secret_env_and_urls() -> None:
    where = service_env.endpoints("ns")
    creds = service_env.Credentials(
        database_password="p@ss/word", redis_password="r", cache_password="c", nats_password="n"
    )
    data = service_env.secret_data(BY_NAME["search-discovery"], where, creds)
    assert (
        data["DATABASE_URL"]
        == "postgresql://search_discovery:p%40ss%2Fword@postgres.ns.svc:5432/search_discovery"
    )
    assert "REDIS_URL" not in data  # its only Redis is the cache, its own instance
    assert data["CACHE_REDIS_URL"] == "redis://:c@redis-cache.ns.svc:6379/0"
    gateway = service_env.secret_data(BY_NAME["api-gateway"], where, creds)
    assert gateway == {"REDIS_URL": "redis://:r@redis.ns.svc:6379/0"}
    assert (data["NATS_USER"], data["NATS_PASSWORD"]) == ("search-discovery", "n")
    no_auth = service_env.secret_data(BY_NAME["real-time"], where, service_env.Credentials())
    assert no_auth == {"NATS_USER": "", "NATS_PASSWORD": ""}
    assert service_env.redis_url(None, "h") == "redis://h:6379/0"


def test_postgres_init_sql_escapes_and_isolates() -> None:
    sql = datastore_config.postgres_init_sql({"webhooks": "it's", "user_management": "x"})
    assert "CREATE ROLE \"webhooks\" LOGIN PASSWORD 'it''s';" in sql
    assert 'CREATE DATABASE "user_management" OWNER "user_management";' in sql
    assert 'REVOKE ALL ON DATABASE "webhooks" FROM PUBLIC;' in sql


def test_redis_conf_requires_a_password_only_with_auth() -> None:
    with_auth = datastore_config.redis_conf("pw", append_only=True, max_memory=2**20)
    assert "requirepass pw" in with_auth and "appendonly yes" in with_auth
    without = datastore_config.redis_conf(None, append_only=False, max_memory=2**20)
    assert "requirepass" not in without and "protected-mode no" in without


def test_nats_conf_cluster_and_users() -> None:
    single = datastore_config.nats_conf({"geolocation": "g"}, "ns", 1, 10 * 2**30, None)
    assert "cluster {" not in single and '{user: "geolocation", password: "g", permissions: ' in single
    assert f"max_file_store: {10 * 2**30 * 9 // 10}" in single
    cluster = datastore_config.nats_conf({}, "ns", 3, 2**30, "cpw", app="bus")
    assert "nats://cluster:cpw@bus-2.bus-headless.ns.svc:6222" in cluster
    assert "authorization" in cluster and "users" not in cluster


@pytest.mark.parametrize(
    "seed", [bytes(range(32)), bytes(32), os.urandom(32)], ids=["counting", "zero", "random"]
)
def test_the_stacks_public_key_is_the_one_the_services_derive(seed: bytes) -> None:
    """infra/builders/keys.py keeps its own copy (infra imports no service code beyond the catalog);
    this holds it to services/common/auth.py: a token signed with the seed verifies with the key."""
    encoded = base64.b64encode(seed).decode()
    pem = keys.public_key_pem(encoded)
    assert pem == public_pem_from_seed(encoded)
    token = TokenIssuer(encoded, 60).issue("7", "vendor")
    assert TokenVerifier(pem).verify(token).user_id == "7"


def test_image_references_and_tags() -> None:
    settings = Images(registry="ghcr.io/venta", tag="1.0.0", digests={"webhooks": "sha256:" + "0" * 64})
    assert images.reference(settings, "geolocation") == "ghcr.io/venta/geolocation:1.0.0"
    assert images.reference(settings, "webhooks") == "ghcr.io/venta/webhooks:1.0.0@sha256:" + "0" * 64
    assert images.tag_of("postgres:16.4@sha256:" + "0" * 64) == "16.4"
    assert images.tag_of("localhost:5000/team/exporter:v0.15.0") == "v0.15.0"
    assert images.tag_of("localhost:5000/team/exporter") == "latest"


def test_quota_sums_what_the_workloads_declare() -> None:
    small = Resources(cpu_request="100m", memory_request="64Mi", cpu_limit="1", memory_limit="128Mi")
    hard = quota.hard_limits([Workload(5, small, ("1Gi",)), Workload(3, small, ("2Gi",) * 3)])
    assert hard["pods"] == str(8 * 120 // 100)  # with 20% headroom
    assert hard["requests.cpu"] == "960m" and hard["limits.cpu"] == "9600m"
    assert (hard["persistentvolumeclaims"], hard["requests.storage"]) == ("4", "7Gi")


def test_checkov_skips_only_what_applies() -> None:
    from infra.builders.scanner import REASONS, checkov_skips

    assert checkov_skips(["postgres:16.4@sha256:" + "0" * 64], "Always") == {}
    skips = checkov_skips(["ghcr.io/venta/webhooks:1.0"], "IfNotPresent", secret_env=True)
    assert list(skips) == ["checkov.io/skip1", "checkov.io/skip2", "checkov.io/skip3"]
    assert skips["checkov.io/skip3"] == f"CKV_K8S_43={REASONS['CKV_K8S_43']}"
    assert all("\n" not in reason and len(reason) > 15 for reason in REASONS.values())
