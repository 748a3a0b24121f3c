"""The real program per stack under mocks: what each stack deploys, and that its parts fit together."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import stacks
from infra.builders.images import BUILD_CONTEXT, DOCKERFILE
from infra.platform import requirements
from infra.render import CapturedStack
from infra.render.capture import AUTONAMED, REPO_ROOT, capture_stack
from tests.infra.helpers import (
    containers,
    exporter_deployments,
    inventory,
    manifests,
    named,
    of_kind,
    pod_template,
    selects,
    service_deployments,
    workloads,
)

# Per service (services/catalog.py): a ConfigMap, a Secret, a ServiceAccount, a Deployment, a Service
# and a NetworkPolicy; a volume claim where it keeps files; an HPA and a PDB where it can scale.
PER_SERVICE = ("ConfigMap", "Secret", "ServiceAccount", "Deployment", "Service", "NetworkPolicy")
FILE_CLAIMS = sum(spec.file_storage for spec in stacks.SERVICES)
N = len(stacks.SERVICES)
# The namespace and its guard rails, the four data stores (Redis twice: the main one and the cache),
# the backup job and the Ingress.
PLATFORM = {
    "Namespace": 1,
    "ResourceQuota": 1,
    "LimitRange": 1,
    "NetworkPolicy": 6,  # default-deny, postgres, redis, redis-cache, nats, the backup job
    "ServiceAccount": 5,  # one per data store workload and the backup job
    "Secret": 5,  # postgres credentials and init, redis and redis-cache config, nats config
    "Service": 8,  # each store's client and headless Services
    "StatefulSet": 4,
    "CronJob": 1,  # the PostgreSQL backup, with its claim
    "Ingress": 1,
}
DEV_INVENTORY = {
    **PLATFORM,
    **{kind: PLATFORM.get(kind, 0) + N for kind in PER_SERVICE},
    "PersistentVolumeClaim": FILE_CLAIMS + 1,
}
EXPORTERS = ("postgres-exporter", "redis-exporter", "nats-exporter")
E = len(EXPORTERS)
# What prod's Prometheus Operator setting adds (infra/observability): a ServiceMonitor per service and
# exporter, the alert rules, four dashboards; per exporter an account, a Deployment of two pods with
# its PDB, a Service, its own policy and one admitting it into its store; redis_exporter's password file.
MONITORING = {
    "ServiceMonitor": N + E,
    "PrometheusRule": 1,
    "ConfigMap": 4,
    "ServiceAccount": E,
    "Deployment": E,
    "PodDisruptionBudget": E,
    "Service": E,
    "NetworkPolicy": 2 * E,
    "Secret": 1,
}
PROD_INVENTORY = {
    **DEV_INVENTORY,
    # The read replica (account, policy, two Services, StatefulSet), one PDB for primary and
    # replica, one for NATS; every service can scale; the monitoring prod ships.
    "ServiceAccount": DEV_INVENTORY["ServiceAccount"] + 1 + MONITORING["ServiceAccount"],
    "NetworkPolicy": DEV_INVENTORY["NetworkPolicy"] + 1 + MONITORING["NetworkPolicy"],
    "Service": DEV_INVENTORY["Service"] + 2 + MONITORING["Service"],
    "StatefulSet": 5,
    "HorizontalPodAutoscaler": N,
    "PodDisruptionBudget": N + 2 + MONITORING["PodDisruptionBudget"],
    "Deployment": N + MONITORING["Deployment"],
    "ConfigMap": N + MONITORING["ConfigMap"],
    "Secret": DEV_INVENTORY["Secret"] + MONITORING["Secret"],
    "ServiceMonitor": MONITORING["ServiceMonitor"],
    "PrometheusRule": MONITORING["PrometheusRule"],
}
# The scaling table the platform was specified with; every other service at least 2 (tested below).
PROD_HPAS = {
    "user-management": (2, 5, 70, 80),
    "vendor-management": (2, 5, 70, 80),
    "geolocation": (3, 10, 60, 70),
    "real-time": (2, 8, 50, 60),
}


@pytest.fixture(params=["dev", "prod"])
def captured(request: pytest.FixtureRequest) -> CapturedStack:
    captured: CapturedStack = request.getfixturevalue(f"{request.param}_stack")
    return captured


def test_dev_inventory(dev_stack: CapturedStack) -> None:
    assert dict(inventory(dev_stack)) == DEV_INVENTORY


def test_prod_inventory(prod_stack: CapturedStack) -> None:
    """prod's monitoring included; the operator's CRDs are only read, so none is among its objects."""
    assert dict(inventory(prod_stack)) == PROD_INVENTORY


def test_deployments_are_the_services_and_in_prod_the_exporters(captured: CapturedStack) -> None:
    assert sorted(d["metadata"]["name"] for d in service_deployments(captured)) == sorted(
        stacks.SERVICE_NAMES
    )
    exporters = sorted(d["metadata"]["name"] for d in exporter_deployments(captured))
    assert exporters == (sorted(EXPORTERS) if captured.stack == "prod" else [])


def test_with_the_operator_nothing_is_created_before_its_crds_are_found(
    captured_stack: Callable[..., CapturedStack],
) -> None:
    """The operator's CRDs are read from the cluster, never created, and the namespace (so every
    object in it) waits for those reads: a cluster without them stops the update first."""
    stack = captured_stack("prod", {"venta:monitoring": '{"prometheusOperator": true}'})
    names = sorted(urn.rsplit("::", 1)[1] for urn in stack.reads)
    assert names == [
        "venta-needs-crd-prometheusrules.monitoring.coreos.com-or-set-monitoring.prometheusOperator-false",
        "venta-needs-crd-servicemonitors.monitoring.coreos.com-or-set-monitoring.prometheusOperator-false",
    ]
    [namespace] = stack.of_type("kubernetes:core/v1:Namespace")
    assert set(stack.reads) <= set(namespace.options["dependsOn"])


def test_in_render_mode_nothing_is_read_and_the_crds_the_manifests_need_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No cluster to ask: the objects are written, and the run says what the cluster applying them needs."""
    said: list[str] = []
    monkeypatch.setattr(requirements.pulumi.log, "info", lambda message, *_, **__: said.append(message))
    # Evaluated here (not from the session's shared captures), so the message is heard.
    stack = capture_stack("prod", {"venta:kubernetes": '{"renderDir": "rendered/prod"}'})
    assert stack.reads == ()
    assert {"ServiceMonitor", "PrometheusRule"} <= set(inventory(stack))
    [line] = [m for m in said if "CRDs" in m]
    assert all(crd in line for crd in requirements.OPERATOR_CRDS)
    assert f"or set {requirements.SETTING}: false" in line


