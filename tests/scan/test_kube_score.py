"""kube-score (built from its Go module by scripts/toolchain/build-kube-score.sh) over the rendered dev
and prod manifests, and prod with the monitoring objects on (the exporters): no critical finding; a
check is ignored only by an annotation on the object, with its reason beside it and in docs/policy.md."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.render import CapturedStack
from infra.render.__main__ import write
from tests.infra.helpers import manifests
from tests.policy.captured import pinned_images_config
from tests.scan.conftest import REPO, STACKS
from tests.toolchain import built_tool

POLICY_DOC = REPO / "docs" / "policy.md"
SCORED = (*STACKS, "prod-monitoring")
CRITICAL = 1  # kube-score's grades: 1 critical, 5 warning, 7 almost OK, 10 OK
IGNORED = "kube-score/ignore"
REASON = re.compile(r"^venta\.io/kube-score-skip\d+$")
DOC_ROW = re.compile(r"^\| `([a-z-]+)` \| [^|]* \| (.+?) \|$", re.MULTILINE)

# What kube-score scores (it reads ConfigMaps, Secrets and the like only to resolve references).
JUDGED_KINDS = {"Deployment", "StatefulSet", "CronJob", "Service", "NetworkPolicy", "PodDisruptionBudget"}

Scorecard = list[dict[str, Any]]


@pytest.fixture(scope="session")
def kube_score() -> Path:
    """kube-score from `KUBE_SCORE` when set, else the cached build (built on first use, about a minute)."""
    return built_tool("build-kube-score.sh", "KUBE_SCORE")


@pytest.fixture(scope="session")
def scorecards(
    kube_score: Path,
    rendered: dict[str, Path],
    prod_stack: CapturedStack,
    captured_stack: Callable[..., CapturedStack],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Scorecard]:
    folders = dict(rendered)
    monitoring = {**pinned_images_config(prod_stack), "venta:monitoring": '{"prometheusOperator": true}'}
    folders["prod-monitoring"] = tmp_path_factory.mktemp("rendered-monitoring")
    write(manifests(captured_stack("prod", monitoring)), folders["prod-monitoring"])
    cards = {}
    for stack in SCORED:
        files = sorted(folders[stack].glob("*.yaml"))
        run = subprocess.run(
            [str(kube_score), "score", "--output-format", "json", *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        # kube-score exits 1 when it finds a critical (or, by default, a warning) issue; 2+ is broken.
        assert run.returncode in (0, 1), f"kube-score {stack} exited {run.returncode}: {run.stderr[-2000:]}"
        cards[stack] = json.loads(run.stdout)
        scored = {(obj["type_meta"]["kind"], obj["object_meta"]["name"]) for obj in cards[stack]}
        judged = {(m["kind"], m["metadata"]["name"]) for m in map(yaml.safe_load, map(Path.read_text, files))}
        assert {o for o in judged if o[0] in JUDGED_KINDS} <= scored, "kube-score skipped an object"
    return cards


def where(scored: dict[str, Any]) -> str:
    meta = scored["type_meta"]
    return f"{meta['kind']} {scored['object_meta']['name']}"


@pytest.mark.scan
@pytest.mark.parametrize("stack", SCORED)
def test_no_critical_finding(scorecards: dict[str, Scorecard], stack: str) -> None:
    critical = [
        f"{where(obj)}: {check['check']['id']}: {[c['summary'] for c in check['comments'] or []]}"
        for obj in scorecards[stack]
        for check in obj["checks"]
        if check["grade"] <= CRITICAL and not check["skipped"]
    ]
    assert critical == [], "\n".join(critical)
    judged = [c for obj in scorecards[stack] for c in obj["checks"] if not c["skipped"]]
    assert len(judged) >= 5 * len(scorecards[stack])  # checks ran on every object, not a few


def documented() -> dict[str, str]:
    """The rows of docs/policy.md's "kube-score skips" table: check id -> reason."""
    section = POLICY_DOC.read_text().split("### kube-score skips", 1)[1].split("\n#", 1)[0]
    return dict(DOC_ROW.findall(section))


@pytest.mark.scan
@pytest.mark.parametrize("stack", SCORED)
def test_every_ignored_check_has_its_reason(scorecards: dict[str, Scorecard], stack: str) -> None:
    problems = []
    for obj in scorecards[stack]:
        annotations = (obj.get("object_meta") or {}).get("annotations") or {}
        ignored = [c.strip() for c in annotations.get(IGNORED, "").split(",") if c.strip()]
        reasons = dict(v.split("=", 1) for k, v in annotations.items() if REASON.match(k))
        if sorted(ignored) != sorted(reasons):
            problems.append(f"{where(obj)}: ignores {ignored} with reasons for {sorted(reasons)}")
        for check, reason in reasons.items():
            if documented().get(check) != reason:
                problems.append(f"{where(obj)}: docs/policy.md must list `{check}` with {reason!r}")
        skipped = [c["check"]["id"] for c in obj["checks"] if c["skipped"] and c["check"]["id"] in ignored]
        if sorted(set(skipped)) != sorted(ignored):
            problems.append(f"{where(obj)}: kube-score did not honour {ignored} (skipped {skipped})")
    assert problems == [], "\n".join(problems)
