"""Stack rules over a small compliant stack, and over the same stack broken one object at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policy.evaluate import evaluate, load_config
from policy.model import Resource
from policy.registry import RULES, RULES_BY_NAME
from tests.policy import factories as f

TABLE = {"user-management": {"min": 2, "max": 5, "cpu": 70, "memory": 80}}
CONFIG_DIR = "policy/config"
Breaker = Callable[[list[Resource]], list[Resource]]


def _without(kind: str, name: str) -> Breaker:
    return lambda stack: [r for r in stack if not (r.kind == kind and r.k8s_name == name)]


def _replace(kind: str, name: str, edit: Callable[[dict[str, Any]], Any]) -> Breaker:
    def apply(stack: list[Resource]) -> list[Resource]:
        return [f.with_props(r, edit) if (r.kind, r.k8s_name) == (kind, name) else r for r in stack]

    return apply


def _set_spec(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda props: props["spec"].__setitem__(key, value)


def _set_data(data: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    return lambda props: props.update(stringData=data)


# (rule, how to break the compliant stack, text the message must hold)
CASES: list[tuple[str, Breaker, str]] = [
    (
        "min-replicas",
        _replace("HorizontalPodAutoscaler", "user-management", _set_spec("minReplicas", 1.0)),
        "spec.minReplicas",
    ),
    ("min-replicas", lambda s: [*s, f.deployment("webhooks", replicas=1.0)], "spec.replicas"),
    ("pdb-per-workload", _without("PodDisruptionBudget", "user-management"), "PodDisruptionBudget"),
    (
        "pdb-per-workload",
        _replace(
            "PodDisruptionBudget", "user-management", _set_spec("selector", {"matchLabels": {"app": "other"}})
        ),
        "PodDisruptionBudget",
    ),
    (
        "hpa-target-exists",
        _replace(
            "HorizontalPodAutoscaler",
            "user-management",
            _set_spec("scaleTargetRef", {"kind": "Deployment", "name": "user-mgmt"}),
        ),
        "spec.scaleTargetRef",
    ),
    (
        "hpa-owns-replicas",
        _replace("Deployment", "user-management", _set_spec("replicas", 2.0)),
        "spec.replicas",
    ),
    ("network-policy-coverage", _without("NetworkPolicy", "user-management"), "NetworkPolicy"),
    (
        "service-selector-matches",
        _replace(
            "Service", "user-management", _set_spec("selector", {"app.kubernetes.io/name": "user-mgmt"})
        ),
        "spec.selector",
    ),
    (
        "service-selector-matches",
        _replace("Service", "user-management", _set_spec("selector", {})),
        "spec.selector",
    ),
    ("references-exist", _without("Secret", "nats"), "names Secret 'nats'"),
    (
        "references-exist",
        _replace("Secret", "user-management", _set_data({"DB_URL": "x"})),
        "reads key 'DATABASE_URL'",
    ),
    (
        "scaling-table",
        _replace("HorizontalPodAutoscaler", "user-management", _set_spec("maxReplicas", 4.0)),
        "spec.maxReplicas is 4",
    ),
    ("scaling-table", _without("HorizontalPodAutoscaler", "user-management"), "no HorizontalPodAutoscaler"),
]


def _config() -> dict[str, Any]:
    return {"table": TABLE, "minReplicas": 2}


def test_compliant_stack_passes_every_stack_rule() -> None:
    for rule in RULES:
        if rule.stack_check is not None:
            assert rule.stack_check(f.compliant_stack(), {**rule.defaults(), **_config()}) == [], rule.name


def test_compliant_stack_passes_the_whole_pack_with_both_configs() -> None:
    for stack in ("dev", "prod"):
        config = load_config(f"{CONFIG_DIR}/{stack}.json")
        config["scaling-table"] = {"enforcementLevel": "mandatory", "table": TABLE}
        assert evaluate(f.compliant_stack(), config) == []


@pytest.mark.parametrize(("rule", "breaker", "text"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_broken_stack_is_reported(rule: str, breaker: Breaker, text: str) -> None:
    stack = breaker(f.compliant_stack())
    check = RULES_BY_NAME[rule].stack_check
    assert check is not None
    violations = check(stack, {**RULES_BY_NAME[rule].defaults(), **_config()})
    assert violations, rule
    assert any(text in v.message for v in violations), violations
    assert all("fix:" in v.message for v in violations)
    urns = {r.urn for r in stack}
    assert all(v.urn in urns for v in violations)


@pytest.mark.parametrize(("rule", "breaker", "text"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_broken_stack_fails_the_pack_as_mandatory(rule: str, breaker: Breaker, text: str) -> None:
    config: dict[str, Any] = {"scaling-table": {"table": TABLE}}
    findings = evaluate(breaker(f.compliant_stack()), config)
    assert {x.policy for x in findings if x.level == "mandatory"} >= {rule}


def test_every_stack_rule_has_a_violating_case() -> None:
    assert {r.name for r in RULES if r.stack_check is not None} <= {c[0] for c in CASES}


def test_scaling_table_defaults_to_the_constants() -> None:
    check = RULES_BY_NAME["scaling-table"].stack_check
    assert check is not None
    messages = [v.message for v in check(f.compliant_stack(), RULES_BY_NAME["scaling-table"].defaults())]
    # The small stack has only user-management: every other service of the table is reported missing.
    for service in (
        "vendor-management",
        "geolocation",
        "real-time",
        "api-gateway",
        "search-discovery",
        "webhooks",
        "file-management",
    ):
        assert any(f"'{service}'" in m for m in messages), service
    assert not any("user-management" in m for m in messages)


def test_min_only_rows_accept_a_fixed_replica_count() -> None:
    check = RULES_BY_NAME["scaling-table"].stack_check
    assert check is not None
    stack = [f.deployment("webhooks", replicas=2.0), f.deployment("file-management", replicas=1.0)]
    table = {"webhooks": {"min": 2}, "file-management": {"min": 2}}
    messages = [v.message for v in check(stack, {"table": table})]
    assert len(messages) == 1 and "file-management" in messages[0] and "spec.replicas is 1" in messages[0]
