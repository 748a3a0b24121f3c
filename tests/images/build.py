"""The eight service images, built from services/Dockerfile exactly as the README says to."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tests.images.base import DOCKERFILE, BaseImage
from tests.images.daemon import Docker

REPO = Path(__file__).resolve().parents[2]
REPOSITORY = "venta-image-test"


@dataclass(frozen=True)
class BuiltImage:
    service: str
    reference: str
    size_bytes: int
    build_s: float


def build_image(docker: Docker, base: BaseImage, service: str) -> BuiltImage:
    reference = f"{REPOSITORY}/{service}:latest"
    began = time.monotonic()
    # The build's RUN steps use the host's network: the daemon started by the tests has no bridge
    # with a route out, and pip inside the build must reach the package index.
    docker(
        "build",
        "--quiet",
        "--network=host",
        "--file",
        str(DOCKERFILE),
        "--build-arg",
        f"PYTHON_IMAGE={base.reference}",
        "--build-arg",
        f"SERVICE={service}",
        "--tag",
        reference,
        str(REPO),
        timeout=1800,
    )
    took = time.monotonic() - began
    size = int(docker.inspect(reference, kind="image")[0]["Size"])
    return BuiltImage(service, reference, size, took)
