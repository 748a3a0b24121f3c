"""The recommended `app.kubernetes.io/*` labels, and the stable subset used in selectors."""

from __future__ import annotations

PART_OF = "venta"
MANAGED_BY = "pulumi"


def labels(name: str, component: str, instance: str, version: str) -> dict[str, str]:
    """All six recommended labels; `version` changes per release, so it never goes into a selector."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/version": _label_value(version),
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector(name: str, instance: str) -> dict[str, str]:
    """Labels that never change for a workload's lifetime (a Deployment's selector is immutable)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance}


def _label_value(value: str) -> str:
    """Label values allow 63 characters of [A-Za-z0-9_.-]; a digest-pinned tag keeps its readable part."""
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in value.split("@")[0])
    return cleaned[:63].strip("_.-") or "unknown"
