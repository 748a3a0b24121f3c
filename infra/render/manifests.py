"""Captured Kubernetes resources as plain manifests: what a reviewer reads and what scanners check."""

from __future__ import annotations

from typing import Any

from infra.render.capture import SECRET_SIG, CapturedResource, CapturedStack

REDACTED = "<redacted>"
# Dependencies first, the way `kubectl apply -f` of a directory would want them.
KIND_ORDER = [
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "StatefulSet",
    "Deployment",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
]


def api_version_and_kind(type_token: str) -> tuple[str, str]:
    """`kubernetes:apps/v1:Deployment` -> (`apps/v1`, `Deployment`); the core group has no prefix."""
    _, group_version, kind = type_token.split(":")
    group, version = group_version.split("/")
    return (version if group == "core" else f"{group}/{version}"), kind


def is_kubernetes_object(resource: CapturedResource) -> bool:
    return resource.custom and resource.type.startswith("kubernetes:") and "providers" not in resource.type


def to_manifest(resource: CapturedResource) -> dict[str, Any]:
    api_version, kind = api_version_and_kind(resource.type)
    body = {k: v for k, v in clean(resource.inputs).items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": api_version, "kind": kind, "metadata": body.pop("metadata", {}), **body}


def to_manifests(captured: CapturedStack) -> list[dict[str, Any]]:
    manifests = [to_manifest(r) for r in captured.resources if is_kubernetes_object(r)]
    return sorted(manifests, key=_order)


def clean(value: Any) -> Any:
    """Whole floats back to ints, secret values redacted (a secret map keeps its keys), nulls dropped,
    keys sorted."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            inner = value.get("value")
            return {k: REDACTED for k in inner} if isinstance(inner, dict) else REDACTED
        # Sorted keys: the wire format has no order, and renders must diff cleanly run to run.
        return {k: clean(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value if v is not None]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _order(manifest: dict[str, Any]) -> tuple[int, str]:
    kind = manifest["kind"]
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return rank, manifest.get("metadata", {}).get("name", "")
