"""Stacks pointed at data stores they do not run (`<store>.external`): the real program under mocks,
dev and prod, all four stores external and one at a time; and the settings' checks at load."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

import stacks
from infra.render import CapturedStack
from infra.render.capture import SECRET_SIG
from policy.evaluate import evaluate, mandatory, stack_config
from stacks.catalog import SERVICES
from tests.infra.helpers import manifests, of_kind, schema_errors
from tests.infra.test_settings import config, problems
from tests.policy.captured import pinned_images_config, policy_resources

POSTGRES = {"host": "10.20.0.5", "cidr": "10.20.0.0/24"}
REDIS = {"host": "cache.example.com", "port": 6380, "cidr": "10.20.1.0/24"}
NATS = {"host": "10.20.2.9", "cidr": "10.20.2.0/28"}
CACHE = {"host": "10.20.3.4", "port": 6381, "cidr": "10.20.3.0/24"}
DATABASE_USERS = [s.name for s in SERVICES if s.database]
NATS_USERS = [s.name for s in SERVICES if s.nats]
PG_PASSWORDS = {name: f"ExternalPg{i}" for i, name in enumerate(DATABASE_USERS)}
REDIS_PASSWORD = "ExternalRedisPassword"
CACHE_PASSWORD = "ExternalCachePassword"
NATS_PASSWORDS = {name: f"ExternalNats{i}" for i, name in enumerate(NATS_USERS)}
GIVEN = [*PG_PASSWORDS.values(), REDIS_PASSWORD, CACHE_PASSWORD, *NATS_PASSWORDS.values()]
STORES = ("postgres", "redis", "redisCache", "nats")  # their keys in the stack's settings
WHERE: dict[str, dict[str, Any]] = {"postgres": POSTGRES, "redis": REDIS, "redisCache": CACHE, "nats": NATS}
USES = {"postgres": "database", "redis": "redis", "redisCache": "cache", "nats": "nats"}
APPS = {"postgres": "postgres", "redis": "redis", "redisCache": "redis-cache", "nats": "nats"}
# Everything a store brings when the stack runs it, by the name label its objects carry.
STORE_APPS = {"postgres", "postgres-replica", "postgres-backup", "redis", "redis-cache", "nats"}
EXPORTERS = {"postgres": "postgres-exporter", "redis": "redis-exporter", "nats": "nats-exporter"}
STORE_ALERTS = {"VentaPostgresDown", "VentaRedisDown", "VentaNatsDown", "VentaJetStreamConsumerBehind"}


def external(*which: str, operator: bool = False) -> dict[str, str]:
    """Config overrides pointing the stores named in ``which`` elsewhere, with their credentials."""
    secrets: dict[str, Any] = {}
    if "postgres" in which:
        secrets["postgresPasswords"] = PG_PASSWORDS
    if "redis" in which:
        secrets["redisPassword"] = REDIS_PASSWORD
    if "redisCache" in which:
        secrets["redisCachePassword"] = CACHE_PASSWORD
    if "nats" in which:
        secrets["natsPasswords"] = NATS_PASSWORDS
    overrides = {f"venta:{store}": json.dumps({"external": WHERE[store]}) for store in which}
    overrides["venta:secrets"] = json.dumps(secrets)
    if operator:
        overrides["venta:monitoring"] = json.dumps({"prometheusOperator": True})
    return overrides


@pytest.fixture(params=["dev", "prod"])
def all_external(request: pytest.FixtureRequest, captured_stack: Any) -> CapturedStack:
    captured: CapturedStack = captured_stack(request.param, external(*STORES, operator=True))
    return captured


def _app(manifest: dict[str, Any]) -> str | None:
    return (manifest["metadata"].get("labels") or {}).get("app.kubernetes.io/name")


def _secret_env(captured: CapturedStack, service: str) -> dict[str, str]:
    (secret,) = [
        r for r in captured.of_type("kubernetes:core/v1:Secret") if r.name == f"venta-{service}-secret"
    ]
    data = secret.inputs["stringData"]
    assert SECRET_SIG in data, f"{service}'s Secret is not a Pulumi secret"
    values: dict[str, str] = data["value"]
    return values


def _config_env(captured: CapturedStack, service: str) -> dict[str, str]:
    (config_map,) = [
        r for r in captured.of_type("kubernetes:core/v1:ConfigMap") if r.name == f"venta-{service}-config"
    ]
    values: dict[str, str] = config_map.inputs["data"]
    return values


def test_an_external_store_brings_no_workload_volume_budget_or_exporter(all_external: CapturedStack) -> None:
    objects = manifests(all_external)
    assert not of_kind(all_external, "StatefulSet") and not of_kind(all_external, "CronJob")
    left = sorted(f"{m['kind']} {m['metadata'].get('name')}" for m in objects if _app(m) in STORE_APPS)
    assert left == [], left
    budgets = {b["metadata"]["name"] for b in of_kind(all_external, "PodDisruptionBudget")}
    assert budgets <= {s.name for s in SERVICES}
    claims = {c["metadata"]["name"] for c in of_kind(all_external, "PersistentVolumeClaim")}
    assert claims == {f"{s.name}-files" for s in SERVICES if s.file_storage}
    deployments = {d["metadata"]["name"] for d in of_kind(all_external, "Deployment")}
    assert deployments == {s.name for s in SERVICES}, "services only: no exporter"
    assert schema_errors(all_external) == []


def test_no_alert_watches_an_external_store(all_external: CapturedStack) -> None:
    (rule,) = [m for m in manifests(all_external) if m["kind"] == "PrometheusRule"]
    alerts = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert not alerts & STORE_ALERTS
    assert {"VentaServiceDown", "VentaHighErrorRate", "VentaWebhookDeadLettersGrowing"} <= alerts
    monitors = {m["metadata"]["name"] for m in manifests(all_external) if m["kind"] == "ServiceMonitor"}
    assert monitors == {s.name for s in SERVICES}


def test_services_connect_to_the_external_stores_with_the_credentials_given(
    all_external: CapturedStack,
) -> None:
    for spec in SERVICES:
        secret, config = _secret_env(all_external, spec.name), _config_env(all_external, spec.name)
        if spec.database:
            db = spec.database_name
            assert (
                secret["DATABASE_URL"] == f"postgresql://{db}:{PG_PASSWORDS[spec.name]}@10.20.0.5:5432/{db}"
            )
        if spec.redis:
            assert secret["REDIS_URL"] == "redis://:ExternalRedisPassword@cache.example.com:6380/0"
        if spec.cache:
            assert secret["CACHE_REDIS_URL"] == "redis://:ExternalCachePassword@10.20.3.4:6381/0"
        if spec.nats:
            assert config["NATS_SERVERS"] == "nats://10.20.2.9:4222"
            assert secret["NATS_USER"] == spec.name
            assert secret["NATS_PASSWORD"] == NATS_PASSWORDS[spec.name]
    # Nothing generates a password for a store the stack does not run.
    assert not all_external.of_type("random:index/randomPassword:RandomPassword")


def test_the_given_credentials_stay_secret(all_external: CapturedStack) -> None:
    plain = yaml.safe_dump_all(manifests(all_external)) + json.dumps(all_external.outputs)
    assert not [password for password in GIVEN if password in plain]
    for config_map in all_external.of_type("kubernetes:core/v1:ConfigMap"):
        assert not [p for p in GIVEN if p in json.dumps(config_map.inputs)], config_map.name


def _store_egress(policy: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Port -> peers of the egress rules to data stores: not DNS, the public internet or the
    gateway's upstreams (named ports)."""
    found: dict[int, list[dict[str, Any]]] = {}
    for rule in policy["spec"].get("egress", []):
        ports = [p["port"] for p in rule.get("ports", [])]
        if ports in ([53, 53], [80, 443]) or any(isinstance(port, str) for port in ports):
            continue
        for port in ports:
            found.setdefault(port, []).extend(rule.get("to", []))
    return found


