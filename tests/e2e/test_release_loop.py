"""The release loop as a team runs it, through the workflows' own entry points, on a real control plane.

Per stack, in order, each step a `venta` command the workflows call (deploy.yml, preview.yml,
drift.yml): deploy version A with its digests -> a pull request that changes nothing previews as no
change and passes the stack's policy pack -> a one-setting change previews as exactly that change
-> the drift check is clean -> objects changed behind Pulumi's back (a StatefulSet's replicas, a
ConfigMap value, a deleted NetworkPolicy) -> the drift check fails and names each -> deploy B ->
rollback to A runs A's images and the drift check is clean again.

The project copy's stack file plays main's: `venta deploy` writes the release's tag and digests
into it, as the deploy job does before it commits them (scripts/ci/record-release.sh). The
upstream images have no digests here (no registry), so the copy pins stand-ins, as an operator
pins the real ones once.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic.alias_generators import to_snake

from infra.render.capture import stack_config
from stacks import load
from stacks.catalog import SERVICE_NAMES
from stacks.model import StackSettings
from tests.e2e.cluster import LocalCluster, minimum_pods, wait_until_rolled_out
from tests.e2e.pulumi_cli import REPO, PulumiProject, Run
from tests.policy.captured import DATA_STORE_IMAGES, EXPORTER_IMAGES

pytestmark = pytest.mark.e2e

VERSION_A, VERSION_B = "v2.0.0", "v2.1.0"
CHANGED_SERVICE = "user-management"
# The upstream images an operator pins once, pinned here with stand-in digests: the data stores' and
# the exporters' of the monitoring prod deploys (config path -> attribute of the settings).
UPSTREAM_PINS = {
    **{f"{store}.image": f"{to_snake(store)}.image" for store in DATA_STORE_IMAGES},
    **{f"monitoring.exporters.{key}": f"monitoring.exporters.{to_snake(key)}" for key in EXPORTER_IMAGES},
}


def digests(fill: str) -> dict[str, str]:
    return {service: "sha256:" + fill * 64 for service in SERVICE_NAMES}


@dataclass
class Loop:
    stack: str
    project: PulumiProject
    cluster: LocalCluster
    settings: StackSettings
    folder: Path

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def venta(self, *args: str, label: str, check: bool = True) -> Run:
        """A `venta` run as a workflow step makes it, with the cluster as the current kube context."""
        command = [str(REPO / ".venv" / "bin" / "venta"), *args]
        env = {"KUBECONFIG": str(self.cluster.kubeconfig)}
        return self.project.run_command(command, check=check, label=label, env=env)

    def deploy(self, version: str, fill: str) -> None:
        path = self.folder / f"digests-{version}.json"
        path.write_text(json.dumps(digests(fill)))
        self.venta(
            "deploy", self.stack, version, "--policy", "--digests", str(path), label=f"deploy {version}"
        )
        wait_until_rolled_out(self.cluster, self.namespace, minimum_pods(self.settings))

    def service_images(self) -> set[str]:
        pods = self.cluster.get_json("pods", "-n", self.namespace)["items"]
        return {
            container["image"]
            for pod in pods
            if pod["metadata"].get("labels", {}).get("app.kubernetes.io/name") in SERVICE_NAMES
            and "deletionTimestamp" not in pod["metadata"]
            for container in pod["spec"]["containers"]
        }

    def one_of(self, kind: str, service: str) -> dict[str, Any]:
        """The object of `kind` labelled for `service` (names may carry the engine's suffix)."""
        selector = f"app.kubernetes.io/name={service}"
        items: list[dict[str, Any]] = self.cluster.get_json(kind, "-n", self.namespace, "-l", selector)[
            "items"
        ]
        assert len(items) == 1, [i["metadata"]["name"] for i in items]
        return items[0]


@pytest.fixture(scope="module", params=["dev", "prod"])
def loop(
    request: pytest.FixtureRequest,
    pulumi_bin: Path,
    local_cluster: LocalCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Loop]:
    stack: str = request.param
    folder = tmp_path_factory.mktemp(f"loop-{stack}")
    project = PulumiProject.copy_of_repo(folder, pulumi_bin)
    project.run("stack", "select", "--create", stack)
    kube = {"kubeconfig": str(local_cluster.kubeconfig), "context": local_cluster.context}
    # The stack's own namespace: the policy config's exceptions name objects by namespace (the
    # other e2e modules destroyed their stacks there before this one starts).
    for key, value in kube.items():
        project.set_config(stack, f"venta:kubernetes.{key}", value)
    base = load(stack, stack_config(stack))
    for path, attribute in UPSTREAM_PINS.items():
        image = functools.reduce(getattr, attribute.split("."), base)
        project.set_config(stack, f"venta:{path}", f"{image}@sha256:{'e' * 64}")
    settings = load(stack, stack_config(stack, {"venta:kubernetes": json.dumps(kube)}))
    yield Loop(stack, project, local_cluster, settings, folder)
    project.run("destroy", "--stack", stack, "--yes", "--skip-preview", label="destroy")
    print(f"\n[e2e release loop {stack}] " + ", ".join(f"{k} {v:.1f}s" for k, v in project.timings.items()))


def test_version_a_deploys_with_its_digests(loop: Loop) -> None:
    loop.deploy(VERSION_A, "a")
    assert loop.service_images() == {
        f"{loop.settings.images.registry}/{s}:{VERSION_A}@sha256:{'a' * 64}" for s in SERVICE_NAMES
    }


def test_an_unchanged_pull_request_previews_as_no_change_and_passes_the_pack(loop: Loop) -> None:
    summary = loop.folder / "unchanged.md"
    run = loop.venta("preview", loop.stack, "--policy", "--summary", str(summary), label="preview unchanged")
    # Nothing but reads (prod's monitors read the operator's CRDs first) and unchanged resources.
    counts = next(line for line in run.stdout.splitlines() if line.startswith("preview: resources:"))
    steps = {part.rsplit(" ", 1)[0] for part in counts.removeprefix("preview: resources: ").split(", ")}
    assert steps <= {"same", "read"} and "policy: passed" in run.stdout, run.stdout[-3000:]
    assert "No resource would change." in summary.read_text()
    print(f"\n[PR preview, unchanged, {loop.stack}]\n{summary.read_text()}")


def test_a_one_setting_change_previews_as_exactly_that_change(loop: Loop) -> None:
    key = f'venta:services["{CHANGED_SERVICE}"].logLevel'
    current = loop.settings.services[CHANGED_SERVICE].log_level
    loop.project.set_config(loop.stack, key, "ERROR" if current != "ERROR" else "INFO")
    summary = loop.folder / "one-setting.md"
    loop.venta("preview", loop.stack, "--policy", "--summary", str(summary), label="preview one setting")
    markdown = summary.read_text()
    # The summary's change table: | op | kind | `name` | properties |
    changed = [
        row.split("|")[3].strip(" `") for row in markdown.splitlines() if row.startswith("| ") and "`" in row
    ]
    assert changed, markdown
    assert all(CHANGED_SERVICE in name for name in changed), markdown
    print(f"\n[PR preview, one setting, {loop.stack}]\n{markdown}")
    # The pull request is not merged: main's stack file stays as the release left it.
    if current is None:
        loop.project.run("config", "rm", "--stack", loop.stack, "--path", key)
    else:
        loop.project.set_config(loop.stack, key, current)


def test_the_drift_check_is_clean_after_a_deploy(loop: Loop) -> None:
    run = loop.venta("drift", loop.stack, label="drift clean")
    assert f"drift: none; {loop.stack} is what the program declares" in run.stdout, run.stdout[-3000:]


def test_changes_behind_pulumis_back_fail_the_drift_check_and_are_named(loop: Loop) -> None:
    cluster, ns = loop.cluster, loop.namespace
    cluster.kubectl("scale", "statefulset", "redis", "-n", ns, "--replicas=2")
    config_map = loop.one_of("configmaps", CHANGED_SERVICE)["metadata"]["name"]
    cluster.kubectl(
        "patch", "configmap", config_map, "-n", ns, "--type=merge", "-p", '{"data": {"LOG_LEVEL": "TRACE"}}'
    )
    policy = loop.one_of("networkpolicies", "geolocation")["metadata"]["name"]
    cluster.kubectl("delete", "networkpolicy", policy, "-n", ns)
    time.sleep(1)
    report = loop.folder / "drift.md"
    run = loop.venta("drift", loop.stack, "--report", str(report), label="drift found", check=False)
    assert run.returncode == 1, run.stdout[-3000:]
    drift = run.stdout.split("drift:", 1)[-1]  # venta's own report, after the engine's output
    lines = drift.splitlines()
    assert any("StatefulSet" in line and "redis" in line for line in lines), drift
    assert "spec.replicas" in drift, drift
    assert any("ConfigMap" in line and CHANGED_SERVICE in line for line in lines), drift
    assert any(line.strip().startswith("create NetworkPolicy") and "geolocation" in line for line in lines), (
        drift
    )
    print(f"\n[drift report, {loop.stack}]\n{report.read_text()}")


def test_deploy_b_then_rollback_returns_to_a_and_the_drift_check_is_clean_again(loop: Loop) -> None:
    loop.deploy(VERSION_B, "b")
    assert all(image.endswith(f":{VERSION_B}@sha256:{'b' * 64}") for image in loop.service_images())
    run = loop.venta("rollback", loop.stack, "--policy", label="rollback to A")
    assert f"rolling {loop.stack} back to {VERSION_A}" in run.stdout
    wait_until_rolled_out(loop.cluster, loop.namespace, minimum_pods(loop.settings))
    deadline = time.monotonic() + 120
    while not all(image.endswith(f":{VERSION_A}@sha256:{'a' * 64}") for image in loop.service_images()):
        assert time.monotonic() < deadline, loop.service_images()
        time.sleep(1)
    run = loop.venta("drift", loop.stack, label="drift after rollback")
    assert "drift: none" in run.stdout, run.stdout[-3000:]
