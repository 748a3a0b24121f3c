"""Queries over the manifests of a captured stack, shared by the infra tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from infra.render import CapturedStack, to_manifests, validate_manifest

Manifest = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet", "CronJob")
EXPORTER_COMPONENT = "monitoring"  # the exporters' app.kubernetes.io/component; a service's is its area


_rendered: dict[int, tuple[CapturedStack, list[Manifest]]] = {}


def manifests(captured: CapturedStack) -> list[Manifest]:
    """Rendered once per captured stack (the captures are session-wide and never mutated)."""
    if id(captured) not in _rendered:
        _rendered[id(captured)] = (captured, to_manifests(captured))
    return _rendered[id(captured)][1]


_errors: dict[int, tuple[CapturedStack, list[str]]] = {}


def schema_errors(captured: CapturedStack) -> list[str]:
    """Strict Kubernetes 1.31 validation of a captured stack's render: once per capture and run, for
    every suite that needs it (the infra tests, the scanners)."""
    if id(captured) not in _errors:
        _errors[id(captured)] = (captured, [e for m in manifests(captured) for e in validate_manifest(m)])
    return _errors[id(captured)][1]


def of_kind(captured: CapturedStack, kind: str) -> list[Manifest]:
    return [m for m in manifests(captured) if m["kind"] == kind]


def named(captured: CapturedStack, kind: str, name: str) -> Manifest:
    found = [m for m in of_kind(captured, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def inventory(captured: CapturedStack) -> Counter[str]:
    return Counter(m["kind"] for m in manifests(captured))


def pod_template(workload: Manifest) -> Manifest:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"])
    return dict(spec["template"])


def workloads(captured: CapturedStack) -> list[Manifest]:
    return [m for m in manifests(captured) if m["kind"] in WORKLOADS]


def exporter_deployments(captured: CapturedStack) -> list[Manifest]:
    """The data stores' exporters (monitoring.prometheusOperator), told from the services by their
    `app.kubernetes.io/component` label."""
    return [d for d in of_kind(captured, "Deployment") if _component(d) == EXPORTER_COMPONENT]


def service_deployments(captured: CapturedStack) -> list[Manifest]:
    """The services' Deployments: every Deployment but the exporters."""
    return [d for d in of_kind(captured, "Deployment") if _component(d) != EXPORTER_COMPONENT]


def _component(manifest: Manifest) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/component"])


def containers(workload: Manifest) -> list[Manifest]:
    spec = pod_template(workload)["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