def test_network_policies_admit_each_external_range_on_its_port_only(all_external: CapturedStack) -> None:
    policies = {p["metadata"]["name"]: p for p in of_kind(all_external, "NetworkPolicy")}
    for spec in SERVICES:
        egress = _store_egress(policies[spec.name])
        expected: dict[int, list[dict[str, Any]]] = {}
        if spec.database:
            expected[5432] = [{"ipBlock": {"cidr": POSTGRES["cidr"]}}]
        if spec.redis:
            expected[6380] = [{"ipBlock": {"cidr": REDIS["cidr"]}}]
        if spec.cache:
            expected[6381] = [{"ipBlock": {"cidr": CACHE["cidr"]}}]
        if spec.nats:
            expected[4222] = [{"ipBlock": {"cidr": NATS["cidr"]}}]
        assert egress == expected, spec.name
    assert not set(policies) & STORE_APPS, "no policy for a store that is not here"


def test_the_policy_pack_passes_a_prod_release_with_external_stores(captured_stack: Any) -> None:
    overrides = external(*STORES, operator=True)
    release = captured_stack("prod", {**overrides, **pinned_images_config(captured_stack("prod", overrides))})
    found = mandatory(evaluate(policy_resources(release), stack_config("prod")))
    assert found == [], [f"[{f.policy}] {f.message}" for f in found]