def test_prod_hpas_carry_the_scaling_table(prod_stack: CapturedStack) -> None:
    found = {}
    for hpa in of_kind(prod_stack, "HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        targets = {
            m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in spec["metrics"]
        }
        found[spec["scaleTargetRef"]["name"]] = (
            spec["minReplicas"],
            spec["maxReplicas"],
            targets["cpu"],
            targets["memory"],
        )
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": hpa["metadata"]["name"],
        }
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert set(found) == set(stacks.SERVICE_NAMES)
    assert {name: found[name] for name in PROD_HPAS} == PROD_HPAS
    assert found["api-gateway"] == (2, 10, 60, 75) and all(low >= 2 for low, *_ in found.values())


def test_hpa_targets_start_at_the_minimum_and_leave_replicas_to_the_hpa(captured: CapturedStack) -> None:
    """The first rollout is judged at the HPA's minimum; afterwards the engine never writes replicas."""
    minimum = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["minReplicas"]
        for h in of_kind(captured, "HorizontalPodAutoscaler")
    }
    scaled = set(minimum)
    for resource in captured.of_type("kubernetes:apps/v1:Deployment"):
        name = resource.inputs["metadata"]["name"]
        if name in minimum:
            assert resource.inputs["spec"]["replicas"] == minimum[name], name
            assert resource.options["ignoreChanges"] == ["spec.replicas"], name
        else:
            assert "spec.replicas" not in resource.options.get("ignoreChanges", []), name
    if captured.stack == "dev":
        assert not scaled and all(d["spec"]["replicas"] == 1 for d in of_kind(captured, "Deployment"))


