"""The `venta` command run for real (the Automation API driving the built CLI), with no cluster.

`venta up dev` must render the manifests offline (the README's main command), and a deploy of
version A, then B, then `venta rollback` must leave the rendered Deployments on A's images again.
`venta up prod` renders its monitoring objects too, and says which CRDs a cluster needs for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.platform.requirements import OPERATOR_CRDS, SETTING
from stacks.catalog import SERVICE_NAMES as SERVICES
from tests.e2e.pulumi_cli import REPO, PulumiProject

pytestmark = pytest.mark.e2e

VERSION_A = "v1.4.0"
VERSION_B = "v1.5.0-rc.1"


@pytest.fixture(scope="module")
def project(pulumi_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulumiProject]:
    copy = PulumiProject.copy_of_repo(tmp_path_factory.mktemp("e2e-venta"), pulumi_bin)
    yield copy
    print("\n[e2e timings venta] " + ", ".join(f"{k} {v:.1f}s" for k, v in copy.timings.items()))


def venta(project: PulumiProject, *args: str, label: str) -> str:
    run = project.run_command([str(REPO / ".venv" / "bin" / "venta"), *args], label=label)
    return run.stdout


def rendered(render_dir: Path) -> list[dict[str, Any]]:
    return [d for f in sorted(render_dir.rglob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def service_images(render_dir: Path) -> dict[str, str]:
    """Deployment name -> the image of its first container, from the rendered YAML."""
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in rendered(render_dir)
        if d["kind"] == "Deployment"
    }


def test_venta_up_dev_without_a_cluster_renders_the_manifests(project: PulumiProject) -> None:
    out = venta(project, "up", "dev", label="venta up dev")
    render_dir = project.root / "rendered" / "dev"
    assert "no kube context configured" in out
    images = service_images(render_dir)
    assert set(images) >= set(SERVICES)
    # The committed dev stack references images; none is built without Docker.
    assert all(images[s].endswith(":0.1.0") for s in SERVICES), images


def test_deploy_a_then_b_then_rollback_returns_to_a_images(project: PulumiProject) -> None:
    render_dir = project.root / "rendered" / "dev"
    venta(project, "deploy", "dev", VERSION_A, label="venta deploy A")
    assert {service_images(render_dir)[s].rsplit(":", 1)[1] for s in SERVICES} == {VERSION_A}
    venta(project, "deploy", "dev", VERSION_B, label="venta deploy B")
    assert {service_images(render_dir)[s].rsplit(":", 1)[1] for s in SERVICES} == {VERSION_B}
    out = venta(project, "rollback", "dev", label="venta rollback")
    assert f"rolling dev back to {VERSION_A}" in out
    assert {service_images(render_dir)[s].rsplit(":", 1)[1] for s in SERVICES} == {VERSION_A}


def test_venta_up_prod_without_a_cluster_writes_its_monitors_and_names_the_crds_they_need(
    project: PulumiProject,
) -> None:
    out = venta(project, "up", "prod", label="venta up prod")
    assert "no kube context configured" in out
    kinds = [d["kind"] for d in rendered(project.root / "rendered" / "prod")]
    assert kinds.count("ServiceMonitor") == len(SERVICES) + 3  # and one per data-store exporter
    assert kinds.count("PrometheusRule") == 1
    # The engine repeats a program's message (progress and diagnostics): each copy names them all.
    said = [line for line in out.splitlines() if "CRDs" in line]
    assert said and all(crd in line and SETTING in line for line in said for crd in OPERATOR_CRDS), said
