"""stacks.load: profiles, overrides, and one error listing every problem with its path, value and what
is allowed."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pydantic
import pytest

import stacks
from infra.render.capture import capture_stack, stack_config
from stacks import SettingsError
from stacks.profiles.prod import SCALING


def config(stack_file: str = "dev", **overrides: Any) -> dict[str, str]:
    """The committed stack file plus `venta:<key>` overrides given as Python values."""
    values = stack_config(stack_file)
    for key, value in overrides.items():
        values[f"venta:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return values


def problems(stack: str, values: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        stacks.load(stack, values)
    assert isinstance(caught.value, ValueError)
    return [str(p) for p in caught.value.problems]


def test_committed_stacks_load() -> None:
    dev, prod = stacks.load("dev", config("dev")), stacks.load("prod", config("prod"))
    assert dev.profile == "dev" and dev.namespace == "venta-dev"
    assert all(s.replicas == 1 and s.autoscaling is None for s in dev.services.values())
    assert prod.profile == "prod" and prod.spread_across_nodes
    assert prod.postgres.read_replica and prod.postgres.backup and prod.nats.replicas == 3
    assert prod.redis.append_only and prod.redis.auth


def test_prod_carries_the_scaling_table() -> None:
    prod = stacks.load("prod", config("prod"))
    table = {
        name: (
            s.autoscaling.min_replicas,
            s.autoscaling.max_replicas,
            s.autoscaling.cpu_target,
            s.autoscaling.memory_target,
        )
        for name, s in prod.services.items()
        if s.autoscaling
    }
    assert table["user-management"] == (2, 5, 70, 80)
    assert table["vendor-management"] == (2, 5, 70, 80)
    assert table["geolocation"] == (3, 10, 60, 70)
    assert table["real-time"] == (2, 8, 50, 60)
    assert all(
        table[name][0] >= 2 for name in ("api-gateway", "search-discovery", "webhooks", "file-management")
    )
    assert set(table) == set(SCALING) == set(stacks.SERVICE_NAMES)


def test_settings_are_immutable() -> None:
    settings = stacks.load("dev", config())
    with pytest.raises(pydantic.ValidationError):
        settings.namespace = "other"  # type: ignore[misc]  # refused by mypy and, here, at run time


def test_overrides_merge_into_the_profile_key_by_key() -> None:
    settings = stacks.load(
        "prod", config("prod", services={"geolocation": {"autoscaling": {"maxReplicas": 12}}})
    )
    geo = settings.services["geolocation"].autoscaling
    assert geo is not None and (geo.min_replicas, geo.max_replicas, geo.cpu_target) == (3, 12, 60)
    assert settings.services["real-time"].autoscaling.max_replicas == 8  # type: ignore[union-attr]


def test_another_stack_names_its_profile() -> None:
    settings = stacks.load("dev-alice", config("dev", profile="dev", namespace="venta-alice"))
    assert (settings.stack, settings.profile, settings.namespace) == ("dev-alice", "dev", "venta-alice")


def test_unknown_stack_without_profile() -> None:
    assert problems("staging", config()) == [
        'stack: given "staging"; allowed a stack named after a profile '
        "or venta:profile set to one of dev, prod"
    ]


def test_unknown_profile_named() -> None:
    (problem,) = problems("qa", config(profile="qa"))
    assert problem.startswith('profile: given "qa"; allowed')


def test_unknown_key_names_the_known_ones() -> None:
    (problem,) = problems("dev", config(gateway={"host": "a.example.com", "ingresClass": "nginx"}))
    assert problem.startswith('gateway.ingresClass: given "nginx"; allowed no such key; known keys: ')
    assert "ingressClass" in problem


def test_unknown_top_level_key() -> None:
    (problem,) = problems("dev", config(replicaz=3))
    assert problem.startswith("replicaz: given 3; allowed no such key")


def test_wrong_type() -> None:
    found = problems("dev", config(services={"webhooks": {"replicas": "two"}}, spreadAcrossNodes="yes"))
    assert 'services.webhooks.replicas: given "two"; allowed an integer' in found
    assert 'spreadAcrossNodes: given "yes"; allowed true or false' in found


def test_min_above_max() -> None:
    bad = {"geolocation": {"autoscaling": {"minReplicas": 12}}}
    assert problems("prod", config("prod", services=bad)) == [
        "services.geolocation.autoscaling.minReplicas: given 12; allowed at most maxReplicas (10)"
    ]


@pytest.mark.parametrize("target", [0, 101])
def test_target_outside_1_to_100(target: int) -> None:
    bad = {"real-time": {"autoscaling": {"cpuTarget": target}}}
    bound = "at least 1" if target < 1 else "at most 100"
    assert problems("prod", config("prod", services=bad)) == [
        f"services.real-time.autoscaling.cpuTarget: given {target}; allowed {bound}"
    ]


def test_missing_required_value() -> None:
    values = config()
    values["venta:images"] = json.dumps({"registry": "ghcr.io/venta"})
    assert problems("dev", values) == ["images.tag: given nothing; allowed a value: this setting is required"]


def test_latest_tag_and_bad_quantities_are_refused() -> None:
    found = problems(
        "dev",
        config(
            images={"registry": "ghcr.io/venta", "tag": "latest"},
            services={"geolocation": {"resources": {"cpuRequest": "lots", "memoryRequest": "1Gi"}}},
        ),
    )
    assert any(p.startswith('images.tag: given "latest"; allowed') and "never 'latest'" in p for p in found)
    assert any(p.startswith('services.geolocation.resources.cpuRequest: given "lots"') for p in found)


def test_request_above_limit() -> None:
    too_much = {"geolocation": {"resources": {"memoryRequest": "1Gi"}}}
    assert problems("dev", config(services=too_much)) == [
        'services.geolocation.resources.memoryRequest: given "1Gi"; allowed at most memoryLimit (256Mi)'
    ]


def test_unknown_service_name() -> None:
    found = problems("dev", config(services={"payments": {"replicas": 1}}))
    assert found[0].startswith("services.payments: given \"payments\"; allowed one of 'api-gateway'")


def test_single_node_volume_with_several_file_pods() -> None:
    found = problems("prod", config("prod", storage={"filesAccessMode": "ReadWriteOnce"}))
    assert found == [
        'storage.filesAccessMode: given "ReadWriteOnce"; allowed ReadWriteMany when file-management can run '
        "more than one pod"
    ]


def test_replicas_and_autoscaling_together() -> None:
    found = problems("prod", config("prod", services={"webhooks": {"replicas": 2}}))
    assert found == [
        "services.webhooks.replicas: given 2; "
        "allowed exactly one of replicas or autoscaling (set the other to null)"
    ]


def test_every_problem_is_reported_at_once() -> None:
    values = config(
        images={"registry": "Not A Registry", "tag": "1.0", "build": "no"},
        gateway={"host": "-bad-"},
        nats={"replicas": 2},
        stack="x",
    )
    found = problems("dev", values)
    assert len(found) == 5, found
    assert {p.split(":")[0] for p in found} == {
        "stack",
        "images.registry",
        "images.build",
        "gateway.host",
        "nats.replicas",
    }


def test_secrets_are_never_echoed() -> None:
    seed = "c2VjcmV0LXNlZWQ="  # valid base64 of the wrong length
    found = problems("dev", config(secrets={"jwtSigningSeed": seed, "redisPassword": 12345}))
    assert found == [
        "secrets.redisPassword: given <secret>; allowed a string (quote it in YAML: '1.10', not 1.10)",
        "secrets.jwtSigningSeed: given <secret>; allowed base64 of exactly 32 random bytes",
    ]
    with pytest.raises(SettingsError) as caught:
        stacks.load("dev", config(secrets={"jwtSigningSeed": seed}))
    assert seed not in str(caught.value) and seed not in repr(caught.value.problems)


def test_given_secrets_are_kept_secret() -> None:
    seed = base64.b64encode(bytes(range(32))).decode()
    settings = stacks.load(
        "dev", config(secrets={"jwtSigningSeed": seed, "postgresPassword": "hunter2hunter2"})
    )
    assert settings.secrets.jwt_signing_seed is not None
    assert settings.secrets.jwt_signing_seed.get_secret_value() == seed
    assert seed not in repr(settings) and "hunter2hunter2" not in repr(settings)


def test_malformed_json_object_is_a_type_problem() -> None:
    assert problems("dev", config(storage="{not json")) == ['storage: given "{not json"; allowed an object']


def test_other_namespaces_belong_to_their_providers() -> None:
    values = config(**{})
    values |= {"kubernetes:context": "kind-venta", "pulumi:template": "x"}
    assert stacks.load("dev", values).kubernetes.context is None


def test_numeric_tag_asks_for_quotes() -> None:
    assert problems("dev", config(images={"registry": "ghcr.io/venta", "tag": 1.1})) == [
        "images.tag: given 1.1; allowed a string (quote it in YAML: '1.10', not 1.10)"
    ]


TARGET = {"bucket": "venta-backups", "endpoint": "https://s3.eu-central-1.amazonaws.com"}
TARGET_KEYS = {"backupAccessKeyId": "AKIDEXAMPLE", "backupSecretAccessKey": "wJalrXUtnFEMI"}


def test_a_backup_target_needs_its_keys_as_secrets() -> None:
    found = problems("prod", config("prod", postgres={"backup": {"target": TARGET}}))
    assert found == [
        "secrets.backupAccessKeyId: given <secret>; allowed a secret when postgres.backup.target is set "
        "(secrets.backupAccessKeyId)"
    ]
    loaded = stacks.load("prod", config("prod", postgres={"backup": {"target": TARGET}}, secrets=TARGET_KEYS))
    assert loaded.postgres.backup is not None and loaded.postgres.backup.target is not None
    assert loaded.postgres.backup.target.bucket == "venta-backups"
    assert loaded.warnings == []


def test_a_backup_target_is_checked_key_by_key() -> None:
    bad = {"bucket": "Not_A_Bucket", "endpoint": "s3.example.com", "prefix": "/abs", "provider": "Mystery"}
    found = problems("dev", config("dev", postgres={"backup": {"target": bad}}, secrets=TARGET_KEYS))
    assert [line.split(":")[0] for line in found] == [
        "postgres.backup.target.bucket",
        "postgres.backup.target.endpoint",
        "postgres.backup.target.prefix",
        "postgres.backup.target.provider",
    ]
    assert "an S3 bucket name" in found[0] and "http(s) address" in found[1]


def test_prod_without_a_backup_target_is_warned_about_naming_the_key() -> None:
    (warning,) = stacks.load("prod", config("prod")).warnings
    assert warning.startswith("venta:postgres.backup.target is not set")
    assert "venta:secrets.backupAccessKeyId" in warning
    assert stacks.load("dev", config("dev")).warnings == []  # dev may have one, and need not


def test_the_program_logs_the_warning_before_anything_deploys(caplog: pytest.LogCaptureFixture) -> None:
    """`__main__.py` logs each warning to the engine, which prints it in every preview and update
    (under Pulumi's mocks the engine's log is Python's)."""
    with caplog.at_level(logging.WARNING):
        capture_stack("prod")
    assert any(r.getMessage().startswith("venta:postgres.backup.target is not set") for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        capture_stack("dev")
    assert not any("backup.target" in r.getMessage() for r in caplog.records)


def test_trusted_proxy_cidrs_are_checked_entry_by_entry() -> None:
    gateway = {
        "host": "api.venta.example.com",
        "trustedProxyCidrs": ["10.244.0.0/16", "10.0.0.300/8", "10.244.1.7/16", "fd00:10:244::/56"],
    }
    cidr = "allowed a CIDR block such as 10.244.0.0/16 or fd00:10:244::/56, without host bits set"
    assert problems("prod", config("prod", gateway=gateway)) == [
        f'gateway.trustedProxyCidrs.1: given "10.0.0.300/8"; {cidr}',
        f'gateway.trustedProxyCidrs.2: given "10.244.1.7/16"; {cidr}',
    ]
    one = {"host": "api.venta.example.com", "trustedProxyCidrs": "10.244.0.0/16"}
    assert problems("prod", config("prod", gateway=one)) == [
        'gateway.trustedProxyCidrs: given "10.244.0.0/16"; allowed a list'
    ]


def test_no_proxy_is_trusted_unless_the_stack_lists_it() -> None:
    assert stacks.load("dev", config()).gateway.trusted_proxy_cidrs == []
    assert stacks.load("prod", config("prod")).gateway.trusted_proxy_cidrs == []
    listed = {"host": "api.venta.example.com", "trustedProxyCidrs": ["10.244.0.0/16"]}
    prod = stacks.load("prod", config("prod", gateway=listed))
    assert prod.gateway.trusted_proxy_cidrs == ["10.244.0.0/16"]


def test_api_docs_stay_off_in_prod() -> None:
    assert stacks.load("dev", config()).api_docs is True
    assert stacks.load("prod", config("prod")).api_docs is False
    assert problems("prod", config("prod", apiDocs=True)) == [
        "apiDocs: given true; allowed false in a prod-profile stack: API docs stay off in prod"
    ]
    assert stacks.load("dev", config(apiDocs=False)).api_docs is False
