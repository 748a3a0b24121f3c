"""Platform: one stack's namespace, data stores, services, monitoring and public entry."""

from infra.platform.component import Platform, PlatformArgs

__all__ = ["Platform", "PlatformArgs"]
