"""The manifests the scanners read: dev, and prod as a release pins it (every image by digest), written
once per session from the session's captures, one file per object as `python -m infra.render` does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.render.__main__ import write
from infra.render.capture import CapturedStack
from tests.infra.helpers import manifests
from tests.policy.captured import pinned_images_config

REPO = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def scanned(
    dev_stack: CapturedStack, prod_stack: CapturedStack, captured_stack: Callable[..., CapturedStack]
) -> dict[str, CapturedStack]:
    return {"dev": dev_stack, "prod": captured_stack("prod", pinned_images_config(prod_stack))}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory, scanned: dict[str, CapturedStack]) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("rendered")
    for stack, captured in scanned.items():
        write(manifests(captured), base / stack)
    return {stack: base / stack for stack in STACKS}
