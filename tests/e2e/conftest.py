"""Fixtures of the end-to-end tests that run the real Pulumi engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.e2e.cluster import LocalCluster, cluster_bin, running_cluster
from tests.e2e.pulumi_cli import toolchain_bin


def not_built(reason: str) -> NoReturn:
    """Fail a test whose toolchain is absent when VENTA_E2E=required (scripts/test.sh's default);
    a bare pytest run skips it, and the test command's report check still fails a skipped e2e test."""
    if os.environ.get("VENTA_E2E") == "required":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pulumi_bin() -> Path:
    """The folder holding the built `pulumi` and its plugins."""
    found = toolchain_bin()
    if found is None:
        not_built("no Pulumi engine is set up: run `bash scripts/setup.sh` (see docs/e2e.md)")
    return found


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    """A Kubernetes control plane with simulated nodes on loopback (tests/e2e/cluster.py)."""
    bin_dir = cluster_bin()
    if bin_dir is None:
        not_built(
            "the control plane is not built: run `bash scripts/toolchain/build-cluster.sh` (see docs/e2e.md)"
        )
    with running_cluster(bin_dir) as cluster:
        yield cluster
