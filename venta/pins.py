"""Which images a stack would run unpinned, checked before a preview whose policy requires digests.

prod's pack makes `image-pinned-by-digest` mandatory. Services are pinned by a release (`venta
deploy --digests`, committed with the stack file); the upstream images (data stores, exporters,
backup client) by an operator, once. Until every pin is there, the pack would refuse the preview
with one violation per container; this says the same in one line, naming each setting to fill,
before the engine runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RULE = "image-pinned-by-digest"


@dataclass(frozen=True)
class Unpinned:
    image: str
    workloads: tuple[str, ...]  # Kind/name of every workload running it
    setting: str  # where to pin it


def digests_required(root: Path, stack: str) -> bool:
    """Whether the stack's policy config (policy/config/<stack>.json) makes the digest rule mandatory."""
    path = root / "policy" / "config" / f"{stack}.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    level = config.get(RULE)
    level = level.get("enforcementLevel") if isinstance(level, dict) else level
    return level == "mandatory"


def unpinned_images(root: Path, stack: str) -> list[Unpinned]:
    """Every image the stack's program (under mocks) would run without a digest, with its setting;
    the settings are `root`'s stack file (the project `venta` runs on)."""
    # Imported here: evaluating the program is only needed for this check.
    import stacks
    from infra.render.capture import capture_stack, stack_config
    from policy.model import Resource, containers
    from policy.rules.images import parse_image

    captured = capture_stack(stack, root=root)
    settings = stacks.load(stack, stack_config(stack, root=root), environ={})
    service_names = {str(name) for name in settings.services}
    by_image: dict[str, list[str]] = {}
    for captured_resource in captured.resources:
        resource = Resource(captured_resource.type, captured_resource.name, captured_resource.inputs)
        for container in containers(resource):
            image = str(container.spec.get("image") or "")
            if parse_image(image).digest is None:
                by_image.setdefault(image, []).append(f"{resource.kind}/{resource.k8s_name}")
    values = dict(_flatten(settings.model_dump(by_alias=True, mode="json")))
    return [
        Unpinned(image, tuple(sorted(set(workloads))), _setting(image, workloads, values, service_names))
        for image, workloads in sorted(by_image.items())
    ]


def _setting(image: str, workloads: list[str], values: Mapping[str, Any], services: set[str]) -> str:
    """The config key to pin `image` with: a service's digest, or the setting that names the image."""
    for workload in workloads:
        name = workload.split("/", 1)[1]
        if name in services:
            return f'venta:images.digests["{name}"] (venta deploy --digests)'
    # One image may be named by several settings (the main and the cache Redis): each needs its pin.
    keys = sorted(key for key, value in values.items() if value == image)
    return ", ".join(f"venta:{key}" for key in keys) if keys else "the image's setting"


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def one_line(stack: str, unpinned: list[Unpinned]) -> str:
    """The single line a preview stops with: every missing pin and where it goes."""
    pins = "; ".join(f"{u.image} ({', '.join(u.workloads)}) -> {u.setting}" for u in unpinned)
    return (
        f"venta: {stack} needs every image pinned by digest ({RULE} is mandatory in "
        f"policy/config/{stack}.json); missing {len(unpinned)}: {pins}"
    )
