"""Availability: enough pods, spread over nodes, protected from voluntary disruption, scaled sanely."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.constants import HOSTNAME_TOPOLOGY_KEY, MIN_PROD_REPLICAS
from policy.model import (
    EMPTY,
    SCALABLE,
    Config,
    Resource,
    Violation,
    as_list,
    as_map,
    dig,
    number,
    pod_labels,
    pod_spec,
    pod_spec_path,
    selector_matches,
)

HPA_API = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def _of_kind(resources: Sequence[Resource], *kinds: str) -> list[Resource]:
    return [r for r in resources if r.kind in kinds]


def hpa_for(workload: Resource, resources: Sequence[Resource]) -> Resource | None:
    """The HPA whose scaleTargetRef names this workload in its namespace."""
    for hpa in _of_kind(resources, "HorizontalPodAutoscaler"):
        ref = as_map(dig(hpa.props, "spec", "scaleTargetRef"))
        if (
            hpa.namespace == workload.namespace
            and ref.get("kind") == workload.kind
            and ref.get("name") == workload.k8s_name
        ):
            return hpa
    return None


def replica_range(workload: Resource, resources: Sequence[Resource]) -> tuple[float, float]:
    """The fewest and most pods a workload can run: the HPA's bounds, else its fixed replicas."""
    hpa = hpa_for(workload, resources)
    if hpa is not None:
        low = number(dig(hpa.props, "spec", "minReplicas")) or 1.0
        return low, number(dig(hpa.props, "spec", "maxReplicas")) or low
    replicas = number(dig(workload.props, "spec", "replicas"))
    replicas = 1.0 if replicas is None else replicas
    return replicas, replicas


