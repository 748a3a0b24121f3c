"""The stack settings the command changes, named as `stacks.model.StackSettings` spells them.

Keys are config paths (`pulumi config set --path`): the settings are nested objects in
`Pulumi.<stack>.yaml` (`venta:images: {tag: ..., build: ...}`).
"""

import json
from collections.abc import Mapping

IMAGE_TAG = "venta:images.tag"
# true: Pulumi builds the images (needs a Docker daemon); false: it references pushed images.
IMAGE_BUILD = "venta:images.build"
# Digests pin one tag's images: a deploy sets them with the tag (`--digests`), a new tag without
# them drops the old ones (they would pin the wrong images), and a rollback restores its version's.
IMAGE_DIGESTS = "venta:images.digests"
# Set: the kubernetes provider writes manifests there instead of talking to a cluster.
RENDER_DIR = "venta:kubernetes.renderDir"


def digest_key(service: str) -> str:
    """The config path of one service's digest; quoted because service names hold '-'."""
    return f'{IMAGE_DIGESTS}["{service}"]'


def image_tag(config: Mapping[str, str]) -> str | None:
    """The image tag in a config snapshot from the stack's history, whichever shape it is stored in."""
    tag = config.get(IMAGE_TAG) or _images_field(config, "tag")
    return str(tag) if tag else None


def image_digests(config: Mapping[str, str]) -> dict[str, str]:
    """The per-service digests in a config snapshot from the stack's history ({} when it has none)."""
    digests = _images_field(config, "digests")
    if not isinstance(digests, dict):
        return {}
    return {str(service): str(digest) for service, digest in digests.items() if digest}


def _images_field(config: Mapping[str, str], field: str) -> object:
    """One field of `venta:images`, which a snapshot stores as one JSON object (Pulumi's shape)."""
    raw = config.get(IMAGE_TAG.rpartition(".")[0])
    if not raw:
        return None
    try:
        images = json.loads(raw)
    except ValueError:
        return None
    return images.get(field) if isinstance(images, dict) else None
