"""The captured stacks as the policy engine would see them, and prod as a deploy pins it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from infra.render.capture import SECRET_SIG, CapturedStack
from policy.model import Resource
from stacks.catalog import SERVICE_NAMES
from stacks.model import Exporters, Nats, Postgres, Redis, RedisCache

# The data-store images each stack runs unless its config says otherwise.
DATA_STORE_IMAGES = {
    "postgres": Postgres.model_fields["image"].default,
    "redis": Redis.model_fields["image"].default,
    "redisCache": RedisCache.model_fields["image"].default,
    "nats": Nats.model_fields["image"].default,
}
# The exporters' images (venta:monitoring.exporters.<key>Image), upstream images pinned like the stores'.
EXPORTER_IMAGES = {
    str(field.alias): str(field.default)
    for name, field in Exporters.model_fields.items()
    if name.endswith("_image")
}


def unwrap_secrets(value: Any) -> Any:
    """The engine hands policies secret values in the clear; the mocks keep them wrapped."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return unwrap_secrets(value.get("value"))
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def policy_resources(captured: CapturedStack) -> list[Resource]:
    """Every resource a provider creates (components are not judged), in registration-free order."""
    return [
        Resource(r.type, r.name, unwrap_secrets(r.inputs), r.urn, tuple(r.options.get("ignoreChanges", ())))
        for r in captured.resources
        if r.custom
    ]


def fake_digest(service: str) -> str:
    return "sha256:" + hashlib.sha256(f"venta/{service}".encode()).hexdigest()


def pinned_images_config(captured: CapturedStack) -> dict[str, str]:
    """Config overrides that pin every image by digest, as a prod release sets them: the services'
    digests in `venta:images`, each data store's `image` and each exporter's image
    (`venta:monitoring.exporters`) as `<tag>@sha256:...`."""
    images = json.loads(captured.config["venta:images"])
    images["digests"] = {service: fake_digest(service) for service in SERVICE_NAMES}
    pinned = {"venta:images": json.dumps(images)}
    for store, image in DATA_STORE_IMAGES.items():
        key = f"venta:{store}"
        settings = json.loads(captured.config.get(key, "{}"))  # keep what the stack file sets
        image = settings.get("image", image)
        pinned[key] = json.dumps({**settings, "image": f"{image}@{fake_digest(image)}"})
    monitoring = json.loads(captured.config.get("venta:monitoring", "{}"))
    exporters = monitoring.get("exporters", {})
    for key, image in EXPORTER_IMAGES.items():
        image = exporters.get(key, image)
        exporters[key] = image if "@sha256:" in image else f"{image}@{fake_digest(image)}"
    pinned["venta:monitoring"] = json.dumps({**monitoring, "exporters": exporters})
    return pinned
