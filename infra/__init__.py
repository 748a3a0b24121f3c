"""The component library: everything that becomes a Kubernetes object."""

from infra.platform import Platform, PlatformArgs

__all__ = ["Platform", "PlatformArgs"]
