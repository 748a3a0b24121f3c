"""The mocked render of dev and prod, applied to the real control plane (no Pulumi engine needed).

The API server's own validation, defaulting and admission (Pod Security "restricted", quotas,
limit ranges) judge every object; the controllers then roll the workloads out on kwok's nodes.
Each stack renders into a namespace of its own, so these tests and the engine's share one cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.render.capture import capture_stack, stack_config
from infra.render.manifests import to_manifests
from stacks import load
from stacks.model import StackSettings
from tests.e2e.cluster import (
    LocalCluster,
    expected_monitors,
    minimum_pods,
    operator_objects,
    wait_until_rolled_out,
)

pytestmark = pytest.mark.e2e

STACKS = ["dev", "prod"]


@dataclass
class Applied:
    stack: str
    cluster: LocalCluster
    settings: StackSettings
    manifests: list[dict[str, Any]]
    dry_run: str  # kubectl's report of the server-side dry run


def as_list(manifests: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests})


@pytest.fixture(scope="module", params=STACKS)
def applied(request: pytest.FixtureRequest, local_cluster: LocalCluster) -> Iterator[Applied]:
    stack: str = request.param
    overrides = {"venta:namespace": f"render-{stack}"}
    settings = load(stack, stack_config(stack, overrides))
    manifests = to_manifests(capture_stack(stack, overrides))
    namespaces = [m for m in manifests if m["kind"] == "Namespace"]
    rest = [m for m in manifests if m["kind"] != "Namespace"]
    # Namespaced objects can be dry-run only into a namespace that exists.
    local_cluster.kubectl("create", "-f", "-", input_text=as_list(namespaces))
    dry_run = local_cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", "-o", "name", input_text=as_list(rest)
    )
    local_cluster.kubectl("create", "-f", "-", input_text=as_list(rest))
    yield Applied(stack, local_cluster, settings, manifests, dry_run)
    local_cluster.kubectl("delete", "namespace", settings.namespace, "--wait=true", "--timeout=120s")


def test_api_server_accepts_every_object(applied: Applied) -> None:
    accepted = applied.dry_run.split()
    assert len(accepted) == len(applied.manifests) - 1  # all but the namespace, created before
    assert any(name.startswith("deployment.apps/") for name in accepted)


def test_every_workload_rolls_out_on_the_simulated_nodes(applied: Applied) -> None:
    wait_until_rolled_out(applied.cluster, applied.settings.namespace, minimum_pods(applied.settings))


def test_admission_enforces_the_restricted_pod_security_profile(applied: Applied) -> None:
    # The namespace label is live: a pod that breaks the profile is refused, so ours passed it.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unconfined-probe", "namespace": applied.settings.namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},  # no securityContext at all
    }
    with pytest.raises(RuntimeError, match="violates PodSecurity"):
        applied.cluster.kubectl("create", "--dry-run=server", "-f", "-", input_text=json.dumps(pod))


def test_prods_monitors_and_alert_rules_are_served_by_the_operators_crds(applied: Applied) -> None:
    found = operator_objects(applied.cluster, applied.settings.namespace)
    monitors = sorted(m["metadata"]["name"] for m in found["ServiceMonitor"])
    assert monitors == expected_monitors(applied.settings)
    rules = [r["metadata"]["name"] for r in found["PrometheusRule"]]
    assert rules == (["venta-alerts"] if applied.stack == "prod" else [])