@pytest.mark.parametrize("store", STORES)
def test_one_external_store_leaves_the_others_in_the_stack(captured_stack: Any, store: str) -> None:
    captured = captured_stack("prod", external(store, operator=True))
    running = {_app(s) for s in of_kind(captured, "StatefulSet")}
    assert APPS[store] not in running and {APPS[other] for other in STORES if other != store} <= running
    exporters = {d["metadata"]["name"] for d in of_kind(captured, "Deployment")} - {s.name for s in SERVICES}
    # The cache Redis has no exporter of its own.
    assert exporters == {EXPORTERS[other] for other in STORES if other != store and other in EXPORTERS}
    # Nor anything else of the external store's exporter (redis_exporter's password-map Secret).
    assert {_app(m) for m in manifests(captured)} & set(EXPORTERS.values()) == exporters
    policies = {p["metadata"]["name"]: p for p in of_kind(captured, "NetworkPolicy")}
    outside = {"ipBlock": {"cidr": WHERE[store]["cidr"]}}
    for spec in SERVICES:
        peers = [peer for found in _store_egress(policies[spec.name]).values() for peer in found]
        assert (outside in peers) == bool(getattr(spec, USES[store])), spec.name
    assert schema_errors(captured) == []


def _read_urls(captured: CapturedStack) -> dict[str, str]:
    """Each service's DATABASE_READ_URL, where its Secret has one."""
    found = {spec.name: _secret_env(captured, spec.name).get("DATABASE_READ_URL") for spec in SERVICES}
    return {name: url for name, url in found.items() if url is not None}


