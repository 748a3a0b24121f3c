"""Evaluate a stack under Pulumi's mock runtime and turn what it registers into Kubernetes manifests."""

from infra.render.capture import CapturedResource, CapturedStack, capture_program, capture_stack
from infra.render.manifests import REDACTED, to_manifests
from infra.render.validate import validate_manifest

__all__ = [
    "REDACTED",
    "CapturedResource",
    "CapturedStack",
    "capture_program",
    "capture_stack",
    "to_manifests",
    "validate_manifest",
]
