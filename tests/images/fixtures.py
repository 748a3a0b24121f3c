"""Docker and the service images as session fixtures, for every suite that runs them (tests/images,
tests/node): a Docker daemon, the base image, and the eight service images built from
services/Dockerfile. Registered for the whole test tree in tests/conftest.py, so one daemon and one
build serve every suite of a run.

Without Docker the tests skip, or fail when ``VENTA_E2E=required`` (the test command's default).
What they used and measured (base, sizes, build times) is printed at the end of the run under
"service images".
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from services.catalog import SERVICES
from tests.images.base import BaseImage, python_base
from tests.images.build import BuiltImage, build_image
from tests.images.containers import LABEL
from tests.images.daemon import Docker, DockerUnavailable, docker_daemon

REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("service images")
        for line in REPORT:
            terminalreporter.write_line(line)


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    REPORT.append(f"{what}: {time.monotonic() - began:.1f} s")


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("VENTA_E2E") == "required":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    with contextlib.ExitStack() as stack:
        try:
            with timed("Docker daemon ready"):
                daemon = stack.enter_context(docker_daemon())
        except DockerUnavailable as exc:
            unavailable(str(exc))
        REPORT.append(f"Docker daemon: {'started by the tests' if daemon.started_here else daemon.host}")
        if daemon.started_here:  # what an interrupted run of ours left behind, on our own daemon only
            daemon("container", "prune", "--force", "--filter", f"label={LABEL}", check=False)
            daemon("network", "prune", "--force", "--filter", f"label={LABEL}", check=False)
        yield daemon


@pytest.fixture(scope="session")
def base_image(docker: Docker) -> BaseImage:
    with timed("base image ready"):
        base = python_base(docker)
    REPORT.append(f"base image: {base.describe()}")
    return base


@pytest.fixture(scope="session")
def service_images(docker: Docker, base_image: BaseImage) -> dict[str, BuiltImage]:
    with timed("eight images built"):
        images = {service: build_image(docker, base_image, service) for service in SERVICES}
    for image in images.values():
        REPORT.append(
            f"  {image.service:<18} {image.size_bytes / 1e6:6.0f} MB  built in {image.build_s:5.1f} s"
        )
    return images
