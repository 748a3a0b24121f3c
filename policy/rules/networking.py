"""Network exposure: who can reach a pod, and which Services leave the cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.constants import EXPOSED_SERVICES
from policy.model import (
    EMPTY,
    Config,
    Resource,
    Violation,
    as_list,
    as_map,
    dig,
    pod_labels,
    pod_template,
    selector_matches,
)


def _workloads(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if pod_template(r) is not None]


def check_network_policy_coverage(resources: Sequence[Resource], config: Config = EMPTY) -> list[Violation]:
    policies = [r for r in resources if r.kind == "NetworkPolicy"]
    out = []
    for workload in _workloads(resources):
        labels = pod_labels(workload)
        selected = (
            selector_matches(as_map(dig(p.props, "spec", "podSelector")), labels)
            for p in policies
            if p.namespace == workload.namespace
        )
        if not any(selected):
            out.append(
                Violation(
                    f"{workload.label}: no NetworkPolicy in namespace '{workload.namespace}' "
                    "selects its pods (spec.template.metadata.labels); fix: add a NetworkPolicy "
                    "whose spec.podSelector matches them and allows only the traffic it needs",
                    workload.urn,
                )
            )
    return out


def check_service_type_restricted(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    if resource.kind != "Service":
        return []
    kind = dig(resource.props, "spec", "type") or "ClusterIP"
    allowed = list(as_list(config.get("exposedServices"))) or list(EXPOSED_SERVICES)
    if kind in ("NodePort", "LoadBalancer") and resource.k8s_name not in allowed:
        return [
            f"{resource.label}: spec.type is {kind}, which exposes it outside the cluster; fix: use "
            f"ClusterIP (only {', '.join(allowed)} may be exposed, through the gateway's Ingress)"
        ]
    return []


def check_service_selector_matches(resources: Sequence[Resource], config: Config = EMPTY) -> list[Violation]:
    workloads = _workloads(resources)
    out = []
    for service in (r for r in resources if r.kind == "Service"):
        if dig(service.props, "spec", "type") == "ExternalName":
            continue
        selector = as_map(dig(service.props, "spec", "selector"))
        if not selector:
            out.append(
                Violation(
                    f"{service.label}: spec.selector is empty, so it routes to no pod (or to "
                    "hand-made endpoints); fix: select the workload's stable pod labels",
                    service.urn,
                )
            )
        elif not any(
            w.namespace == service.namespace and selector_matches(selector, pod_labels(w)) for w in workloads
        ):
            out.append(
                Violation(
                    f"{service.label}: spec.selector {dict(selector)} matches no pod template "
                    f"in namespace '{service.namespace}'; fix: use the labels of the workload's "
                    "spec.template.metadata.labels",
                    service.urn,
                )
            )
    return out


def check_network_policy_types(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    if resource.kind != "NetworkPolicy":
        return []
    spec = as_map(resource.props.get("spec"))
    types = set(as_list(spec.get("policyTypes")))
    if "Ingress" not in types:
        return [
            f"{resource.label}: spec.policyTypes {sorted(types)} does not include Ingress, so the "
            "policy's intent is implicit; fix: list Ingress (and Egress when it restricts egress)"
        ]
    if "egress" in spec and "Egress" not in types:
        return [
            f"{resource.label}: spec.egress rules are ignored because spec.policyTypes lacks Egress; "
            "fix: add Egress to policyTypes"
        ]
    return []
