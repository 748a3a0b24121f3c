"""dev and prod deployed by the real engine to a real control plane with simulated nodes.

`pulumi up` runs with the kubernetes provider's normal await logic (rollouts, Service endpoints,
Ingress address) against kube-apiserver, kube-controller-manager and kube-scheduler; kwok makes the
scheduled pods Running and Ready. One project copy per stack; the tests of a stack run in file order
against it and the last one destroys the stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from infra.render.capture import stack_config
from stacks import load
from stacks.catalog import SERVICE_NAMES
from stacks.model import Autoscaling, StackSettings
from tests.e2e.cluster import (
    EXPORTERS,
    LocalCluster,
    expected_monitors,
    minimum_pods,
    operator_objects,
    wait_until_rolled_out,
    workload_problems,
)
from tests.e2e.pulumi_cli import PulumiProject, planned_steps
from venta.engine import UNCHANGED_OPS

pytestmark = pytest.mark.e2e

STACKS = ["dev", "prod"]
VERSION_B = "0.2.0-e2e"
# A service whose ConfigMap the config-change test edits, and the setting it changes.
CHANGED_SERVICE = "user-management"

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120.0) -> T:
    """Poll `probe` until it returns something truthy; the controllers act asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)


@dataclass
class ClusterStack:
    stack: str
    project: PulumiProject
    cluster: LocalCluster
    settings: StackSettings
    first_replica_sets: dict[str, str]  # Deployment -> the ReplicaSet that ran right after the first up
    # Deployment -> its ready pods the moment the first `up` returned (before any HPA sync).
    ready_when_up_returned: dict[str, int] = field(default_factory=dict)

    def ready_pods(self) -> dict[str, int]:
        return {d["metadata"]["name"]: d["status"].get("readyReplicas", 0) for d in self.get("deployments")}

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def get(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.cluster.get_json(kind, "-n", self.namespace)["items"]
        return items

    def up(self, label: str) -> None:
        self.project.run("up", "--stack", self.stack, "--yes", "--skip-preview", label=label)

    def set_config(self, path: str, value: str) -> None:
        self.project.set_config(self.stack, path, value)

    def settle(self) -> None:
        wait_until_rolled_out(self.cluster, self.namespace, minimum_pods(self.settings))

    def active_replica_sets(self) -> dict[str, str]:
        """Deployment name -> the one ReplicaSet with pods, once no rollout is midway."""

        def settled() -> dict[str, str] | None:
            with_pods: dict[str, list[str]] = {}
            for rs in self.get("replicasets"):
                if rs["spec"].get("replicas", 0) > 0:
                    owner = rs["metadata"]["ownerReferences"][0]["name"]
                    with_pods.setdefault(owner, []).append(rs["metadata"]["name"])
            if any(len(names) != 1 for names in with_pods.values()):
                return None
            return {owner: names[0] for owner, names in with_pods.items()}

        return wait_for("one ReplicaSet with pods per Deployment", settled)

    def service_images(self) -> dict[str, set[str]]:
        """Service name -> images of its live (not terminating) pods."""
        images: dict[str, set[str]] = {}
        for pod in self.get("pods"):
            name = pod["metadata"].get("labels", {}).get("app.kubernetes.io/name")
            if name in SERVICE_NAMES and "deletionTimestamp" not in pod["metadata"]:
                images.setdefault(name, set()).update(c["image"] for c in pod["spec"]["containers"])
        return images


@pytest.fixture(scope="module", params=STACKS)
def deployed(
    request: pytest.FixtureRequest,
    pulumi_bin: Path,
    local_cluster: LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    stack: str = request.param
    project = PulumiProject.copy_of_repo(tmp_path_factory.mktemp(f"cluster-{stack}"), pulumi_bin)
    project.run("stack", "select", "--create", stack)
    kube = {"kubeconfig": str(local_cluster.kubeconfig), "context": local_cluster.context}
    project.set_config(stack, "venta:kubernetes.kubeconfig", kube["kubeconfig"])
    project.set_config(stack, "venta:kubernetes.context", kube["context"])
    settings = load(stack, stack_config(stack, {"venta:kubernetes": json.dumps(kube)}))
    project.run("up", "--stack", stack, "--yes", "--skip-preview", label="up")
    deployed = ClusterStack(stack, project, local_cluster, settings, {})
    deployed.ready_when_up_returned = deployed.ready_pods()
    deployed.settle()
    deployed.first_replica_sets = deployed.active_replica_sets()
    yield deployed
    print(
        f"\n[e2e cluster timings {stack}] " + ", ".join(f"{k} {v:.1f}s" for k, v in project.timings.items())
    )


def test_every_resource_in_the_state_is_the_live_object(deployed: ClusterStack) -> None:
    state = deployed.project.export_state(deployed.stack)["deployment"]["resources"]
    objects = [
        r["outputs"]
        for r in state
        if r["type"].startswith("kubernetes:")
        and not r["type"].startswith("pulumi:providers:")
        and r.get("custom", True)
        and "metadata" in r.get("outputs", {})
    ]
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "Deployment", "StatefulSet", "Service", "ConfigMap", "Secret", "Ingress"} <= kinds
    wanted = [
        {
            "apiVersion": o["apiVersion"],
            "kind": o["kind"],
            "metadata": {k: o["metadata"][k] for k in ("name", "namespace") if k in o["metadata"]},
        }
        for o in objects
    ]
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": wanted})
    live = json.loads(deployed.cluster.kubectl("get", "-f", "-", "-o", "json", input_text=listing))["items"]
    assert len(live) == len(objects)
    assert [o["metadata"]["uid"] for o in live] == [o["metadata"]["uid"] for o in objects]


def test_workloads_are_rolled_out_and_services_have_endpoints(deployed: ClusterStack) -> None:
    assert workload_problems(deployed.cluster, deployed.namespace, minimum_pods(deployed.settings)) == []
    by_component: dict[str, list[str]] = {}
    for d in deployed.get("deployments"):
        component = d["metadata"]["labels"]["app.kubernetes.io/component"]
        by_component.setdefault("exporters" if component == "monitoring" else "services", []).append(
            d["metadata"]["name"]
        )
    assert sorted(by_component["services"]) == sorted(SERVICE_NAMES)
    assert sorted(by_component.get("exporters", [])) == (
        sorted(EXPORTERS) if deployed.stack == "prod" else []
    )
    assert deployed.get("statefulsets"), "the data stores run as StatefulSets"
    assert deployed.get("persistentvolumeclaims"), "the data stores keep their data on volumes"


def test_the_first_rollout_is_done_at_each_autoscalers_minimum(deployed: ClusterStack) -> None:
    """`up` waits for each Deployment's rollout: it must be judged at the HPA's minimum (geolocation 3
    in prod), not at the 1 pod a Deployment without `replicas` starts with."""
    want = {
        name: s.autoscaling.min_replicas for name, s in deployed.settings.services.items() if s.autoscaling
    }
    assert {name: deployed.ready_when_up_returned.get(name, 0) for name in want} == want


def test_autoscalers_carry_the_stack_bounds_and_metrics(deployed: ClusterStack) -> None:
    hpas = {h["metadata"]["name"]: h for h in deployed.get("horizontalpodautoscalers.v2.autoscaling")}
    scaled: dict[str, Autoscaling] = {
        name: s.autoscaling for name, s in deployed.settings.services.items() if s.autoscaling
    }
    assert sorted(hpas) == sorted(scaled)
    if deployed.stack == "prod":
        assert len(hpas) == len(SERVICE_NAMES)
    for name, want in scaled.items():
        spec = hpas[name]["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert (spec["minReplicas"], spec["maxReplicas"]) == (want.min_replicas, want.max_replicas)
        targets = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
        assert targets == {
            "cpu": {"type": "Utilization", "averageUtilization": want.cpu_target},
            "memory": {"type": "Utilization", "averageUtilization": want.memory_target},
        }
    # The controller processes them (it enforces the minimum even without a metrics source) and
    # reports the scaled Deployment on its next sync, every 15 s.
    wait_for("every HPA to report at least its minimum", lambda: _hpas_at_minimum(deployed, scaled))


def _hpas_at_minimum(stack: ClusterStack, scaled: Mapping[str, Autoscaling]) -> bool:
    status = {h["metadata"]["name"]: h.get("status", {}) for h in stack.get("horizontalpodautoscalers")}

    def processed(name: str) -> bool:
        return any(
            c["type"] == "AbleToScale" and c["status"] == "True" for c in status[name].get("conditions", [])
        )

    return all(
        status[name].get("currentReplicas", 0) >= want.min_replicas and processed(name)
        for name, want in scaled.items()
    )


def test_version_b_then_rollback_to_a_runs_a_images_again(deployed: ClusterStack) -> None:
    version_a = deployed.settings.images.tag
    assert all(
        images == {f"{deployed.settings.images.registry}/{name}:{version_a}"}
        for name, images in deployed.service_images().items()
    )
    deployed.set_config("venta:images.tag", VERSION_B)
    deployed.up("up version B")
    images_b = wait_for("only version B pods", lambda: _only_tag(deployed, VERSION_B))
    assert sorted(images_b) == sorted(SERVICE_NAMES)
    deployed.set_config("venta:images.tag", version_a)
    deployed.up("rollback to A")
    wait_for("only version A pods", lambda: _only_tag(deployed, version_a))
    # Rolling back to the same pod template reuses A's ReplicaSets rather than making new ones.
    assert deployed.active_replica_sets() == deployed.first_replica_sets


def _only_tag(stack: ClusterStack, tag: str) -> dict[str, set[str]] | None:
    images = stack.service_images()
    done = len(images) == len(SERVICE_NAMES) and all(
        all(image.endswith(f":{tag}") for image in found) for found in images.values()
    )
    return images if done else None


def test_a_config_change_rolls_only_that_deployment(deployed: ClusterStack) -> None:
    before = {d["metadata"]["name"]: d for d in deployed.get("deployments")}
    replica_sets = deployed.active_replica_sets()
    current = deployed.settings.services[CHANGED_SERVICE].log_level
    deployed.set_config(
        f'venta:services["{CHANGED_SERVICE}"].logLevel', "ERROR" if current != "ERROR" else "INFO"
    )
    deployed.up("up config change")
    after = {d["metadata"]["name"]: d for d in deployed.get("deployments")}
    # The update leaves the HPAs' counts alone: no Deployment under an HPA was set below its minimum.
    for name, s in deployed.settings.services.items():
        if s.autoscaling:
            assert after[name]["spec"]["replicas"] >= s.autoscaling.min_replicas, name

    def config_map(d: dict[str, Any]) -> str:
        """The ConfigMap the pod template reads: auto-named, so new data means a new name."""
        env_from = d["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        return str(next(ref["configMapRef"]["name"] for ref in env_from if "configMapRef" in ref))

    assert config_map(after[CHANGED_SERVICE]) != config_map(before[CHANGED_SERVICE])
    rolled = wait_for("the new ReplicaSet alone has pods", lambda: _rolled(deployed, replica_sets))
    assert rolled == {CHANGED_SERVICE}
    for name in SERVICE_NAMES:
        if name != CHANGED_SERVICE:
            assert config_map(after[name]) == config_map(before[name]), name
    # Created before it was needed, deleted once nothing refers to it: no moment without a ConfigMap.
    remaining = {c["metadata"]["name"] for c in deployed.get("configmaps")}
    assert config_map(after[CHANGED_SERVICE]) in remaining
    assert config_map(before[CHANGED_SERVICE]) not in remaining


def _rolled(stack: ClusterStack, before: dict[str, str]) -> set[str] | None:
    if workload_problems(stack.cluster, stack.namespace, minimum_pods(stack.settings)):
        return None
    now = stack.active_replica_sets()
    return {name for name in now if now[name] != before.get(name)} or None


def test_prod_deploys_its_monitors_and_alert_rules(deployed: ClusterStack) -> None:
    """The engine created them on the cluster (which has the operator's CRDs), each monitor selecting
    a Service of the stack by its labels and scraping a port that Service names."""
    found = operator_objects(deployed.cluster, deployed.namespace)
    monitors = {m["metadata"]["name"]: m["spec"] for m in found["ServiceMonitor"]}
    assert sorted(monitors) == expected_monitors(deployed.settings)
    services = deployed.get("services")
    for name, spec in monitors.items():
        [service] = [
            s for s in services if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert service["metadata"]["name"] == name
        assert spec["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}, name
    rules = {r["metadata"]["name"]: r["spec"] for r in found["PrometheusRule"]}
    if deployed.stack == "prod":
        alerts = {rule["alert"] for group in rules["venta-alerts"]["groups"] for rule in group["rules"]}
        assert {"VentaHighErrorRate", "VentaServiceDown", "VentaPostgresDown", "VentaNatsDown"} <= alerts
    else:
        assert rules == {}


def test_refresh_then_preview_shows_no_drift(deployed: ClusterStack) -> None:
    deployed.project.run("refresh", "--stack", deployed.stack, "--yes", "--skip-preview", label="refresh")
    preview = deployed.project.preview(deployed.stack, label="preview after refresh")
    changed = [
        (s["op"], s["urn"].split("::")[-1], s.get("diffReasons"))
        for s in planned_steps(preview)
        if s["op"] not in UNCHANGED_OPS  # a read (the operator's CRDs) changes nothing
    ]
    # On a failure, the engine's own detailed diff says what moved (the step list alone may not).
    detail = (
        "" if not changed else deployed.project.run("preview", "--stack", deployed.stack, "--diff").stdout
    )
    assert changed == [], detail[-6000:]


def test_destroy_leaves_nothing_in_the_namespace(deployed: ClusterStack) -> None:
    deployed.project.run("destroy", "--stack", deployed.stack, "--yes", "--skip-preview", label="destroy")
    left = deployed.cluster.kubectl(
        "get",
        "all,configmaps,secrets,pvc,ingresses,networkpolicies,poddisruptionbudgets,"
        "horizontalpodautoscalers,serviceaccounts,resourcequotas,limitranges,"
        "servicemonitors.monitoring.coreos.com,prometheusrules.monitoring.coreos.com",
        "-n",
        deployed.namespace,
        "-o",
        "name",
        check=False,
    )
    assert left.strip() == ""
    gone = deployed.cluster.kubectl("get", "namespace", deployed.namespace, check=False)
    assert gone == "", f"namespace {deployed.namespace} still exists"
    resources = deployed.project.export_state(deployed.stack)["deployment"].get("resources") or []
    assert [r["type"] for r in resources if r["type"] != "pulumi:pulumi:Stack"] == []
