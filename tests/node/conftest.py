"""Session fixtures of the real-node tests: a control plane with one real node (tests/node/node.py)
running the service images that tests/images/fixtures.py builds.

It needs root (network namespaces, mounts, cgroups), the control plane and the node binaries
(scripts/toolchain/build-cluster.sh, build-node.sh) and Docker; without them the tests skip, or fail
when ``VENTA_E2E=required`` (the test command's default). What it measured is printed at the end of
the run under "real node".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import cluster_bin
from tests.images.build import BuiltImage
from tests.images.daemon import Docker
from tests.images.fixtures import unavailable
from tests.node.node import RealNode, node_bin, running_node

REPORT: list[str] = []
# Where the node's containerd holds the service images: what the deployed stack references.
REGISTRY = "venta.local/venta"
TAG = "node"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("real node")
        for line in REPORT:
            terminalreporter.write_line(line)


def node_image(service: str) -> str:
    return f"{REGISTRY}/{service}:{TAG}"


@pytest.fixture(scope="session")
def real_node(docker: Docker, service_images: dict[str, BuiltImage]) -> Iterator[RealNode]:
    control_plane, node_binaries = cluster_bin(), node_bin()
    if control_plane is None or node_binaries is None:
        unavailable(
            "the control plane or the node is not built: run `bash scripts/toolchain/build-cluster.sh` "
            "and `bash scripts/toolchain/build-node.sh` (see docs/e2e.md)"
        )
    if os.geteuid() != 0:
        unavailable("a real node needs root (network namespaces, mounts, cgroups)")
    images = {node_image(service): built.reference for service, built in service_images.items()}
    with running_node(control_plane, node_binaries, docker, images) as node:
        REPORT.extend(f"{what}: {seconds:.1f} s" for what, seconds in node.timings.items())
        REPORT.append(f"images imported into containerd: {len(node.imported)} of {len(images) + 2}")
        yield node
