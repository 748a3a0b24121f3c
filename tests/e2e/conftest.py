"""Fixtures of the end-to-end tests that run the real Pulumi engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

from tests.e2e.pulumi_cli import toolchain_bin


def not_built(reason: str) -> NoReturn:
    """Skip a test whose toolchain is absent; fail instead when VENTA_E2E=required (CI that built it)."""
    if os.environ.get("VENTA_E2E") == "required":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pulumi_bin() -> Path:
    """The folder holding the built `pulumi` and its plugins."""
    found = toolchain_bin()
    if found is None:
        not_built("the Pulumi toolchain is not built: run `bash tests/e2e/toolchain.sh` (see docs/e2e.md)")
    return found