def test_service_probes_and_rollout(captured: CapturedStack) -> None:
    for deployment in service_deployments(captured):
        (container,) = containers(deployment)
        assert container["ports"] == [
            {"name": "http", "containerPort": 8000, "protocol": "TCP"},
            {"name": "internal", "containerPort": 9090, "protocol": "TCP"},
        ]
        live, ready, start = (
            container["livenessProbe"],
            container["readinessProbe"],
            container["startupProbe"],
        )
        # On the internal port: the public one answers 404 for /health/*, so a pod probed there
        # would never become ready.
        assert live["httpGet"] == {"path": "/health/live", "port": "internal"}
        assert (live["initialDelaySeconds"], live["periodSeconds"]) == (30, 10)
        assert ready["httpGet"] == {"path": "/health/ready", "port": "internal"}
        assert (ready["initialDelaySeconds"], ready["periodSeconds"]) == (5, 5)
        assert start["httpGet"] == {"path": "/health/live", "port": "internal"}
        assert start["periodSeconds"] * start["failureThreshold"] == 150
        spec = deployment["spec"]
        assert spec["minReadySeconds"] == 10
        if spec["strategy"]["type"] == "RollingUpdate":
            assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        else:  # one pod on a ReadWriteOnce volume
            assert deployment["metadata"]["name"] == "file-management" and spec.get("replicas") == 1


def test_every_pod_runs_restricted(captured: CapturedStack) -> None:
    for workload in workloads(captured):
        pod = pod_template(workload)["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts_tmp = set()
        for container in containers(workload):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] and sc["runAsUser"] > 0 and sc["readOnlyRootFilesystem"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
            res = container["resources"]
            assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory", "ephemeral-storage"}
            mounts_tmp |= {m["mountPath"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp"}
            assert ":latest" not in container["image"] and ":" in container["image"]
        assert mounts_tmp == {"/tmp"}


def test_long_running_pods_have_probes(captured: CapturedStack) -> None:
    for workload in workloads(captured):
        if workload["kind"] == "CronJob":
            continue
        for container in pod_template(workload)["spec"]["containers"]:
            assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container)
            assert (
                container["livenessProbe"] != container["readinessProbe"]
                or "tcpSocket" in container["livenessProbe"]
            )


def test_labels_and_selectors(captured: CapturedStack) -> None:
    required = {
        f"app.kubernetes.io/{k}"
        for k in ("name", "instance", "component", "part-of", "version", "managed-by")
    }
    for manifest in manifests(captured):
        assert required <= set(manifest["metadata"].get("labels", {})), manifest["metadata"]["name"]
    for workload in of_kind(captured, "Deployment") + of_kind(captured, "StatefulSet"):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
        assert selects(selector, pod_template(workload)["metadata"]["labels"])


def test_every_service_selects_pods(captured: CapturedStack) -> None:
    pod_labels = [pod_template(w)["metadata"]["labels"] for w in workloads(captured)]
    for service in of_kind(captured, "Service"):
        selector = service["spec"]["selector"]
        matched = [labels for labels in pod_labels if selects(selector, labels)]
        assert matched, f"Service {service['metadata']['name']} selects no pods"
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            workload = next(
                w for w in workloads(captured) if selects(selector, pod_template(w)["metadata"]["labels"])
            )
            names = {p.get("name") for c in containers(workload) for p in c.get("ports", [])}
            assert target in names, f"{service['metadata']['name']} targets unknown port {target}"


def test_services_expose_the_api_on_80_and_the_internal_port_on_9090(captured: CapturedStack) -> None:
    for deployment in service_deployments(captured):
        service = named(captured, "Service", deployment["metadata"]["name"])
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["ports"] == [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "internal", "port": 9090, "targetPort": "internal", "protocol": "TCP"},
        ]


def test_every_service_reads_the_ports_its_pod_declares(captured: CapturedStack) -> None:
    """PORT and INTERNAL_PORT of each ConfigMap are the container ports named `http` and `internal`,
    so the probes and scrapes the pod spec aims at `internal` reach what the process serves there."""
    config_maps = {m["metadata"]["name"]: m["data"] for m in of_kind(captured, "ConfigMap")}
    for deployment in service_deployments(captured):
        (container,) = containers(deployment)
        declared = {p["name"]: str(p["containerPort"]) for p in container["ports"]}
        env = config_maps[container["envFrom"][0]["configMapRef"]["name"]]
        assert (env["PORT"], env["INTERNAL_PORT"]) == (declared["http"], declared["internal"])
        annotations = pod_template(deployment)["metadata"]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": declared["internal"],
            "prometheus.io/path": "/metrics",
        }


