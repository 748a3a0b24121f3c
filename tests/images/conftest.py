"""Session fixtures of the image tests."""

from __future__ import annotations

import dataclasses

import pytest

from infra.render.capture import CapturedStack
from infra.render.manifests import is_kubernetes_object, to_manifest
from tests.images.pods import Manifest
from tests.policy.captured import unwrap_secrets


@pytest.fixture(scope="session")
def stack_manifests(dev_stack: CapturedStack) -> list[Manifest]:
    """The dev stack's Kubernetes objects, secrets in the clear (what the cluster would hold)."""
    return [
        to_manifest(dataclasses.replace(r, inputs=unwrap_secrets(r.inputs)))
        for r in dev_stack.resources
        if is_kubernetes_object(r)
    ]
