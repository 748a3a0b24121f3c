"""prod's monitoring on a cluster without the Prometheus Operator's CRDs, with the real engine.

`venta up` of a prod-profile stack must stop before it creates anything, with an error that names
the setting to turn off. The session's cluster has the CRDs (tests/e2e/cluster.py): this module
deletes them for its test and installs them again afterwards, so it runs once the other cluster
suites' stacks are gone (deleting a CRD deletes every object of it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra.platform.requirements import OPERATOR_CRDS, SETTING
from tests.e2e.cluster import LocalCluster, delete_operator_crds, install_operator_crds
from tests.e2e.pulumi_cli import REPO, PulumiProject

pytestmark = pytest.mark.e2e

STACK = "prod"
NAMESPACE = "venta-no-crds"


@pytest.fixture
def cluster_without_the_crds(local_cluster: LocalCluster) -> Iterator[LocalCluster]:
    delete_operator_crds(local_cluster)
    try:
        yield local_cluster
    finally:
        install_operator_crds(local_cluster)


def test_up_without_the_operators_crds_stops_before_creating_anything_and_names_the_setting(
    cluster_without_the_crds: LocalCluster, pulumi_bin: Path, tmp_path: Path
) -> None:
    cluster = cluster_without_the_crds
    served = cluster.kubectl("get", "crd", "-o", "name")
    assert not [crd for crd in OPERATOR_CRDS if crd in served]
    project = PulumiProject.copy_of_repo(tmp_path, pulumi_bin)
    stack_file = project.root / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(stack_file.read_text())
    kube = {"kubeconfig": str(cluster.kubeconfig), "context": cluster.context}
    document["config"].update({"venta:namespace": NAMESPACE, "venta:kubernetes": kube})
    stack_file.write_text(yaml.safe_dump(document))

    run = project.run_command(
        [str(REPO / ".venv" / "bin" / "venta"), "up", STACK],
        check=False,
        label="venta up without the CRDs",
        env={"KUBECONFIG": str(cluster.kubeconfig)},
    )
    print(f"\n[venta up without the operator's CRDs]\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    assert run.returncode != 0
    assert "deploying to the cluster of kube context" in run.stdout  # not render mode
    # Pulumi's message names the missing CRD; venta's last line, the setting that turns them off.
    assert any(crd in run.stderr for crd in OPERATOR_CRDS), run.stderr[-3000:]
    assert f"--path {SETTING} false --stack {STACK}`" in run.stderr.strip().splitlines()[-1]
    # Nothing was created: no namespace, and no Kubernetes object in the stack's state.
    assert cluster.kubectl("get", "namespace", NAMESPACE, check=False) == ""
    state = project.export_state(STACK)["deployment"].get("resources") or []
    created = [
        r["urn"]
        for r in state
        if r["type"].startswith("kubernetes:")
        and not r["type"].startswith("pulumi:providers:")
        and not r.get("external")
    ]
    assert created == []
