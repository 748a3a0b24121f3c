"""Each resource rule on a compliant object and on one broken in exactly the way the rule forbids,
called both as a pure function and through the pulumi_policy adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policy.evaluate import evaluate
from policy.model import Resource
from policy.registry import RULES, RULES_BY_NAME
from tests.policy import factories as f
from tests.policy.factories import first_container, pod

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any, target: Callable[[dict[str, Any]], dict[str, Any]] = first_container) -> Edit:
    def edit(props: dict[str, Any]) -> None:
        node = target(props)
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def _drop(path: str, target: Callable[[dict[str, Any]], dict[str, Any]] = first_container) -> Edit:
    def edit(props: dict[str, Any]) -> None:
        node = target(props)
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        del node[last]

    return edit


def _drop_label(key: str) -> Edit:
    def edit(props: dict[str, Any]) -> None:
        del props["metadata"]["labels"][key]

    return edit


def _props(props: dict[str, Any]) -> dict[str, Any]:
    return props


def pod_sc(props: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = pod(props)["securityContext"]
    return result


# (rule, compliant object, how to break it, the field the message must name)
CASES: list[tuple[str, Callable[[], Resource], Edit, str]] = [
    ("run-as-non-root", f.deployment, _set("runAsNonRoot", False, pod_sc), "securityContext.runAsNonRoot"),
    ("run-as-non-root", f.deployment, _set("securityContext.runAsUser", 0.0), "securityContext.runAsUser"),
    (
        "no-privilege-escalation",
        f.deployment,
        _drop("securityContext.allowPrivilegeEscalation"),
        "securityContext.allowPrivilegeEscalation",
    ),
    (
        "no-privileged-containers",
        f.deployment,
        _set("securityContext.privileged", True),
        "securityContext.privileged",
    ),
    (
        "no-privileged-containers",
        f.cronjob,
        _set("securityContext.privileged", True),
        "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged",
    ),
    (
        "read-only-root-filesystem",
        f.statefulset,
        _set("securityContext.readOnlyRootFilesystem", False),
        "securityContext.readOnlyRootFilesystem",
    ),
    (
        "drop-all-capabilities",
        f.deployment,
        _set("securityContext.capabilities.drop", ["NET_RAW"]),
        "capabilities.drop",
    ),
    (
        "drop-all-capabilities",
        f.deployment,
        _set("securityContext.capabilities.add", ["SYS_ADMIN"]),
        "capabilities.add",
    ),
    ("seccomp-runtime-default", f.deployment, _drop("seccompProfile", pod_sc), "seccompProfile"),
    ("no-host-namespaces", f.deployment, _set("hostNetwork", True, pod), "spec.template.spec.hostNetwork"),
    ("no-host-namespaces", f.deployment, _set("hostPID", True, pod), "hostPID"),
    (
        "no-host-ports",
        f.deployment,
        _set("ports", [{"containerPort": 8000.0, "hostPort": 8000.0}]),
        "ports[0].hostPort",
    ),
    (
        "no-service-account-token",
        f.deployment,
        _drop("automountServiceAccountToken", pod),
        "automountServiceAccountToken",
    ),
    (
        "dedicated-service-account",
        f.deployment,
        _set("serviceAccountName", "default", pod),
        "serviceAccountName",
    ),
    ("dedicated-service-account", f.statefulset, _drop("serviceAccountName", pod), "serviceAccountName"),
    ("resource-requests", f.deployment, _drop("resources.requests.cpu"), "resources.requests"),
    ("memory-limit", f.deployment, _set("resources.limits", {"cpu": "1"}), "resources.limits.memory"),
    ("probes-present", f.deployment, _drop("readinessProbe"), "readinessProbe"),
    ("probes-present", f.statefulset, _drop("livenessProbe"), "livenessProbe"),
    (
        "probes-distinct",
        f.deployment,
        _set(
            "livenessProbe", {"httpGet": {"path": "/health/ready", "port": "internal"}, "periodSeconds": 30.0}
        ),
        "livenessProbe",
    ),
    (
        "probes-on-declared-port",
        f.deployment,
        _set("readinessProbe.httpGet.port", "http"),
        "readinessProbe.httpGet.port is 'http', not the container's 'internal' port (9090)",
    ),
    (
        "probes-on-declared-port",
        f.deployment,
        _set("livenessProbe", {"tcpSocket": {"port": 8000.0}, "periodSeconds": 10.0}),
        "livenessProbe.tcpSocket.port is 8000.0, not the container's 'internal' port",
    ),
    (
        "probes-on-declared-port",
        f.statefulset,
        _set("startupProbe", {"httpGet": {"path": "/health/live", "port": "metrics"}}),
        "startupProbe.httpGet.port is 'metrics', which spec.template.spec.containers[0].ports does not",
    ),
    ("image-tag-explicit", f.deployment, _set("image", "registry.example/venta/app:latest"), "image"),
    ("image-tag-explicit", f.deployment, _set("image", "registry.example:5000/venta/app"), "image"),
    ("image-pinned-by-digest", f.deployment, _set("image", "registry.example/venta/app:1.0.0"), "image"),
    (
        "spread-across-nodes",
        f.deployment,
        _drop("topologySpreadConstraints", pod),
        "topologySpreadConstraints",
    ),
    ("pdb-valid", f.pdb, _set("spec.maxUnavailable", 0.0, _props), "maxUnavailable"),
    ("pdb-valid", f.pdb, _set("spec.minAvailable", 1.0, _props), "minAvailable and maxUnavailable"),
    ("hpa-valid", f.hpa, _set("spec.minReplicas", 6.0, _props), "spec.minReplicas"),
    (
        "hpa-valid",
        f.hpa,
        _set(
            "spec.metrics",
            [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 150.0},
                    },
                }
            ],
            _props,
        ),
        "spec.metrics[0].resource.target.averageUtilization",
    ),
    ("hpa-valid", f.hpa, _drop("spec.maxReplicas", _props), "spec.maxReplicas"),
    (
        "zero-downtime-rollout",
        f.deployment,
        _set("spec.strategy.rollingUpdate.maxUnavailable", "25%", _props),
        "maxUnavailable",
    ),
    ("zero-downtime-rollout", f.deployment, _drop("spec.minReadySeconds", _props), "minReadySeconds"),
    (
        "zero-downtime-rollout",
        f.deployment,
        _set("spec.strategy", {"type": "Recreate"}, _props),
        "spec.strategy.type is Recreate",
    ),
    ("network-policy-types", f.network_policy, _set("spec.policyTypes", [], _props), "spec.policyTypes"),
    ("service-type-restricted", f.service, _set("spec.type", "LoadBalancer", _props), "spec.type"),
    (
        "no-secret-env-literals",
        f.deployment,
        _set("env", [{"name": "DATABASE_URL", "value": "postgresql://um:hunter2@postgres:5432/um"}]),
        "env[0]",
    ),
    (
        "no-secret-env-literals",
        f.deployment,
        _set("env", [{"name": "NATS_PASSWORD", "value": "hunter2"}]),
        "NATS_PASSWORD",
    ),
    (
        "no-credentials-in-configmap",
        f.config_map,
        _set("data.DB_PASSWORD", "hunter2", _props),
        "data.DB_PASSWORD",
    ),
    (
        "no-credentials-in-configmap",
        f.config_map,
        _set("data.REDIS_URL", "redis://:hunter2@redis:6379/0", _props),
        "data.REDIS_URL",
    ),
    ("recommended-labels", f.secret, _drop_label("app.kubernetes.io/part-of"), "metadata.labels"),
]


def _broken(make: Callable[[], Resource], edit: Edit) -> Resource:
    return f.with_props(make(), edit)


COMPLIANT = sorted({(rule, make) for rule, make, _, _ in CASES}, key=lambda pair: pair[0])


@pytest.mark.parametrize(("rule", "make"), COMPLIANT)
def test_compliant_object_passes(rule: str, make: Callable[[], Resource]) -> None:
    check = RULES_BY_NAME[rule].resource_check
    assert check is not None
    assert check(make(), RULES_BY_NAME[rule].defaults()) == []


@pytest.mark.parametrize(("rule", "make", "edit", "field"), CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_broken_object_is_reported_with_field_and_fix(
    rule: str, make: Callable[[], Resource], edit: Edit, field: str
) -> None:
    resource = _broken(make, edit)
    check = RULES_BY_NAME[rule].resource_check
    assert check is not None
    messages = check(resource, RULES_BY_NAME[rule].defaults())
    assert messages, f"{rule} accepted a broken {resource.label}"
    assert any(field in m for m in messages), messages
    assert all(f"'{resource.k8s_name}'" in m and "fix:" in m for m in messages), messages


@pytest.mark.parametrize(("rule", "make", "edit", "field"), CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_adapter_reports_the_same_through_pulumi_policy(
    rule: str, make: Callable[[], Resource], edit: Edit, field: str
) -> None:
    resource = _broken(make, edit)
    findings = [x for x in evaluate([resource]) if x.policy == rule]
    assert findings and all(x.urn == resource.urn for x in findings)
    assert findings[0].level == RULES_BY_NAME[rule].level


def test_every_resource_rule_has_a_violating_case() -> None:
    covered = {c[0] for c in CASES}
    resource_rules = {r.name for r in RULES if r.resource_check is not None}
    assert resource_rules <= covered, resource_rules - covered


def test_rules_ignore_objects_they_do_not_judge() -> None:
    for rule in RULES:
        if rule.resource_check is not None:
            assert rule.resource_check(Resource("venta:service:VentaService", "x"), rule.defaults()) == []


def test_api_access_annotation_allows_a_token() -> None:
    def edit(props: dict[str, Any]) -> None:
        del pod(props)["automountServiceAccountToken"]
        reason = "reads leases for leader election"
        props["metadata"]["annotations"] = {"policy.venta.io/kubernetes-api": reason}

    check = RULES_BY_NAME["no-service-account-token"].resource_check
    assert check is not None
    assert check(_broken(f.deployment, edit), {}) == []


def test_single_replica_statefulset_needs_no_spread() -> None:
    check = RULES_BY_NAME["spread-across-nodes"].resource_check
    assert check is not None
    one = _broken(f.statefulset, _drop("topologySpreadConstraints", pod))
    assert check(one, {}) == []
    three = f.with_props(one, _set("spec.replicas", 3.0, _props))
    assert check(three, {}) != []


def test_exposed_service_allowed_by_config() -> None:
    check = RULES_BY_NAME["service-type-restricted"].resource_check
    assert check is not None
    gateway = f.service("api-gateway", "LoadBalancer")
    assert check(gateway, RULES_BY_NAME["service-type-restricted"].defaults()) == []
    assert check(gateway, {"exposedServices": ["webhooks"]}) != []


def _data_store(props: dict[str, Any]) -> None:
    """A container with no `internal` port: its probes on the ports it declares, or exec."""
    container = first_container(props)
    container["ports"] = [{"name": "postgres", "containerPort": 5432.0}]
    container["readinessProbe"] = {"exec": {"command": ["pg_isready"]}}
    container["livenessProbe"] = {"tcpSocket": {"port": "postgres"}}
    container["startupProbe"] = {"tcpSocket": {"port": 5432.0}}


def test_probes_of_a_container_without_an_internal_port_need_only_a_declared_port() -> None:
    check = RULES_BY_NAME["probes-on-declared-port"].resource_check
    assert check is not None
    store = _broken(f.statefulset, _data_store)
    assert check(store, RULES_BY_NAME["probes-on-declared-port"].defaults()) == []
    undeclared = f.with_props(store, _set("livenessProbe.tcpSocket.port", 6379.0))
    (message,) = check(undeclared, {})
    assert "livenessProbe.tcpSocket.port is 6379.0, which" in message and "does not declare" in message


def test_the_probe_port_name_comes_from_the_config() -> None:
    check = RULES_BY_NAME["probes-on-declared-port"].resource_check
    assert check is not None
    on_http = _broken(f.deployment, _set("readinessProbe.httpGet.port", "http"))
    assert check(on_http, {"probePort": "internal"}) != []
    # A pack configured for containers whose probe port is named `health`: these declare none.
    assert check(on_http, {"probePort": "health"}) == []
    # By number it is the same port as by name.
    by_number = _broken(f.deployment, _set("readinessProbe.httpGet.port", 9090.0))
    assert check(by_number, {}) == []
