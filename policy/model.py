"""The resource model the rules read, and the walkers that find pod templates and containers.

Props arrive as the Kubernetes provider's camelCase inputs. During a real preview they are read-only
proxies (Mapping/Sequence, not dict/list), so every helper here goes through the abstract types.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

EMPTY: Mapping[str, Any] = {}
Config = Mapping[str, Any]  # a rule's settings from the stack's policy config, defaults filled in

POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}
# Workloads that keep pods running (and so need probes, replicas, PDBs); Jobs run to completion.
LONG_RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
SCALABLE = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})


@dataclass(frozen=True)
class Resource:
    """One resource of the stack: its Pulumi type token, Pulumi name, URN, props and the property
    paths its options tell the engine to leave alone after creation (`ignoreChanges`)."""

    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    urn: str = ""
    ignore_changes: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        # "kubernetes:apps/v1:Deployment" -> "Deployment"; anything else has no Kubernetes kind.
        parts = self.type.split(":")
        return parts[2] if len(parts) == 3 and parts[0] == "kubernetes" else ""

    @property
    def metadata(self) -> Mapping[str, Any]:
        return as_map(self.props.get("metadata"))

    @property
    def k8s_name(self) -> str:
        return str(self.metadata.get("name") or self.name)

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @property
    def label(self) -> str:
        """How messages name the object: kind and name as they appear in the cluster."""
        return f"{self.kind or self.type} '{self.k8s_name}'"


def object_key(resource: Resource) -> str:
    """How exceptions in the policy config name an object: `Kind/namespace/name`."""
    return f"{resource.kind}/{resource.namespace}/{resource.k8s_name}"


class Violation(NamedTuple):
    """A stack-level finding: the message and the URN of the object to fix (None: the stack)."""

    message: str
    urn: str | None


class Container(NamedTuple):
    """A container with the path of its spec, for messages that point at the exact field."""

    spec: Mapping[str, Any]
    path: str
    init: bool

    @property
    def name(self) -> str:
        return str(self.spec.get("name", "?"))


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else EMPTY


def as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str | bytes) else ()


def dig(value: Any, *keys: str) -> Any:
    """Follows keys through nested mappings; None as soon as one is missing."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def pod_template_path(resource: Resource) -> tuple[str, ...] | None:
    return POD_TEMPLATE_PATHS.get(resource.kind)


def pod_template(resource: Resource) -> Mapping[str, Any] | None:
    """The pod template (metadata + spec) of a workload, or None for anything else."""
    path = pod_template_path(resource)
    if path is None:
        return None
    return as_map(dig(resource.props, *path)) if path else resource.props


def pod_spec(resource: Resource) -> Mapping[str, Any] | None:
    template = pod_template(resource)
    return None if template is None else as_map(template.get("spec"))


def pod_spec_path(resource: Resource) -> str:
    path = pod_template_path(resource) or ()
    return ".".join((*path, "spec"))


def pod_labels(resource: Resource) -> Mapping[str, Any]:
    return as_map(dig(pod_template(resource), "metadata", "labels"))


def containers(resource: Resource) -> Iterator[Container]:
    """Every container and init container of a workload's pod template."""
    spec = pod_spec(resource)
    if spec is None:
        return
    base = pod_spec_path(resource)
    for key, init in (("initContainers", True), ("containers", False)):
        for index, item in enumerate(as_list(spec.get(key))):
            yield Container(as_map(item), f"{base}.{key}[{index}]", init)


def container_label(resource: Resource, container: Container) -> str:
    kind = "init container" if container.init else "container"
    return f"{resource.label} {kind} '{container.name}'"


def effective(resource: Resource, container: Container, key: str) -> Any:
    """A security setting as Kubernetes applies it: the container's value, else the pod's."""
    value = dig(container.spec, "securityContext", key)
    if value is None:
        value = dig(pod_spec(resource), "securityContext", key)
    return value


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) or a plain map against labels."""
    match_labels = selector.get("matchLabels")
    expressions = selector.get("matchExpressions")
    if match_labels is None and expressions is None:
        match_labels = selector  # a Service's selector is a plain map
    for key, value in as_map(match_labels).items():
        if labels.get(key) != value:
            return False
    return all(_expression_matches(as_map(expr), labels) for expr in as_list(expressions))


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    key, operator = str(expr.get("key")), expr.get("operator")
    values = set(as_list(expr.get("values")))
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def number(value: Any) -> float | None:
    """Numbers arrive as floats from the engine (3.0); bools are not numbers."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