def check_spread_across_nodes(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    if resource.kind not in SCALABLE:
        return []
    replicas = number(dig(resource.props, "spec", "replicas"))
    if replicas is not None and replicas <= 1:
        return []  # one pod has nothing to spread
    spec = pod_spec(resource) or EMPTY
    keys = {dig(c, "topologyKey") for c in as_list(spec.get("topologySpreadConstraints"))}
    anti = as_map(dig(spec, "affinity", "podAntiAffinity"))
    for term in as_list(anti.get("requiredDuringSchedulingIgnoredDuringExecution")):
        keys.add(dig(term, "topologyKey"))
    for term in as_list(anti.get("preferredDuringSchedulingIgnoredDuringExecution")):
        keys.add(dig(term, "podAffinityTerm", "topologyKey"))
    if HOSTNAME_TOPOLOGY_KEY in keys:
        return []
    return [
        f"{resource.label}: {pod_spec_path(resource)}.topologySpreadConstraints has no constraint on "
        f"{HOSTNAME_TOPOLOGY_KEY}; fix: add topologySpreadConstraints with topologyKey "
        f"{HOSTNAME_TOPOLOGY_KEY} (maxSkew 1) so one node failure cannot take every replica"
    ]


def check_hpa_valid(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    if resource.kind != "HorizontalPodAutoscaler":
        return []
    where = resource.label
    out = []
    if resource.type != HPA_API:
        out.append(
            f"{where}: uses {resource.type.split(':')[1]}; fix: declare it as autoscaling/v2 "
            "(CPU and memory targets need it)"
        )
    spec = as_map(resource.props.get("spec"))
    low, high = number(spec.get("minReplicas")), number(spec.get("maxReplicas"))
    low = 1.0 if low is None else low
    if high is None:
        out.append(f"{where}: spec.maxReplicas is unset; fix: set maxReplicas")
    elif not 1 <= low <= high:
        out.append(
            f"{where}: spec.minReplicas {low:g} and spec.maxReplicas {high:g} are not "
            "1 <= min <= max; fix: set minReplicas between 1 and maxReplicas"
        )
    ref = as_map(spec.get("scaleTargetRef"))
    if not ref.get("kind") or not ref.get("name"):
        out.append(f"{where}: spec.scaleTargetRef needs kind and name; fix: name the Deployment it scales")
    metrics = as_list(spec.get("metrics"))
    if not metrics:
        out.append(f"{where}: spec.metrics is empty; fix: add CPU and memory utilization targets")
    for index, metric in enumerate(metrics):
        target = number(dig(metric, "resource", "target", "averageUtilization"))
        if dig(metric, "type") == "Resource" and target is not None and not 1 <= target <= 100:
            out.append(
                f"{where}: spec.metrics[{index}].resource.target.averageUtilization is {target:g}; "
                "fix: use a percentage between 1 and 100"
            )
    return out


def check_pdb_valid(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    if resource.kind != "PodDisruptionBudget":
        return []
    spec = as_map(resource.props.get("spec"))
    where = resource.label
    low, high = spec.get("minAvailable"), spec.get("maxUnavailable")
    if (low is None) == (high is None):
        return [
            f"{where}: spec sets {'both' if low is not None else 'neither'} of minAvailable and "
            "maxUnavailable; fix: set exactly one (maxUnavailable: 1 is a good default)"
        ]
    if high in (0, 0.0, "0%") or low == "100%":
        return [
            f"{where}: spec {'maxUnavailable' if high is not None else 'minAvailable'} forbids every "
            "eviction, so node drains hang; fix: allow at least one pod to be disrupted"
        ]
    if not as_map(spec.get("selector")):
        return [f"{where}: spec.selector is empty; fix: select the workload's pods by their stable labels"]
    return []


def check_zero_downtime_rollout(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    if resource.kind != "Deployment":
        return []
    spec = as_map(resource.props.get("spec"))
    strategy = as_map(spec.get("strategy"))
    max_unavailable = dig(strategy, "rollingUpdate", "maxUnavailable")
    out = []
    kind = strategy.get("type", "RollingUpdate")
    if kind != "RollingUpdate":
        out.append(
            f"{resource.label}: spec.strategy.type is {kind}, which stops every pod before starting "
            "new ones; fix: use a RollingUpdate with maxSurge 1 and maxUnavailable 0"
        )
    elif max_unavailable not in (0, 0.0, "0%"):
        out.append(
            f"{resource.label}: spec.strategy.rollingUpdate.maxUnavailable is "
            f"{max_unavailable if max_unavailable is not None else 'unset (25%)'}; fix: use a "
            "RollingUpdate with maxSurge 1 and maxUnavailable 0"
        )
    if not number(spec.get("minReadySeconds")):
        out.append(
            f"{resource.label}: spec.minReadySeconds is unset; fix: set minReadySeconds (10) so a "
            "pod must stay ready before the rollout moves on"
        )
    return out


def check_min_replicas(resources: Sequence[Resource], config: Config = EMPTY) -> list[Violation]:
    wanted = number(config.get("minReplicas"))
    wanted = MIN_PROD_REPLICAS if wanted is None else wanted
    out = []
    for workload in _of_kind(resources, *SCALABLE):
        low, _ = replica_range(workload, resources)
        if low < wanted:
            hpa = hpa_for(workload, resources)
            field = f"HorizontalPodAutoscaler '{hpa.k8s_name}' spec.minReplicas" if hpa else "spec.replicas"
            out.append(
                Violation(
                    f"{workload.label}: {field} lets it run {low:g} pod(s); fix: run at least "
                    f"{wanted:g} (set {field.split()[-1]} to {wanted:g})",
                    hpa.urn if hpa else workload.urn,
                )
            )
    return out


def check_pdb_per_workload(resources: Sequence[Resource], config: Config = EMPTY) -> list[Violation]:
    pdbs = _of_kind(resources, "PodDisruptionBudget")
    out = []
    for workload in _of_kind(resources, *SCALABLE):
        _, high = replica_range(workload, resources)
        if high <= 1:
            continue
        labels = pod_labels(workload)
        if not any(
            p.namespace == workload.namespace
            and selector_matches(as_map(dig(p.props, "spec", "selector")), labels)
            for p in pdbs
        ):
            out.append(
                Violation(
                    f"{workload.label}: can run {high:g} pods but no PodDisruptionBudget "
                    "selects its pod labels; fix: add a PodDisruptionBudget (maxUnavailable: 1) "
                    "whose spec.selector matches spec.template.metadata.labels",
                    workload.urn,
                )
            )
    return out


def check_hpa_target_exists(resources: Sequence[Resource], config: Config = EMPTY) -> list[Violation]:
    out = []
    for hpa in _of_kind(resources, "HorizontalPodAutoscaler"):
        ref = as_map(dig(hpa.props, "spec", "scaleTargetRef"))
        found = any(
            r.kind == ref.get("kind") and r.k8s_name == ref.get("name") and r.namespace == hpa.namespace
            for r in resources
        )
        if not found:
            out.append(
                Violation(
                    f"{hpa.label}: spec.scaleTargetRef points at {ref.get('kind')} "
                    f"'{ref.get('name')}', which is not in the stack (namespace "
                    f"'{hpa.namespace}'); fix: point it at the workload's kind and name",
                    hpa.urn,
                )
            )
    return out


def check_hpa_owns_replicas(resources: Sequence[Resource], config: Config = EMPTY) -> list[Violation]:
    """A workload under an HPA may name `replicas` only to start at the HPA's minimum, and only when
    the engine is told to leave the count alone afterwards (`ignoreChanges: [spec.replicas]`):
    otherwise every update would reset the HPA's count."""
    out = []
    for workload in _of_kind(resources, *SCALABLE):
        hpa = hpa_for(workload, resources)
        replicas = number(dig(workload.props, "spec", "replicas"))
        if hpa is None or replicas is None:
            continue
        minimum = number(dig(hpa.props, "spec", "minReplicas")) or 1.0
        problems = []
        if replicas != minimum:
            problems.append(f"spec.replicas is {replicas:g}, not the HPA's minReplicas {minimum:g}")
        if "spec.replicas" not in workload.ignore_changes:
            problems.append(
                "spec.replicas is not in the resource's ignoreChanges, so every update resets the count"
            )
        if problems:
            out.append(
                Violation(
                    f"{workload.label} is scaled by HorizontalPodAutoscaler '{hpa.k8s_name}' but "
                    f"{'; '.join(problems)}; fix: start at the HPA's minimum and add spec.replicas to "
                    "ignoreChanges, or leave spec.replicas out",
                    workload.urn,
                )
            )
    return out
