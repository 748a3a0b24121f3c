"""The real program per stack under mocks, with and without the Prometheus Operator setting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.observability.component import Observability, ObservabilityArgs
from infra.observability.exporters import StoreSecrets
from infra.observability.rules import RuleScope, rule_groups
from infra.render.capture import SECRET_SIG, CapturedResource, CapturedStack, capture_program
from infra.render.manifests import is_kubernetes_object, to_manifest
from infra.render.validate import validate_manifest
from policy.evaluate import evaluate, mandatory, stack_config
from stacks import load
from stacks.catalog import SERVICE_NAMES
from stacks.model import Exporters, Monitoring
from stacks.monitoring import DEV_THRESHOLDS, PROD_THRESHOLDS
from stacks.quantities import memory_bytes
from tests.policy.captured import pinned_images_config, policy_resources

SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
OPERATOR_KINDS = {SERVICE_MONITOR, PROMETHEUS_RULE}
EXPORTERS = ("postgres-exporter", "redis-exporter", "nats-exporter")
RELEASE = {"release": "kube-prometheus-stack"}


def _operator_on(**extra: Any) -> dict[str, str]:
    monitoring = {"prometheusOperator": True, "resourceLabels": RELEASE, **extra}
    return {"venta:monitoring": json.dumps(monitoring)}


# dev leaves the operator off; prod turns it on in its profile, and a stack file can turn it off.
OPERATOR_OFF = {"venta:monitoring": json.dumps({"prometheusOperator": False})}


@pytest.fixture(scope="module")
def watched(captured_stack: Callable[..., CapturedStack]) -> dict[str, CapturedStack]:
    return {stack: captured_stack(stack, _operator_on()) for stack in ("dev", "prod")}


def _mine(captured: CapturedStack) -> list[CapturedResource]:
    return [r for r in captured.resources if "venta:observability:Observability" in r.urn]


def _named(captured: CapturedStack, type_token: str, name: str) -> dict[str, Any]:
    [found] = [r for r in captured.of_type(type_token) if r.inputs["metadata"]["name"] == name]
    return to_manifest(found)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_without_the_operator_nothing_operator_specific_exists(
    stack: str, captured_stack: Callable[..., CapturedStack]
) -> None:
    captured = captured_stack(stack, OPERATOR_OFF)
    assert not {r.type for r in captured.resources} & OPERATOR_KINDS
    assert not _mine(captured)
    assert not captured.reads  # nothing asks the cluster for the operator's CRDs either
    for deployment in captured.of_type("kubernetes:apps/v1:Deployment"):
        annotations = deployment.inputs["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", deployment.name


def test_prod_ships_its_monitors_exporters_and_alerts_and_dev_does_not(
    dev_stack: CapturedStack, prod_stack: CapturedStack
) -> None:
    """The committed stacks as they are: prod's profile turns the operator's objects on."""
    monitors = {r.inputs["metadata"]["name"] for r in prod_stack.of_type(SERVICE_MONITOR)}
    assert monitors == {*SERVICE_NAMES, *EXPORTERS}
    [rule] = prod_stack.of_type(PROMETHEUS_RULE)
    assert rule.inputs["metadata"]["name"] == "venta-alerts"
    expected = rule_groups(RuleScope("venta-prod", SERVICE_NAMES, PROD_THRESHOLDS, nats_servers=3))
    assert json.loads(json.dumps(rule.inputs["spec"]["groups"])) == expected
    for name in EXPORTERS:
        _named(prod_stack, "kubernetes:apps/v1:Deployment", name)
    assert not {r.type for r in dev_stack.resources} & OPERATOR_KINDS
    assert not _mine(dev_stack)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_with_the_operator_every_service_and_exporter_is_monitored(
    stack: str, watched: dict[str, CapturedStack]
) -> None:
    captured = watched[stack]
    monitors = {r.inputs["metadata"]["name"]: r.inputs for r in captured.of_type(SERVICE_MONITOR)}
    assert set(monitors) == {*SERVICE_NAMES, *EXPORTERS}
    for name, monitor in monitors.items():
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        spec = monitor["spec"]
        assert spec["namespaceSelector"] == {"matchNames": [f"venta-{stack}"]}
        [endpoint] = spec["endpoints"]
        # The monitor must find the Service by its labels and scrape a port that Service names.
        service = _named(captured, "kubernetes:core/v1:Service", name)
        labels = service["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}, name
        assert labels[spec["jobLabel"]] == name  # the job the alert rules select on
        if name in SERVICE_NAMES:
            # /metrics answers on the internal port only (the API's port says 404).
            assert (endpoint["port"], endpoint["path"]) == ("internal", "/metrics"), name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_prometheus_rule_carries_the_stack_thresholds(
    stack: str, watched: dict[str, CapturedStack]
) -> None:
    [rule] = watched[stack].of_type(PROMETHEUS_RULE)
    thresholds = {"dev": DEV_THRESHOLDS, "prod": PROD_THRESHOLDS}[stack]
    nats = {"dev": 1, "prod": 3}[stack]
    expected = rule_groups(RuleScope(f"venta-{stack}", SERVICE_NAMES, thresholds, nats_servers=nats))
    assert json.loads(json.dumps(rule.inputs["spec"]["groups"])) == expected


def test_a_threshold_override_reaches_the_rules(captured_stack: Callable[..., CapturedStack]) -> None:
    captured = captured_stack("prod", _operator_on(thresholds={"errorRateRatio": 0.05}))
    [rule] = captured.of_type(PROMETHEUS_RULE)
    rules = [r for group in rule.inputs["spec"]["groups"] for r in group["rules"]]
    errors = [r for r in rules if r["alert"] == "VentaHighErrorRate"]
    assert len(errors) == len(SERVICE_NAMES)
    assert all(") > 0.05 and " in r["expr"] for r in errors)
    assert all("(threshold 5%)" in r["annotations"]["description"] for r in errors)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_dashboards_ship_as_sidecar_configmaps(stack: str, watched: dict[str, CapturedStack]) -> None:
    boards = [
        r.inputs
        for r in watched[stack].of_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    titles = {json.loads(body)["title"] for cm in boards for body in cm["data"].values()}
    assert titles == {"Venta / Overview", "Venta / Marketplace", "Venta / Location", "Venta / Communication"}


def test_prod_runs_two_spread_exporters_with_budgets(watched: dict[str, CapturedStack]) -> None:
    prod = watched["prod"]
    for name in EXPORTERS:
        deployment = _named(prod, "kubernetes:apps/v1:Deployment", name)
        assert deployment["spec"]["replicas"] == 2
        assert deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        _named(prod, "kubernetes:policy/v1:PodDisruptionBudget", name)
    nats = _named(prod, "kubernetes:apps/v1:Deployment", "nats-exporter")
    args = nats["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if "nats-headless" in a] == [
        f"nats-{i},http://nats-{i}.nats-headless:8222" for i in range(3)
    ]


def _secret_files(deployment: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The exporter's environment with each file path resolved to the (Secret, key) mounted there."""
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = {}
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret:
            assert mount["readOnly"] is True
            for item in secret["items"]:
                mounted[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return {e["name"]: mounted[e["value"]] for e in container["env"] if e["name"].endswith("_FILE")}


def test_exporters_read_credentials_from_secret_files_only(watched: dict[str, CapturedStack]) -> None:
    prod = watched["prod"]
    text = json.dumps([r.inputs for r in _mine(prod) if r.type != "kubernetes:core/v1:Secret"])
    leaked = [secret for secret in prod.generated_secrets if secret in text]
    assert not leaked
    for name in EXPORTERS:
        deployment = _named(prod, "kubernetes:apps/v1:Deployment", name)
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert not [e for e in container.get("env", []) if "valueFrom" in e], name  # no secret in the env
    # postgres_exporter: the store's credentials Secret, under the name the engine gave it.
    postgres = _named(prod, "kubernetes:apps/v1:Deployment", "postgres-exporter")
    credentials = prod.by_name("venta-postgres-credentials").inputs["metadata"]["name"]
    assert _secret_files(postgres) == {"DATA_SOURCE_PASS_FILE": (credentials, "POSTGRES_PASSWORD")}
    # redis_exporter: its password map (the Redis URI it scrapes -> the store's password), a Pulumi secret.
    redis = _named(prod, "kubernetes:apps/v1:Deployment", "redis-exporter")
    [(secret_name, key)] = _secret_files(redis).values()
    [secret] = [r for r in _mine(prod) if r.type == "kubernetes:core/v1:Secret"]
    assert secret.inputs["metadata"]["name"] == secret_name
    data = secret.inputs["stringData"]
    assert SECRET_SIG in data, "the password map is a Pulumi secret"
    env = {e["name"]: e.get("value") for e in redis["spec"]["template"]["spec"]["containers"][0]["env"]}
    password = prod.by_name("venta-redis-config").inputs["stringData"]["value"]["password"]
    assert password in prod.generated_secrets
    assert json.loads(data["value"][key]) == {env["REDIS_ADDR"]: password}


def test_each_store_admits_its_exporter_and_nothing_else(watched: dict[str, CapturedStack]) -> None:
    prod = watched["prod"]
    for store, exporter, port in (
        ("postgres", "postgres-exporter", 5432),
        ("redis", "redis-exporter", 6379),
        ("nats", "nats-exporter", 8222),
    ):
        policy = _named(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{store}-from-{exporter}")
        spec = policy["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == store
        assert spec["policyTypes"] == ["Ingress"]
        [rule] = spec["ingress"]
        peers = [peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in rule["from"]]
        assert peers == [exporter]
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_object_validates_strictly(stack: str, watched: dict[str, CapturedStack]) -> None:
    """Built-in kinds against Kubernetes 1.31, the operator's kinds against its own CRD schemas."""
    mine = [to_manifest(r) for r in _mine(watched[stack]) if is_kubernetes_object(r)]
    kinds = {m["kind"] for m in mine}
    assert {"Deployment", "Service", "NetworkPolicy", "ConfigMap"} <= kinds
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    errors = [error for manifest in mine for error in validate_manifest(manifest)]
    assert errors == []


def test_a_misspelt_operator_field_is_caught(watched: dict[str, CapturedStack]) -> None:
    monitor = _named(watched["prod"], SERVICE_MONITOR, "webhooks")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    rule = _named(watched["prod"], PROMETHEUS_RULE, "venta-alerts")
    rule["spec"]["groups"][0]["rules"][0]["for"] = 5
    errors = validate_manifest(monitor) + validate_manifest(rule)
    assert any("'intervall' was unexpected" in e for e in errors), errors
    assert any("5 is not of type 'string'" in e for e in errors), errors


def test_the_policy_pack_finds_nothing_mandatory_in_the_observability_objects(
    watched: dict[str, CapturedStack], captured_stack: Callable[..., CapturedStack]
) -> None:
    """prod as a release pins it: service images and exporter images by digest."""
    config = pinned_images_config(watched["prod"])
    assert "@sha256:" in json.loads(config["venta:monitoring"])["exporters"]["redisImage"]
    for stack, captured in (("dev", watched["dev"]), ("prod", captured_stack("prod", config))):
        findings = [
            f
            for f in mandatory(evaluate(policy_resources(captured), stack_config(stack)))
            if "venta:observability" in (f.urn or "") or "exporter" in f.message
        ]
        assert findings == [], "\n".join(f"[{f.policy}] {f.message}" for f in findings)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_namespace_quota_makes_room_for_the_exporters(
    stack: str, watched: dict[str, CapturedStack], captured_stack: Callable[..., CapturedStack]
) -> None:
    def hard(captured: CapturedStack) -> dict[str, str]:
        [quota] = captured.of_type("kubernetes:core/v1:ResourceQuota")
        return dict(quota.inputs["spec"]["hard"])

    off, on = hard(captured_stack(stack, OPERATOR_OFF)), hard(watched[stack])
    replicas = load(stack, watched[stack].config).monitoring.exporters.replicas
    pods = len(EXPORTERS) * (replicas + 1)  # each with a surge pod
    assert int(on["pods"]) - int(off["pods"]) in (pods * 120 // 100, pods * 120 // 100 + 1)  # 20% headroom
    assert memory_bytes(on["limits.memory"]) > memory_bytes(off["limits.memory"])


def test_the_component_on_its_own_follows_its_args() -> None:
    """Two services, one NATS server, custom thresholds: monitors, exporters and rules follow."""
    settings = Monitoring(
        prometheus_operator=True,
        runbook_base_url="https://runbooks.example.com/venta.md",
        thresholds=PROD_THRESHOLDS.model_copy(update={"page": False, "latency_p99_seconds_by_service": {}}),
        exporters=Exporters(replicas=1),
    )

    def build() -> None:
        Observability(
            "observability",
            ObservabilityArgs(
                settings=settings,
                namespace="shop",
                namespace_name="shop",
                instance="shop",
                version="1.2.3",
                services=["api-gateway", "webhooks"],
                nats_servers=1,
                store_secrets=StoreSecrets(postgres="pg-credentials", redis_password="redis-password"),
            ),
        )

    captured = capture_program(build, "dev")
    monitors = {r.inputs["metadata"]["name"] for r in captured.of_type(SERVICE_MONITOR)}
    assert monitors == {"api-gateway", "webhooks", *EXPORTERS}
    assert not captured.of_type("kubernetes:policy/v1:PodDisruptionBudget")  # one replica each
    [rule] = captured.of_type(PROMETHEUS_RULE)
    rules = [r for group in rule.inputs["spec"]["groups"] for r in group["rules"]]
    assert {r["labels"]["severity"] for r in rules} == {"warning"}
    assert {r["labels"].get("service") for r in rules if r["alert"] == "VentaHighErrorRate"} == {
        "api-gateway",
        "webhooks",
    }
    assert all(r["annotations"]["runbook_url"].startswith(f"{settings.runbook_base_url}#") for r in rules)
    assert all('namespace="shop"' in r["expr"] for r in rules)
    nats = _named(captured, "kubernetes:apps/v1:Deployment", "nats-exporter")
    args = nats["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-1] == "nats-0,http://nats-0.nats-headless:8222"
