"""Image references: what runs must be named exactly, and in prod pinned to its content."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from policy.model import EMPTY, Resource, container_label, containers

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ImageRef(NamedTuple):
    repository: str
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageRef:
    """Splits `registry:5000/repo/name:tag@sha256:...`; a registry port is not a tag."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        tag = last.rsplit(":", 1)[1]
        name = name[: -len(tag) - 1]
    return ImageRef(name, tag or None, digest or None)


def check_image_tag_explicit(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in containers(resource):
        image = str(c.spec.get("image") or "")
        ref = parse_image(image)
        where = f"{container_label(resource, c)}: {c.path}.image"
        if not image:
            out.append(f"{where} is unset; fix: name the image with an explicit version tag")
        elif ref.tag == "latest":
            out.append(f"{where} is '{image}' (the moving 'latest' tag); fix: use a version tag or a digest")
        elif ref.tag is None and ref.digest is None:
            out.append(
                f"{where} is '{image}' with no tag (that means 'latest'); fix: add a version tag or a digest"
            )
    return out


def check_image_pinned_by_digest(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in containers(resource):
        image = str(c.spec.get("image") or "")
        digest = parse_image(image).digest
        if digest is None or not DIGEST.match(digest):
            out.append(
                f"{container_label(resource, c)}: {c.path}.image is '{image}', not pinned by digest; "
                "fix: deploy the image as <repository>@sha256:<digest> (the build's repo digest)"
            )
    return out
