"""Where service images come from: built from services/Dockerfile, or referenced as already pushed."""

from __future__ import annotations

from stacks.model import Images

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


def tag_of(image: str) -> str:
    """`postgres:16.4@sha256:...` -> `16.4`; `localhost:5000/x:1` -> `1` (a registry port is no tag)."""
    name = image.split("@", 1)[0]
    return name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