def _matches(peer: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a policy peer selects pods by (at least) the labels ``wanted`` names."""
    labels = peer.get("podSelector", {}).get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted["podSelector"]["matchLabels"].items())


def _postgres_peers(captured: CapturedStack, service: str) -> list[dict[str, Any]]:
    policy = next(p for p in of_kind(captured, "NetworkPolicy") if p["metadata"]["name"] == service)
    return _store_egress(policy).get(5432, [])


def test_an_external_postgres_has_no_replica_of_ours_to_read_from(captured_stack: Any) -> None:
    """prod runs a read replica beside its own PostgreSQL (services read it through DATABASE_READ_URL,
    their policies admit it); beside an external one (its provider's to replicate) there is none to
    read or admit, while another store external leaves the replica as it is."""
    with_databases = {spec.name for spec in SERVICES if spec.database}
    own = captured_stack("prod", external("redis", operator=True))
    assert set(_read_urls(own)) == with_databases
    replica = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres-replica"}}}
    for name in with_databases:
        assert any(_matches(peer, replica) for peer in _postgres_peers(own, name)), name
    theirs = captured_stack("prod", external("postgres", operator=True))
    assert stacks.load("prod", config("prod")).postgres.read_replica, "prod asks for a replica"
    assert _read_urls(theirs) == {}
    for name in with_databases:
        assert _postgres_peers(theirs, name) == [{"ipBlock": {"cidr": POSTGRES["cidr"]}}], name
    assert "postgres-replica" not in {_app(m) for m in manifests(theirs)}


def test_an_external_postgres_is_backed_up_by_its_provider(captured_stack: Any) -> None:
    """No backup CronJob, no warning about a missing target in prod, no keys asked for a target: the
    stack takes no backups of a server it does not run."""
    target = {"bucket": "venta-backups", "endpoint": "https://s3.eu-central-1.amazonaws.com"}
    secrets = {"postgresPasswords": PG_PASSWORDS}
    settings = stacks.load(
        "prod", config("prod", postgres={"external": POSTGRES, "backup": {"target": target}}, secrets=secrets)
    )
    assert settings.postgres.runs_backup is None and settings.warnings == []
    assert (
        stacks.load("prod", config("prod", postgres={"external": POSTGRES}, secrets=secrets)).warnings == []
    )
    # The same target beside the stack's own PostgreSQL needs its keys, and prod without one warns.
    own = problems("prod", config("prod", postgres={"backup": {"target": target}}))
    assert [line.split(":")[0] for line in own] == ["secrets.backupAccessKeyId"]
    assert len(stacks.load("prod", config("prod")).warnings) == 1
    captured = captured_stack("prod", external("postgres", operator=True))
    assert of_kind(captured, "CronJob") == []
    assert {_app(m) for m in manifests(captured)} & {"postgres-backup", "postgres-exporter"} == set()


@pytest.mark.parametrize(
    ("overrides", "wanted"),
    [
        (
            {"postgres": {"external": {"host": "10.9.0.5", "cidr": "10.20.0.0/24"}}},
            'postgres.external.host: given "10.9.0.5"; allowed an address inside cidr (10.20.0.0/24)',
        ),
        (
            {"redis": {"external": {"host": "cache", "cidr": "10.20.1.1/24"}}},
            'redis.external.cidr: given "10.20.1.1/24"; allowed an IPv4 address range',
        ),
        (
            {"nats": {"external": {"host": "nats_1", "cidr": "10.20.2.0/28", "port": 70000}}},
            "nats.external.port: given 70000; allowed at most 65535",
        ),
        (
            {"nats": {"external": {"host": "nats_1", "cidr": "10.20.2.0/28"}}},
            'nats.external.host: given "nats_1"; allowed a host name such as db.example.com',
        ),
        (
            {"postgres": {"external": POSTGRES}, "secrets": {"postgresPasswords": {"webhooks": "x"}}},
            "secrets.postgresPasswords: given <secret>; allowed a password for each of user-management",
        ),
        (
            {
                "postgres": {"external": POSTGRES},
                "secrets": {"postgresPasswords": PG_PASSWORDS, "postgresPassword": "x"},
            },
            "secrets.postgresPassword: given <secret>; allowed nothing when postgres.external is set",
        ),
        (
            {"redis": {"external": REDIS}},
            "secrets.redisPassword: given <secret>; allowed a password: the external Redis'",
        ),
        (
            {"redisCache": {"external": CACHE}},
            "secrets.redisCachePassword: given <secret>; allowed a password: the external cache Redis'",
        ),
        (
            {
                "redis": {"external": REDIS},
                "redisCache": {"external": {**CACHE, "host": REDIS["host"], "port": REDIS["port"]}},
                "secrets": {"redisPassword": "x", "redisCachePassword": "y"},
            },
            "redisCache.external: given ",
        ),
        (
            {"secrets": {"natsPasswords": NATS_PASSWORDS}},
            "secrets.natsPasswords: given <secret>; allowed nothing unless nats.external is set",
        ),
        (
            {
                "nats": {"external": NATS},
                "secrets": {"natsPasswords": {**NATS_PASSWORDS, "api-gateway": "x"}},
            },
            "not of api-gateway",
        ),
        (
            {"postgres": {"external": {**POSTGRES, "tls": True}}},
            "postgres.external.tls: given true; allowed no such key; known keys: cidr, host, port",
        ),
    ],
)
def test_wrong_external_settings_fail_at_load_naming_the_key(overrides: dict[str, Any], wanted: str) -> None:
    found = problems("dev", config("dev", **overrides))
    assert any(wanted in problem for problem in found), found


def test_external_stores_without_auth_need_no_credentials() -> None:
    settings = stacks.load(
        "dev",
        config(
            "dev",
            redis={"external": REDIS, "auth": False},
            redisCache={"external": CACHE, "auth": False},
            nats={"external": NATS, "auth": False},
        ),
    )
    assert settings.redis.external is not None and settings.nats.external is not None
    assert settings.redis_cache.external is not None
    assert not [store for store in ("redis", "redis_cache", "nats") if settings.uses_credentials(store)]