def _references(workload: dict[str, Any]) -> tuple[set[str], set[tuple[str, str | None]], set[str]]:
    config_maps: set[str] = set()
    secrets: set[tuple[str, str | None]] = set()
    claims: set[str] = set()
    pod = pod_template(workload)["spec"]
    for container in containers(workload):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
            if "secretRef" in source:
                secrets.add((source["secretRef"]["name"], None))
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                secrets.add((ref["name"], ref["key"]))
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            secrets.add((volume["secret"]["secretName"], None))
        if "configMap" in volume:
            config_maps.add(volume["configMap"]["name"])
        if "persistentVolumeClaim" in volume:
            claims.add(volume["persistentVolumeClaim"]["claimName"])
    return config_maps, secrets, claims


def test_every_referenced_configmap_secret_and_claim_exists(captured: CapturedStack) -> None:
    config_maps = {m["metadata"]["name"] for m in of_kind(captured, "ConfigMap")}
    secret_keys = {m["metadata"]["name"]: set(m.get("stringData", {})) for m in of_kind(captured, "Secret")}
    claims = {m["metadata"]["name"] for m in of_kind(captured, "PersistentVolumeClaim")}
    for workload in workloads(captured):
        used_maps, used_secrets, used_claims = _references(workload)
        assert used_maps <= config_maps
        assert used_claims <= claims
        for name, key in used_secrets:
            assert name in secret_keys, f"{workload['metadata']['name']} needs missing Secret {name}"
            assert key is None or key in secret_keys[name], f"Secret {name} has no key {key}"


def test_every_pod_is_selected_by_its_own_network_policy(captured: CapturedStack) -> None:
    """One policy per pod says all it may send and receive; the only others that select a pod are the
    admissions of an exporter into its store (`<store>-from-<exporter>`), which add ingress only."""
    policies = [p for p in of_kind(captured, "NetworkPolicy") if p["metadata"]["name"] != "default-deny"]
    deny = named(captured, "NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    admissions = set()
    for workload in workloads(captured):
        labels = pod_template(workload)["metadata"]["labels"]
        matching = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], labels)]
        own = [p for p in matching if p["spec"]["policyTypes"] == ["Ingress", "Egress"]]
        assert len(own) == 1, workload["metadata"]["name"]
        for policy in matching:
            if policy is not own[0]:
                assert policy["spec"]["policyTypes"] == ["Ingress"] and "egress" not in policy["spec"]
                admissions.add(policy["metadata"]["name"])
    stores = ("postgres", "redis", "nats")
    expected = {f"{store}-from-{store}-exporter" for store in stores} if captured.stack == "prod" else set()
    assert admissions == expected


def test_network_policies_follow_the_call_graph(captured: CapturedStack) -> None:
    def peers(policy: dict[str, Any], direction: str) -> list[dict[str, Any]]:
        key = "from" if direction == "ingress" else "to"
        return [peer for rule in policy["spec"].get(direction, []) for peer in rule.get(key, [])]

    def pod_names(policy: dict[str, Any], direction: str) -> set[str]:
        return {
            p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for p in peers(policy, direction)
            if "podSelector" in p and "matchLabels" in p["podSelector"] and "namespaceSelector" not in p
        }

    gateway = named(captured, "NetworkPolicy", "api-gateway")
    assert pod_names(gateway, "egress") >= set(stacks.SERVICE_NAMES) - {"api-gateway"}
    ingress_ns = [p["namespaceSelector"]["matchLabels"] for p in peers(gateway, "ingress")]
    assert {"kubernetes.io/metadata.name": "ingress-nginx"} in ingress_ns
    assert {"kubernetes.io/metadata.name": "monitoring"} in ingress_ns
    assert pod_names(named(captured, "NetworkPolicy", "user-management"), "ingress") == {"api-gateway"}
    assert pod_names(named(captured, "NetworkPolicy", "real-time"), "egress") == {"nats"}
    # prod's services also read the replica (DATABASE_READ_URL), which admits them.
    replica = {"postgres-replica"} if captured.stack == "prod" else set()
    search = pod_names(named(captured, "NetworkPolicy", "search-discovery"), "egress")
    assert search == {"postgres", "redis-cache", "nats", *replica}
    redis_clients = pod_names(named(captured, "NetworkPolicy", "redis"), "ingress")
    assert (
        redis_clients == {s.name for s in stacks.SERVICES if s.redis}
        and "search-discovery" not in redis_clients
    )
    assert pod_names(named(captured, "NetworkPolicy", "redis-cache"), "ingress") == {"search-discovery"}
    for store in ["postgres", *replica]:
        postgres_clients = pod_names(named(captured, "NetworkPolicy", store), "ingress")
        assert {s.name for s in stacks.SERVICES if s.database} <= postgres_clients, store
        assert "geolocation" not in postgres_clients and "api-gateway" not in postgres_clients
    webhooks = named(captured, "NetworkPolicy", "webhooks")
    blocks = [p["ipBlock"] for p in peers(webhooks, "egress") if "ipBlock" in p]
    assert blocks and "10.0.0.0/8" in blocks[0]["except"] and "169.254.0.0/16" in blocks[0]["except"]


