"""The stack settings the command changes, named as `stacks.model.StackSettings` spells them.

Keys are config paths (`pulumi config set --path`): the settings are nested objects in
`Pulumi.<stack>.yaml` (`venta:images: {tag: ..., build: ...}`).
"""

import json
from collections.abc import Mapping

IMAGE_TAG = "venta:images.tag"
# true: Pulumi builds the images (needs a Docker daemon); false: it references pushed images.
IMAGE_BUILD = "venta:images.build"
# Digests pin one tag's images; a new tag makes them wrong, so deploys drop them.
IMAGE_DIGESTS = "venta:images.digests"
# Set: the kubernetes provider writes manifests there instead of talking to a cluster.
RENDER_DIR = "venta:kubernetes.renderDir"


def image_tag(config: Mapping[str, str]) -> str | None:
    """The image tag in a config snapshot from the stack's history, whichever shape it is stored in."""
    if config.get(IMAGE_TAG):
        return config[IMAGE_TAG]
    top_key, _, field = IMAGE_TAG.rpartition(".")
    raw = config.get(top_key)
    if not raw:
        return None
    try:
        images = json.loads(raw)
    except ValueError:
        return None
    tag = images.get(field) if isinstance(images, dict) else None
    return str(tag) if tag else None
