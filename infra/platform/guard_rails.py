"""The namespace and its guard rails: Pod Security, default-deny traffic, container defaults, a quota."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pulumi
import pulumi_kubernetes as k8s

from infra.builders import quota
from infra.builders.labels import labels
from infra.builders.quota import Workload
from stacks.model import StackSettings

core, meta = k8s.core.v1, k8s.meta.v1
# Options for one child of the Platform: its name before children were named after the Platform.
ChildOptions = Callable[[str], pulumi.ResourceOptions]


def namespace_labels(s: StackSettings, instance: str) -> dict[str, str]:
    return {
        **labels(s.namespace, "namespace", instance, s.images.tag),
        # Pod Security Admission refuses any pod that breaks the restricted profile.
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }


def namespace(
    name: str, s: StackSettings, instance: str, child: ChildOptions, after: Sequence[pulumi.Resource] = ()
) -> core.Namespace:
    """The namespace (its name is the stack's `namespace` setting), a LimitRange and default-deny.
    `after`: what must succeed before the namespace, and so anything in it, is created."""
    ns_labels = namespace_labels(s, instance)
    ns = core.Namespace(
        f"{name}-namespace",
        metadata=meta.ObjectMetaArgs(name=s.namespace, labels=ns_labels),
        opts=pulumi.ResourceOptions.merge(child("namespace"), pulumi.ResourceOptions(depends_on=list(after))),
    )
    core.LimitRange(
        f"{name}-limits",
        metadata=meta.ObjectMetaArgs(name=s.namespace, namespace=ns.metadata.name, labels=ns_labels),
        spec=core.LimitRangeSpecArgs(
            limits=[
                # Only for containers that forget their own; every container here sets both.
                core.LimitRangeItemArgs(
                    type="Container",
                    default={"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
                    default_request={"cpu": "50m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
                )
            ]
        ),
        opts=child("limits"),
    )
    k8s.networking.v1.NetworkPolicy(
        f"{name}-default-deny",
        metadata=meta.ObjectMetaArgs(name="default-deny", namespace=ns.metadata.name, labels=ns_labels),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=meta.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
        ),
        opts=child("default-deny"),
    )
    return ns


def resource_quota(
    name: str,
    s: StackSettings,
    instance: str,
    ns: core.Namespace,
    workloads: Iterable[Workload],
    child: ChildOptions,
) -> None:
    """Room for every workload at its maximum (what the components report), plus headroom."""
    core.ResourceQuota(
        f"{name}-quota",
        metadata=meta.ObjectMetaArgs(
            name=s.namespace, namespace=ns.metadata.name, labels=namespace_labels(s, instance)
        ),
        spec=core.ResourceQuotaSpecArgs(hard=quota.hard_limits(workloads)),
        opts=child("quota"),
    )
