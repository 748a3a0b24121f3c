"""Venta's own: the HPAs carry the prod scaling table (policy/constants.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policy.constants import PROD_SCALING_TABLE
from policy.model import EMPTY, SCALABLE, Config, Resource, Violation, as_list, as_map, dig, number
from policy.rules.availability import hpa_for, replica_range


def _targets(hpa: Resource) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for metric in as_list(dig(hpa.props, "spec", "metrics")):
        name = dig(metric, "resource", "name")
        if dig(metric, "type") == "Resource" and name:
            found[str(name)] = number(dig(metric, "resource", "target", "averageUtilization"))
    return found


def _workload_named(service: str, resources: Sequence[Resource]) -> Resource | None:
    for r in resources:
        app = dig(r.props, "metadata", "labels", "app.kubernetes.io/name")
        if r.kind in SCALABLE and service in (r.k8s_name, app):
            return r
    return None


def check_scaling_table(resources: Sequence[Resource], config: Config = EMPTY) -> list[Violation]:
    table = as_map(config.get("table")) or PROD_SCALING_TABLE
    out = []
    for service, row in sorted(table.items()):
        row = as_map(row)
        workload = _workload_named(service, resources)
        if workload is None:
            out.append(
                Violation(
                    f"service '{service}' from the scaling table has no Deployment in the "
                    "stack; fix: deploy it or remove it from the policy's scaling table",
                    None,
                )
            )
            continue
        out.extend(_check_row(service, row, workload, resources))
    return out


def _check_row(
    service: str, row: Mapping[str, Any], workload: Resource, resources: Sequence[Resource]
) -> list[Violation]:
    hpa = hpa_for(workload, resources)
    low, high = replica_range(workload, resources)
    wants_hpa = any(key in row for key in ("max", "cpu", "memory"))
    if hpa is None and wants_hpa:
        return [
            Violation(
                f"{workload.label}: has no HorizontalPodAutoscaler but the scaling table sets "
                f"{dict(row)}; fix: add an autoscaling/v2 HPA that targets it",
                workload.urn,
            )
        ]
    where, urn = (workload.label, workload.urn)
    if hpa is not None:
        where, urn = f"HorizontalPodAutoscaler '{hpa.k8s_name}'", hpa.urn
    got: dict[str, float | None] = {"min": low, "max": high}
    if hpa is not None:
        targets = _targets(hpa)
        got.update(cpu=targets.get("cpu"), memory=targets.get("memory"))
    fields = {
        "min": "spec.minReplicas" if hpa else "spec.replicas",
        "max": "spec.maxReplicas",
        "cpu": "spec.metrics[cpu].target.averageUtilization",
        "memory": "spec.metrics[memory].target.averageUtilization",
    }
    out = []
    for key, wanted in row.items():
        actual = got.get(key)
        wrong = actual is None or (actual < float(wanted) if key == "min" else actual != float(wanted))
        if wrong:
            shown = "unset" if actual is None else f"{actual:g}"
            need = f"at least {wanted}" if key == "min" else str(wanted)
            out.append(
                Violation(
                    f"{where} for {service}: {fields[key]} is {shown}, the scaling table says "
                    f"{need}; fix: set it to {wanted}",
                    urn,
                )
            )
    return out
