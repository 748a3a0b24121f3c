"""Generated secrets stay Pulumi secrets and never show up in plain text anywhere a stack writes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from infra.render import REDACTED, CapturedStack
from infra.render.capture import SECRET_SIG
from stacks.catalog import SERVICES
from tests.infra.helpers import containers, manifests, of_kind, workloads


@pytest.fixture(params=["dev", "prod"])
def captured(request: pytest.FixtureRequest) -> CapturedStack:
    captured: CapturedStack = request.getfixturevalue(f"{request.param}_stack")
    return captured


def _leaks(text: str, captured: CapturedStack) -> list[str]:
    return [value for value in captured.generated_secrets if value in text]


def test_generators_ran(captured: CapturedStack) -> None:
    passwords = captured.of_type("random:index/randomPassword:RandomPassword")
    # superuser, one per database (+ replication), redis, redis-cache, one NATS user per NATS service
    # (+ routes)
    prod = captured.stack == "prod"
    databases, nats_users = (sum(getattr(s, uses) for s in SERVICES) for uses in ("database", "nats"))
    assert len(passwords) == 1 + databases + prod + 2 + nats_users + prod
    assert all(p.inputs["special"] is False and p.inputs["length"] == 32 for p in passwords)
    assert captured.of_type("random:index/randomBytes:RandomBytes")[0].inputs["length"] == 32
    assert len(captured.generated_secrets) == len(passwords) + 2  # seed as base64 and hex


def test_secret_data_is_a_pulumi_secret(captured: CapturedStack) -> None:
    for secret in captured.of_type("kubernetes:core/v1:Secret"):
        data = secret.inputs["stringData"]
        assert SECRET_SIG in data, f"{secret.name}'s data is not marked secret"


def test_no_secret_in_configmaps_env_literals_or_outputs(captured: CapturedStack) -> None:
    for config_map in captured.of_type("kubernetes:core/v1:ConfigMap"):
        assert not _leaks(json.dumps(config_map.inputs), captured), config_map.name
        assert SECRET_SIG not in json.dumps(config_map.inputs)
    for workload in workloads(captured):
        for container in containers(workload):
            literals = json.dumps([e.get("value") for e in container.get("env", [])])
            assert not _leaks(literals, captured)
            assert not _leaks(
                json.dumps(container.get("args", [])) + json.dumps(container.get("command", [])), captured
            )
    assert not _leaks(json.dumps(captured.outputs), captured)
    assert not captured.secret_outputs  # nothing secret needed exporting


def test_rendered_yaml_has_no_secret(captured: CapturedStack) -> None:
    text = yaml.safe_dump_all(manifests(captured))
    assert not _leaks(text, captured)
    assert SECRET_SIG not in text
    secrets = of_kind(captured, "Secret")
    assert secrets and all(set(s["stringData"].values()) == {REDACTED} for s in secrets)


def test_every_captured_input_outside_secrets_is_clean(captured: CapturedStack) -> None:
    """Only secret-wrapped values may contain a generated value, wherever the program put it."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return None if SECRET_SIG in value else {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    for resource in captured.resources:
        if resource.type.startswith("random:"):
            continue  # the generators themselves
        assert not _leaks(json.dumps(plain(resource.inputs)), captured), resource.urn


def test_service_secrets_hold_what_the_contract_names(captured: CapturedStack) -> None:
    expected = {
        "api-gateway": {"REDIS_URL"},
        "user-management": {"DATABASE_URL", "JWT_SIGNING_SEED"},
        "vendor-management": {"DATABASE_URL", "NATS_USER", "NATS_PASSWORD"},
        "search-discovery": {"DATABASE_URL", "CACHE_REDIS_URL", "NATS_USER", "NATS_PASSWORD"},
        "geolocation": {"REDIS_URL", "NATS_USER", "NATS_PASSWORD"},
        "real-time": {"NATS_USER", "NATS_PASSWORD"},
        "webhooks": {"DATABASE_URL", "NATS_USER", "NATS_PASSWORD"},
        "file-management": {"DATABASE_URL"},
    }
    # prod runs a read replica: each database's role reads it with the same password.
    replica = captured.stack == "prod"
    for name, keys in expected.items():
        secret = captured.by_name(f"venta-{name}-secret")
        values = secret.inputs["stringData"]["value"]
        assert set(values) == keys | ({"DATABASE_READ_URL"} if replica and "DATABASE_URL" in keys else set())
        if "DATABASE_URL" in keys:
            db = name.replace("-", "_")
            password = values["DATABASE_URL"].split(":")[2].split("@")[0]
            assert password in captured.generated_secrets
            assert (
                values["DATABASE_URL"]
                == f"postgresql://{db}:{password}@postgres.venta-{captured.stack}.svc:5432/{db}"
            )
            if replica:
                assert values["DATABASE_READ_URL"] == values["DATABASE_URL"].replace(
                    "@postgres.", "@postgres-replica."
                )
        if "NATS_PASSWORD" in keys:
            assert values["NATS_USER"] == name and values["NATS_PASSWORD"] in captured.generated_secrets
        if "REDIS_URL" in keys:
            assert values["REDIS_URL"].startswith("redis://:FAKE")
        if "CACHE_REDIS_URL" in keys:
            # Its own instance with its own password: the cache's clients cannot reach the main Redis.
            cache = values["CACHE_REDIS_URL"]
            assert cache.startswith("redis://:FAKE") and f"@redis-cache.venta-{captured.stack}.svc:" in cache


def test_each_database_user_has_its_own_password(captured: CapturedStack) -> None:
    urls = [
        captured.by_name(f"venta-{n}-secret").inputs["stringData"]["value"]["DATABASE_URL"]
        for n in ("user-management", "vendor-management", "search-discovery", "webhooks", "file-management")
    ]
    passwords = {url.split(":")[2].split("@")[0] for url in urls}
    assert len(passwords) == 5
    init = captured.by_name("venta-postgres-init").inputs["stringData"]["value"]["01-databases.sql"]
    assert all(p in init for p in passwords)


def test_operator_given_secrets_are_used_and_stay_secret(captured_stack: Any) -> None:
    seed = base64.b64encode(b"s" * 32).decode()
    given = {
        "postgresPassword": "GivenPostgresPassword1",
        "redisPassword": "GivenRedisPassword1",
        "jwtSigningSeed": seed,
    }
    captured = captured_stack("dev", {"venta:secrets": json.dumps(given)})
    generated = {r.name for r in captured.of_type("random:index/randomPassword:RandomPassword")}
    assert "postgres-superuser" not in generated and "redis-password" not in generated
    assert not captured.of_type("random:index/randomBytes:RandomBytes")
    creds = captured.by_name("venta-postgres-credentials").inputs["stringData"]
    assert SECRET_SIG in creds and creds["value"]["POSTGRES_PASSWORD"] == given["postgresPassword"]
    gateway = captured.by_name("venta-api-gateway-secret").inputs["stringData"]["value"]
    assert gateway["REDIS_URL"] == "redis://:GivenRedisPassword1@redis.venta-dev.svc:6379/0"
    assert (
        captured.by_name("venta-user-management-secret").inputs["stringData"]["value"]["JWT_SIGNING_SEED"]
        == seed
    )
    text = yaml.safe_dump_all(manifests(captured)) + json.dumps(captured.outputs)
    assert not [value for value in given.values() if value in text]
    public_key = captured.by_name("venta-geolocation-config").inputs["data"]["JWT_PUBLIC_KEY"]
    assert public_key.startswith("-----BEGIN PUBLIC KEY-----")
