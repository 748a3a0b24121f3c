"""Labels that let people and tools find every object of a service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.constants import RECOMMENDED_LABELS, WORKLOAD_LABELS
from policy.model import EMPTY, Resource, as_list, as_map, dig, pod_template, pod_template_path

LABELLED_KINDS = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Service",
        "ConfigMap",
        "Secret",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceAccount",
        "Ingress",
        "PersistentVolumeClaim",
    }
)


def check_recommended_labels(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    if resource.kind not in LABELLED_KINDS:
        return []
    template = pod_template(resource)
    required = WORKLOAD_LABELS if template is not None else RECOMMENDED_LABELS
    required = tuple(as_list(config.get("labels"))) or required
    places = [("metadata.labels", as_map(dig(resource.props, "metadata", "labels")))]
    if template is not None:
        path = ".".join((*(pod_template_path(resource) or ()), "metadata", "labels"))
        places.append((path, as_map(dig(template, "metadata", "labels"))))
    out = []
    for path, labels in places:
        missing = [key for key in required if not labels.get(key)]
        if missing:
            out.append(
                f"{resource.label}: {path} lacks {', '.join(missing)}; fix: add the recommended "
                "app.kubernetes.io labels"
            )
    return out
