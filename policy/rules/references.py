"""Pods refer only to Secrets and ConfigMaps (and their keys) that the stack creates: a typo here
passes every schema and shows up as pods stuck in CreateContainerConfigError."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from policy.model import (
    EMPTY,
    Config,
    Resource,
    Violation,
    as_list,
    as_map,
    container_label,
    containers,
    dig,
    pod_spec,
    pod_spec_path,
)

SOURCES = {"secretKeyRef": "Secret", "configMapKeyRef": "ConfigMap"}
ENV_FROM = {"secretRef": "Secret", "configMapRef": "ConfigMap"}
VOLUMES = (("secret", "Secret", "secretName"), ("configMap", "ConfigMap", "name"))


def _keys(resource: Resource) -> set[str]:
    fields = ("data", "stringData", "binaryData")
    return {str(key) for field in fields for key in as_map(resource.props.get(field))}


def _references(workload: Resource) -> Iterator[tuple[str, str, str | None, str]]:
    """(kind, name, key or None, where) for every non-optional reference of the pod template."""
    for c in containers(workload):
        for index, env in enumerate(as_list(c.spec.get("env"))):
            for source, kind in SOURCES.items():
                ref = as_map(dig(env, "valueFrom", source))
                if ref and not ref.get("optional"):
                    where = f"{container_label(workload, c)}: {c.path}.env[{index}].valueFrom.{source}"
                    yield kind, str(ref.get("name")), str(ref.get("key")), where
        for index, env_from in enumerate(as_list(c.spec.get("envFrom"))):
            for source, kind in ENV_FROM.items():
                ref = as_map(dig(env_from, source))
                if ref and not ref.get("optional"):
                    where = f"{container_label(workload, c)}: {c.path}.envFrom[{index}].{source}"
                    yield kind, str(ref.get("name")), None, where
    for index, volume in enumerate(as_list(dig(pod_spec(workload), "volumes"))):
        for source, kind, name_field in VOLUMES:
            ref = as_map(dig(volume, source))
            if ref and not ref.get("optional"):
                where = f"{workload.label}: {pod_spec_path(workload)}.volumes[{index}].{source}"
                for item in as_list(ref.get("items")):
                    yield kind, str(ref.get(name_field)), str(dig(item, "key")), where
                yield kind, str(ref.get(name_field)), None, where


def check_references_exist(resources: Sequence[Resource], config: Config = EMPTY) -> list[Violation]:
    objects: dict[tuple[str, str, str], Resource] = {
        (r.kind, r.namespace, r.k8s_name): r for r in resources if r.kind in ("Secret", "ConfigMap")
    }
    out = []
    for workload in (r for r in resources if pod_spec(r) is not None):
        for kind, name, key, where in _references(workload):
            target = objects.get((kind, workload.namespace, name))
            if target is None:
                out.append(
                    Violation(
                        f"{where} names {kind} '{name}', which the stack does not create in "
                        f"namespace '{workload.namespace}'; fix: create it or correct the name",
                        workload.urn,
                    )
                )
            elif key is not None and key not in _keys(target):
                out.append(
                    Violation(
                        f"{where} reads key '{key}' that {kind} '{name}' does not have "
                        f"(it has {', '.join(sorted(_keys(target))) or 'none'}); fix: correct "
                        "the key or add it",
                        workload.urn,
                    )
                )
    return out
