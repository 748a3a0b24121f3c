"""Fixtures for the observability tests: Prometheus' own promtool, built from its Go module."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "toolchain" / "build-promtool.sh"


@pytest.fixture(scope="session")
def promtool() -> Path:
    """promtool from `PROMTOOL` when set, else the cached build (built on first use, several minutes)."""
    override = os.environ.get("PROMTOOL")
    if override:
        return Path(override)
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"building promtool failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])