def _admitted(policy: dict[str, Any], direction: str) -> dict[str, set[str]]:
    """Peer (a namespace or a pod's name label) -> the ports a policy opens to or from it."""
    key = "from" if direction == "ingress" else "to"
    found: dict[str, set[str]] = {}
    for rule in policy["spec"].get(direction, []):
        ports = {str(p["port"]) for p in rule.get("ports", [])}
        for peer in rule.get(key, []):
            if "namespaceSelector" in peer and "podSelector" not in peer:
                who = "namespace " + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            elif "podSelector" in peer and "namespaceSelector" not in peer:
                who = peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            else:
                continue
            found.setdefault(who, set()).update(ports)
    return found


def test_network_policies_open_the_internal_port_to_monitoring_and_the_gateway_only(
    captured: CapturedStack,
) -> None:
    """Prometheus reaches /metrics on `internal` and never the API; the gateway reaches every service's
    API and internal port (its /health/upstreams view); the ingress controller reaches the gateway's
    API only. The kubelet's probes need no rule (NetworkPolicy does not apply to them)."""
    settings = stacks.load(captured.stack, captured.config)
    monitoring = f"namespace {settings.monitoring.namespace}"
    controller = f"namespace {settings.gateway.ingress_namespace}"
    for spec in stacks.SERVICES:
        admitted = _admitted(named(captured, "NetworkPolicy", spec.name), "ingress")
        callers = {controller: {"http"}} if spec.public_entry else {"api-gateway": {"http", "internal"}}
        assert admitted == {monitoring: {"internal"}, **callers}, spec.name
    gateway = _admitted(named(captured, "NetworkPolicy", "api-gateway"), "egress")
    upstreams = {s.name for s in stacks.SERVICES if not s.public_entry}
    assert {name: gateway[name] for name in upstreams} == {name: {"http", "internal"} for name in upstreams}


