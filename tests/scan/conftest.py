"""The manifests the scanners read: `python -m infra.render` for dev, and for prod as a release pins
it (every service image by digest). Rendered once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.render.capture import CapturedStack
from tests.policy.captured import pinned_images_config

REPO = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")


def render_all(base: Path, overrides: dict[str, dict[str, str]]) -> dict[str, Path]:
    """Renders every stack at once (separate processes): each file is one object."""
    runs = {}
    for stack in STACKS:
        sets = [arg for key, value in overrides[stack].items() for arg in ("--set", f"{key}={value}")]
        command = [sys.executable, "-m", "infra.render", stack, "--out", str(base / stack), *sets]
        runs[stack] = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    for stack, run in runs.items():
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, f"python -m infra.render {stack} failed:\n{output}"
        assert list((base / stack).glob("*.yaml")), f"render {stack} wrote nothing"
    return {stack: base / stack for stack in STACKS}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory, prod_stack: CapturedStack) -> dict[str, Path]:
    overrides = {"dev": {}, "prod": pinned_images_config(prod_stack)}
    return render_all(tmp_path_factory.mktemp("rendered"), overrides)
