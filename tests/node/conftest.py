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

from infra.render.capture import stack_config
from stacks import load
from tests.e2e.cluster import cluster_bin
from tests.e2e.pulumi_cli import PulumiProject, toolchain_bin
from tests.images.build import BuiltImage
from tests.images.daemon import Docker
from tests.images.fixtures import unavailable
from tests.node.node import RealNode, node_bin, running_node
from tests.node.stack import STACK, NodeStack, deploy, node_image
from tests.node.stores import external_stores

REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("real node")
        for line in REPORT:
            terminalreporter.write_line(line)


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


@pytest.fixture(scope="session")
def node_stack(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeStack]:
    """The dev stack on the node, its data stores on the host (tests/node/stack.py)."""
    engine = toolchain_bin()
    if engine is None:
        unavailable("no Pulumi engine is set up: run `bash scripts/setup.sh` (see docs/e2e.md)")
    network = real_node.network
    committed = load(STACK, stack_config(STACK))
    with external_stores(network.host_ip, str(network.link), committed) as stores:
        project = PulumiProject.copy_of_repo(tmp_path_factory.mktemp("node-dev"), engine)
        stack = deploy(real_node, stores, project)
        yield stack
        # At the end, with the rollouts the tests made.
        REPORT.extend(f"{what}: {seconds:.1f} s" for what, seconds in stack.timings.items())
        for label, watch in stack.rollouts.items():
            REPORT.append(f"pods of the {label}, creation to Ready:")
            services = {name: state.service for name, state in watch.pods.items()}
            ready = watch.start_to_ready()
            for name in sorted(ready, key=services.__getitem__):
                REPORT.append(f"  {services[name]:<18} {ready[name]:5.1f} s")
