"""dev and prod through the real engine: preview, up in render mode, no drift, policy pack, destroy.

One project copy per stack; the tests of a stack run in file order against it (pytest groups a
module-scoped parametrized fixture by its parameter), and the last one destroys the stack.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.render import validate_manifest
from infra.render.capture import CapturedStack, capture_stack
from infra.render.manifests import is_kubernetes_object, to_manifest
from policy.pack import PACK_NAME
from stacks.catalog import SERVICE_NAMES
from tests.e2e.pulumi_cli import REPO, PulumiProject, Run, planned_steps, urn_type_and_name
from tests.policy.captured import DATA_STORE_IMAGES, EXPORTER_IMAGES

pytestmark = pytest.mark.e2e

STACKS = ["dev", "prod"]
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


@dataclass
class StackRun:
    stack: str
    project: PulumiProject
    render_dir: Path
    captured: CapturedStack  # the same program under mocks, with the same config
    preview: Run
    up: Run


@pytest.fixture(scope="module", params=STACKS)
def stack_run(
    request: pytest.FixtureRequest, pulumi_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackRun]:
    stack: str = request.param
    project = PulumiProject.copy_of_repo(tmp_path_factory.mktemp(f"e2e-{stack}"), pulumi_bin)
    render_dir = project.root.parent / "rendered"
    overrides = {"venta:kubernetes": {"renderDir": str(render_dir)}, **released_images(stack)}
    stack_file = project.root / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"].update(overrides)
    stack_file.write_text(yaml.safe_dump(document))
    project.run("stack", "select", "--create", stack)
    preview = project.preview(stack, label="preview")
    up = project.run("up", "--stack", stack, "--yes", "--skip-preview", label="up")
    captured = capture_stack(stack, {k: json.dumps(v) for k, v in overrides.items()})
    yield StackRun(stack, project, render_dir, captured, preview, up)
    print(f"\n[e2e timings {stack}] " + ", ".join(f"{k} {v:.1f}s" for k, v in project.timings.items()))


def released_images(stack: str) -> dict[str, Any]:
    """prod as `venta deploy` leaves it: every image pinned by digest, which prod's policy requires.

    The committed Pulumi.prod.yaml pins none (a deploy adds the services' digests, an operator the
    upstream images'), so the digests here are fixed stand-ins: render mode pulls nothing.
    """
    if stack != "prod":
        return {}
    committed = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"]
    digest = "sha256:" + "ab" * 32
    return {
        "venta:images": {**committed["venta:images"], "digests": dict.fromkeys(SERVICE_NAMES, digest)},
        **{f"venta:{name}": {"image": f"{image}@{digest}"} for name, image in DATA_STORE_IMAGES.items()},
        # The exporters of prod's monitoring: upstream images too.
        "venta:monitoring": {
            "exporters": {key: f"{image}@{digest}" for key, image in EXPORTER_IMAGES.items()}
        },
    }


def policy_args(config: str) -> list[str]:
    return ["--policy-pack", "policy", "--policy-pack-config", f"policy/config/{config}.json"]


def rendered_manifests(render_dir: Path) -> list[dict[str, Any]]:
    files = sorted(render_dir.rglob("*.yaml"))
    return [doc for f in files for doc in yaml.safe_load_all(f.read_text()) if doc]


def identity(manifest: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = manifest.get("metadata", {})
    return manifest["apiVersion"], manifest["kind"], meta.get("namespace", ""), meta["name"]


def logical_names(state: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], tuple[str, str]]:
    """Each object the engine rendered, by identity -> its (type, logical name) from the state.

    ConfigMaps and Secrets are auto-named: the engine and the mocks give them different random
    suffixes, so the two renders can only be paired by the names the program gave them."""
    found = {}
    for resource in state:
        outputs = resource.get("outputs") or {}
        meta = outputs.get("metadata")
        if resource["type"].startswith("kubernetes:") and isinstance(meta, dict) and "kind" in outputs:
            key = (outputs["apiVersion"], outputs["kind"], meta.get("namespace", ""), meta["name"])
            found[key] = urn_type_and_name(resource["urn"])
    return found


def key_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """What must agree between the engine's render and the mocked one (secret values aside)."""
    spec = manifest.get("spec", {})
    template = spec.get("template", {}).get("spec", {}) or spec.get("jobTemplate", {}).get("spec", {}).get(
        "template", {}
    ).get("spec", {})
    containers = template.get("containers", [])
    return {
        "labels": manifest.get("metadata", {}).get("labels"),
        "replicas": spec.get("replicas"),
        "images": [c.get("image") for c in containers],
        "ports": spec.get("ports") if manifest["kind"] == "Service" else [c.get("ports") for c in containers],
        "env_names": [[e["name"] for e in c.get("env", [])] for c in containers],
        "data_keys": sorted({**manifest.get("data", {}), **manifest.get("stringData", {})}),
        "selector": spec.get("selector"),
        "hpa": (spec.get("minReplicas"), spec.get("maxReplicas")),
    }


def secret_values(render_dir: Path) -> str:
    """Every value of the rendered Secrets, base64 `data` decoded, as one searchable text."""
    values: list[str] = []
    for manifest in rendered_manifests(render_dir):
        if manifest["kind"] == "Secret":
            values += [base64.b64decode(v).decode() for v in (manifest.get("data") or {}).values()]
            values += list((manifest.get("stringData") or {}).values())
    return "\n".join(values)


def plaintext(value: Any) -> str:
    """A secret in `stack export --show-secrets` is an envelope whose `plaintext` holds the JSON value."""
    if isinstance(value, dict) and "plaintext" in value:
        decoded: str = json.loads(value["plaintext"])
        return decoded
    assert isinstance(value, str)
    return value


def test_preview_plans_every_resource_of_the_program(stack_run: StackRun) -> None:
    planned = Counter(urn_type_and_name(s["urn"]) for s in planned_steps(stack_run.preview))
    declared = Counter(
        (r.type, r.name) for r in stack_run.captured.resources if not r.type.startswith("pulumi:providers:")
    )
    assert planned == declared
    assert {s["op"] for s in planned_steps(stack_run.preview)} == {"create"}
    kinds = {t for t, _ in planned}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", RANDOM_PASSWORD} <= kinds


def test_up_renders_manifests_valid_for_kubernetes_1_31(stack_run: StackRun) -> None:
    manifests = rendered_manifests(stack_run.render_dir)
    assert manifests, f"nothing rendered into {stack_run.render_dir}"
    errors = {f"{m['kind']}/{m['metadata']['name']}": validate_manifest(m) for m in manifests}
    assert {k: v for k, v in errors.items() if v} == {}


def test_rendered_objects_match_the_mocked_render(stack_run: StackRun) -> None:
    state = stack_run.project.export_state(stack_run.stack)["deployment"]["resources"]
    names = logical_names(state)
    rendered = rendered_manifests(stack_run.render_dir)
    unknown = [identity(m) for m in rendered if identity(m) not in names]
    assert unknown == [], "rendered objects the state does not hold"
    engine = {names[identity(m)]: m for m in rendered}
    mocked = {
        (r.type, r.name): to_manifest(r) for r in stack_run.captured.resources if is_kubernetes_object(r)
    }
    assert len(mocked) > 20, "the mocked render must not be empty for this comparison to mean anything"
    assert sorted(engine) == sorted(mocked)
    pairs = {k: (key_fields(engine[k]), key_fields(mocked[k])) for k in engine}
    differing = {k: pair for k, pair in pairs.items() if pair[0] != pair[1]}
    assert differing == {}


def test_second_preview_shows_no_changes(stack_run: StackRun) -> None:
    # --expect-no-changes makes the CLI itself fail on any planned change; the summary says why not.
    again = stack_run.project.preview(stack_run.stack, "--expect-no-changes", label="preview-again")
    summary = again.json()["changeSummary"]
    assert set(summary) == {"same"}, summary
    assert summary["same"] == sum(stack_run.preview.json()["changeSummary"].values())


def test_generated_passwords_are_encrypted_in_state_and_absent_from_outputs(stack_run: StackRun) -> None:
    project, stack = stack_run.project, stack_run.stack
    decrypted = project.export_state(stack, show_secrets=True)["deployment"]["resources"]
    passwords = [plaintext(r["outputs"]["result"]) for r in decrypted if r["type"] == RANDOM_PASSWORD]
    assert passwords and all(len(p) >= 16 for p in passwords)
    # Render mode writes the Secrets out readable, so the values are findable: the search below is real.
    assert any(p in secret_values(stack_run.render_dir) for p in passwords)
    state_text = project.state_file(stack).read_text()
    outputs = project.run("stack", "output", "--stack", stack, "--json", "--show-secrets").stdout
    leaked = [p for p in passwords if p in state_text or p in outputs]
    assert leaked == []


def test_policy_pack_passes(stack_run: StackRun) -> None:
    project, stack = stack_run.project, stack_run.stack
    run = project.run("preview", "--stack", stack, *policy_args(stack), label="preview-policy")
    # The engine's summary line for a pack that loaded and ran: a tick, or a warning sign when only
    # advisory rules reported (dev keeps digest pinning advisory).
    assert re.search(rf"(✅|⚠️) {PACK_NAME}@v", run.stdout), run.stdout[-3000:]
    assert "[mandatory]" not in run.stdout


def test_the_stacks_pack_config_decides_whether_a_broken_rule_stops_the_preview(stack_run: StackRun) -> None:
    """Prod-sized pods left unspread: prod's pack config stops the preview, dev's only warns."""
    project, stack = stack_run.project, stack_run.stack
    bad = f"{stack}-unspread"
    (project.root / f"Pulumi.{bad}.yaml").write_text((project.root / "Pulumi.prod.yaml").read_text())
    project.run("stack", "init", bad)
    project.set_config(bad, "venta:profile", "prod")
    project.set_config(bad, "venta:spreadAcrossNodes", "false")
    # Offline like the stacks above: with no cluster to ask for the operator's CRDs, render mode.
    project.set_config(bad, "venta:kubernetes.renderDir", str(project.root.parent / f"rendered-{bad}"))
    run = project.run("preview", "--stack", bad, *policy_args(stack), check=False)
    if stack == "prod":
        assert run.returncode != 0
        assert re.search(r"\[mandatory\]\s+spread-across-nodes", run.stdout), run.stdout[-3000:]
    else:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert re.search(r"\[advisory\]\s+spread-across-nodes", run.stdout), run.stdout[-3000:]


def test_destroy_removes_everything(stack_run: StackRun) -> None:
    project, stack = stack_run.project, stack_run.stack
    project.run("destroy", "--stack", stack, "--yes", "--skip-preview", label="destroy")
    resources = project.export_state(stack)["deployment"].get("resources") or []
    assert resources == []
    assert rendered_manifests(stack_run.render_dir) == []