def test_nothing_public_reaches_the_internal_port(captured: CapturedStack) -> None:
    ingress = named(captured, "Ingress", "api-gateway")["spec"]
    backends = [path["backend"] for rule in ingress["rules"] for path in rule["http"]["paths"]]
    assert backends == [{"service": {"name": "api-gateway", "port": {"name": "http"}}}]
    assert "defaultBackend" not in ingress
    for service in of_kind(captured, "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]


def test_pod_disruption_budgets_where_pods_can_exceed_one(captured: CapturedStack) -> None:
    budgets = of_kind(captured, "PodDisruptionBudget")
    hpas = {h["metadata"]["name"] for h in of_kind(captured, "HorizontalPodAutoscaler")}
    covered = {b["metadata"]["name"] for b in budgets}
    assert hpas <= covered
    if captured.stack == "prod":
        assert {"nats", "postgres"} <= covered
    else:
        assert not budgets


def test_image_references_follow_the_stack(captured: CapturedStack) -> None:
    tag = "0.1.0"
    for deployment in service_deployments(captured):
        name = deployment["metadata"]["name"]
        (container,) = containers(deployment)
        assert container["image"] == f"ghcr.io/venta/{name}:{tag}"
        assert pod_template(deployment)["metadata"]["labels"]["app.kubernetes.io/version"] == tag
    # The exporters run the upstream images their settings name, labelled with the upstream version.
    exporters = stacks.load(captured.stack, captured.config).monitoring.exporters
    upstream = {
        "postgres-exporter": exporters.postgres_image,
        "redis-exporter": exporters.redis_image,
        "nats-exporter": exporters.nats_image,
    }
    for deployment in exporter_deployments(captured):
        (container,) = containers(deployment)
        image = upstream[deployment["metadata"]["name"]]
        assert container["image"] == image
        version = pod_template(deployment)["metadata"]["labels"]["app.kubernetes.io/version"]
        assert version == image.rsplit(":", 1)[1]
    assert captured.outputs["images"] == {n: f"ghcr.io/venta/{n}:{tag}" for n in stacks.SERVICE_NAMES}
    assert not captured.of_type("docker:index/image:Image")


def test_registry_tag_and_digests_from_settings(captured_stack: Any) -> None:
    digest = "sha256:" + "ab" * 32
    images = '{"registry": "registry.internal:5000/shop", "tag": "2.3.4", "digests": {"geolocation": "%s"}}'
    captured = captured_stack("prod", {"venta:images": images % digest})
    refs = {d["metadata"]["name"]: containers(d)[0]["image"] for d in of_kind(captured, "Deployment")}
    assert refs["geolocation"] == f"registry.internal:5000/shop/geolocation:2.3.4@{digest}"
    assert refs["webhooks"] == "registry.internal:5000/shop/webhooks:2.3.4"


def test_build_mode_builds_each_service_from_the_shared_dockerfile(captured_stack: Any) -> None:
    captured = captured_stack(
        "dev", {"venta:images": '{"build": true, "registry": "localhost:5000/venta", "tag": "dev1"}'}
    )
    built = captured.of_type("docker:index/image:Image")
    assert len(built) == len(stacks.SERVICE_NAMES)
    for image in built:
        service = image.inputs["build"]["args"]["SERVICE"]
        assert image.name == f"venta-{service}-image"
        build = image.inputs["build"]
        assert build["context"] == BUILD_CONTEXT and build["dockerfile"] == DOCKERFILE
        assert build["args"] == {"SERVICE": service} and build["platform"] == "linux/amd64"
        assert image.inputs["imageName"] == f"localhost:5000/venta/{service}:dev1"
        assert image.parent.endswith(f"VentaService::venta-{service}")
    deployment = named(captured, "Deployment", "geolocation")
    assert containers(deployment)[0]["image"].startswith("localhost:5000/venta/geolocation@sha256:")


def test_dockerfile_and_build_context_exist() -> None:
    context = REPO_ROOT / BUILD_CONTEXT
    assert (context / "services").is_dir()
    assert (REPO_ROOT / DOCKERFILE).is_file(), "services/Dockerfile is the shared image build"


def test_provider_render_mode_and_cluster_from_settings(captured_stack: Any) -> None:
    captured = captured_stack(
        "dev", {"venta:kubernetes": '{"renderDir": "out/dev", "context": "kind-venta"}'}
    )
    (provider,) = captured.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["renderYamlToDirectory"] == "out/dev"
    assert provider.inputs["context"] == "kind-venta"
    assert "enableServerSideApply" not in provider.inputs


def test_every_kubernetes_object_uses_the_platform_provider(captured: CapturedStack) -> None:
    (provider,) = captured.of_type("pulumi:providers:kubernetes")
    for resource in captured.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.options["provider"].startswith(provider.urn + "::"), resource.urn


def test_components_parent_their_children(captured: CapturedStack) -> None:
    components = {r.urn for r in captured.resources if not r.custom}
    (platform,) = [r for r in captured.resources if r.type == "venta:platform:Platform"]
    assert platform.parent.endswith("pulumi:pulumi:Stack::venta-" + captured.stack)
    for resource in captured.resources:
        if resource is not platform:
            assert resource.parent in components, resource.urn
    for kind in ("venta:service:VentaService", "venta:data:Postgres", "venta:data:Redis", "venta:data:Nats"):
        assert captured.of_type(kind)


def test_namespace_guard_rails(captured: CapturedStack) -> None:
    namespace = named(captured, "Namespace", f"venta-{captured.stack}")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for manifest in manifests(captured):
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == f"venta-{captured.stack}"
    limits = named(captured, "LimitRange", f"venta-{captured.stack}")["spec"]["limits"][0]
    assert limits["type"] == "Container" and limits["default"] and limits["defaultRequest"]


def test_quota_fits_every_workload_at_its_maximum(captured: CapturedStack) -> None:
    from stacks.quantities import cpu_millis, memory_bytes

    hard = named(captured, "ResourceQuota", f"venta-{captured.stack}")["spec"]["hard"]
    hpa_max = {
        h["metadata"]["name"]: h["spec"]["maxReplicas"] for h in of_kind(captured, "HorizontalPodAutoscaler")
    }
    pods = cpu = memory = 0
    for workload in workloads(captured):
        spec = workload["spec"]
        # A Deployment's rollout adds a surge pod; a StatefulSet replaces its pods one at a time, and a
        # CronJob whose concurrencyPolicy forbids a second run never has two.
        surge = 1 if workload["kind"] == "Deployment" else 0
        count = hpa_max.get(workload["metadata"]["name"], spec.get("replicas", 1)) + surge
        for container in pod_template(workload)["spec"]["containers"]:
            cpu += count * cpu_millis(container["resources"]["limits"]["cpu"])
            memory += count * memory_bytes(container["resources"]["limits"]["memory"])
        pods += count
    assert int(hard["pods"]) >= pods
    assert cpu_millis(hard["limits.cpu"]) >= cpu
    assert memory_bytes(hard["limits.memory"]) >= memory
    assert hard["services.loadbalancers"] == hard["services.nodeports"] == "0"


def test_ingress_routes_the_gateway_host(captured: CapturedStack) -> None:
    settings = stacks.load(captured.stack, captured.config)
    ingress = named(captured, "Ingress", "api-gateway")["spec"]
    assert ingress["ingressClassName"] == settings.gateway.ingress_class
    (rule,) = ingress["rules"]
    assert rule["host"] == settings.gateway.host
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "api-gateway", "port": {"name": "http"}}
    scheme = "https" if settings.gateway.tls_secret else "http"
    assert captured.outputs["gatewayUrl"] == f"{scheme}://{settings.gateway.host}"
    assert ("tls" in ingress) is bool(settings.gateway.tls_secret)


