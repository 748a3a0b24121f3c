"""Where service images come from: built from services/Dockerfile, or referenced as already pushed."""

from __future__ import annotations

from pathlib import Path

from stacks.model import Images

REPO_ROOT = Path(__file__).resolve().parents[2]
# Relative to the project root, where Pulumi runs the program; absolute paths would differ per machine.
BUILD_CONTEXT = "."
DOCKERFILE = "services/Dockerfile"


def image_name(images: Images, service: str) -> str:
    """`<registry>/<service>:<tag>`: what a build pushes, and what a reference points at."""
    return f"{images.registry}/{service}:{images.tag}"


def reference(images: Images, service: str) -> str:
    """A prebuilt image, pinned by digest when the stack names one for this service."""
    digest = images.digests.get(service)
    return f"{image_name(images, service)}@{digest}" if digest else image_name(images, service)


def version(images: Images) -> str:
    return images.tag
