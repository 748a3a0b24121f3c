"""Fixtures for the observability tests: Prometheus' own promtool, built from its Go module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.toolchain import built_tool


@pytest.fixture(scope="session")
def promtool() -> Path:
    """promtool from `PROMTOOL` when set, else the cached build (built on first use, several minutes)."""
    return built_tool("build-promtool.sh", "PROMTOOL")