def test_prod_spreads_pods_and_dev_does_not(captured: CapturedStack) -> None:
    for deployment in of_kind(captured, "Deployment"):
        pod = pod_template(deployment)["spec"]
        spread = pod.get("topologySpreadConstraints", [])
        if captured.stack == "prod":
            assert spread[0]["topologyKey"] == "kubernetes.io/hostname" and spread[0]["maxSkew"] == 1
            assert "podAntiAffinity" in pod["affinity"]
        else:
            assert not spread and "affinity" not in pod


def test_config_changes_roll_the_pods(captured_stack: Any, dev_stack: CapturedStack) -> None:
    """ConfigMaps and Secrets have no fixed name: the engine names them, a change of their data replaces
    them under a new name, and the pod template that refers to that name changes, which rolls the pods."""
    changed = captured_stack("dev", {"venta:services": '{"webhooks": {"logLevel": "ERROR"}}'})
    for kind in ("ConfigMap", "Secret"):
        for resource in dev_stack.of_type(f"kubernetes:core/v1:{kind}"):
            # The mocks, like the provider, name (and mark) only what the program left unnamed.
            assert resource.inputs["metadata"]["annotations"][AUTONAMED] == "true", resource.name

    def references(captured: CapturedStack) -> dict[str, tuple[str, ...]]:
        return {
            d["metadata"]["name"]: tuple(
                ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in containers(d)[0]["envFrom"]
            )
            for d in of_kind(captured, "Deployment")
        }

    before, after = references(dev_stack), references(changed)
    assert {n for n in before if before[n] != after[n]} == {"webhooks"}
    assert before["webhooks"][1] == after["webhooks"][1]  # the Secret did not change
    config_maps = {m["metadata"]["name"] for m in of_kind(dev_stack, "ConfigMap")}
    assert set(ref for refs in before.values() for ref in refs[:1]) <= config_maps
    annotations = pod_template(named(dev_stack, "Deployment", "geolocation"))["metadata"]["annotations"]
    assert "checksum/config" not in annotations  # the name rolls the pods, not a checksum


def test_prod_data_stores(prod_stack: CapturedStack) -> None:
    assert named(prod_stack, "StatefulSet", "nats")["spec"]["replicas"] == 3
    replica = named(prod_stack, "StatefulSet", "postgres-replica")
    (clone,) = pod_template(replica)["spec"]["initContainers"]
    assert clone["name"] == "clone-primary"  # run by tests/datastores/test_postgres.py
    cron = named(prod_stack, "CronJob", "postgres-backup")
    assert cron["spec"]["schedule"] == "0 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    (dump,) = containers(cron)  # the committed prod file names no target: no upload container
    assert "PGHOST=postgres-replica " in dump["command"][2]  # run by tests/datastores/test_backups.py
    redis = pod_template(named(prod_stack, "StatefulSet", "redis"))["spec"]["containers"][0]
    assert redis["command"] == ["redis-server", "/etc/redis/redis.conf"]
    assert all("requirepass" not in arg for arg in redis["command"])


def test_every_pod_has_its_own_service_account(captured: CapturedStack) -> None:
    accounts = {a["metadata"]["name"]: a for a in of_kind(captured, "ServiceAccount")}
    used = []
    for workload in workloads(captured):
        name = pod_template(workload)["spec"]["serviceAccountName"]
        assert accounts[name]["automountServiceAccountToken"] is False
        used.append(name)
    assert len(used) == len(set(used)) == len(accounts)


def test_data_stores_and_exporters_read_credentials_from_files(captured: CapturedStack) -> None:
    services = {d["metadata"]["name"] for d in service_deployments(captured)}
    for workload in workloads(captured):
        if workload["kind"] == "Deployment" and workload["metadata"]["name"] in services:
            continue  # services read theirs from the environment, per docs/contracts.md
        for container in containers(workload):
            refs = [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
            assert refs == [], f"{workload['metadata']['name']}/{container['name']}"
    postgres = containers(named(captured, "StatefulSet", "postgres"))[0]
    env = {e["name"]: e.get("value") for e in postgres["env"]}
    assert env["POSTGRES_PASSWORD_FILE"] == "/etc/postgres-credentials/POSTGRES_PASSWORD"


def test_pull_policy_and_scanner_skips_follow_the_stack(captured: CapturedStack, captured_stack: Any) -> None:
    policy = "IfNotPresent" if captured.stack == "dev" else "Always"
    for workload in workloads(captured):
        assert {c["imagePullPolicy"] for c in containers(workload)} == {policy}

    def checks(manifest: dict[str, Any]) -> list[str]:
        """The checkov checks a workload skips (kube-score's skips are held below and in tests/scan)."""
        annotations = manifest["metadata"].get("annotations", {})
        return sorted(
            value.split("=")[0] for key, value in annotations.items() if key.startswith("checkov.io/")
        )

    assert checks(named(captured, "Deployment", "webhooks")) == (
        ["CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_43"]
        if captured.stack == "dev"
        else ["CKV_K8S_35", "CKV_K8S_43"]
    )
    # The exporters read their passwords from files: only the image skips can apply to them.
    for exporter in exporter_deployments(captured):
        assert checks(exporter) == ["CKV_K8S_43"], exporter["metadata"]["name"]
    if captured.stack == "prod":
        digest = "sha256:" + "cd" * 32
        pinned = captured_stack(
            "prod",
            {
                "venta:images": json.dumps(
                    {"registry": "ghcr.io/venta", "tag": "0.1.0", "digests": {"webhooks": digest}}
                ),
                "venta:redis": json.dumps({"image": f"redis:7.4.1@{digest}"}),
                "venta:monitoring": json.dumps(
                    {"exporters": {"redisImage": f"oliver006/redis_exporter:v1.62.0@{digest}"}}
                ),
            },
        )
        webhooks = named(pinned, "Deployment", "webhooks")["metadata"]["annotations"]
        # Pulling Always and pinned, only the env-secret skip stays, and the HPA's replicas one.
        hpa_replicas = "deployment-targeted-by-hpa-does-not-have-replicas-configured"
        assert {k: v.split("=")[0] for k, v in webhooks.items()} == {
            "checkov.io/skip1": "CKV_K8S_35",
            "kube-score/ignore": hpa_replicas,
            "venta.io/kube-score-skip1": hpa_replicas,
        }
        assert "annotations" not in named(pinned, "StatefulSet", "redis")["metadata"]
        assert "annotations" not in named(pinned, "Deployment", "redis-exporter")["metadata"]
        assert checks(named(pinned, "Deployment", "postgres-exporter")) == ["CKV_K8S_43"]
