"""Pod and container security: who the process runs as and what it may touch on the node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.constants import API_ACCESS_ANNOTATION
from policy.model import (
    EMPTY,
    Resource,
    as_list,
    as_map,
    container_label,
    containers,
    dig,
    effective,
    pod_spec,
    pod_spec_path,
)


def check_run_as_non_root(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in containers(resource):
        where = container_label(resource, c)
        if effective(resource, c, "runAsNonRoot") is not True:
            out.append(
                f"{where}: {c.path}.securityContext.runAsNonRoot is not true; fix: set runAsNonRoot: "
                "true on the container or the pod securityContext"
            )
        if effective(resource, c, "runAsUser") in (0, 0.0):
            out.append(
                f"{where}: {c.path}.securityContext.runAsUser is 0 (root); fix: run as a non-zero uid "
                "such as 10001"
            )
    return out


def check_no_privilege_escalation(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    return [
        f"{container_label(resource, c)}: {c.path}.securityContext.allowPrivilegeEscalation is not false; "
        "fix: set allowPrivilegeEscalation: false"
        for c in containers(resource)
        if dig(c.spec, "securityContext", "allowPrivilegeEscalation") is not False
    ]


def check_not_privileged(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    return [
        f"{container_label(resource, c)}: {c.path}.securityContext.privileged is true; "
        "fix: remove it (or set privileged: false)"
        for c in containers(resource)
        if dig(c.spec, "securityContext", "privileged") is True
    ]


def check_read_only_root_filesystem(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    return [
        f"{container_label(resource, c)}: {c.path}.securityContext.readOnlyRootFilesystem is not true; "
        "fix: set readOnlyRootFilesystem: true and mount an emptyDir where the process writes"
        for c in containers(resource)
        if dig(c.spec, "securityContext", "readOnlyRootFilesystem") is not True
    ]


def check_drop_all_capabilities(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in containers(resource):
        caps = dig(c.spec, "securityContext", "capabilities")
        dropped = {str(x).upper() for x in as_list(dig(caps, "drop"))}
        added = [str(x) for x in as_list(dig(caps, "add"))]
        if "ALL" not in dropped:
            out.append(
                f"{container_label(resource, c)}: {c.path}.securityContext.capabilities.drop does not "
                "contain ALL; fix: set capabilities: {drop: [ALL]}"
            )
        if added:
            out.append(
                f"{container_label(resource, c)}: {c.path}.securityContext.capabilities.add grants "
                f"{', '.join(added)}; fix: remove the added capabilities"
            )
    return out


def check_seccomp_runtime_default(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in containers(resource):
        profile = dig(effective(resource, c, "seccompProfile"), "type")
        if profile not in ("RuntimeDefault", "Localhost"):
            out.append(
                f"{container_label(resource, c)}: seccompProfile.type is {profile or 'unset'} in "
                f"{c.path}.securityContext and {pod_spec_path(resource)}.securityContext; fix: set "
                "seccompProfile: {type: RuntimeDefault} on the pod securityContext"
            )
    return out


def check_no_host_namespaces(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    spec = pod_spec(resource)
    if spec is None:
        return []
    return [
        f"{resource.label}: {pod_spec_path(resource)}.{key} is true; fix: remove {key} (share nothing with "
        "the node)"
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(key) is True
    ]


def check_no_host_ports(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in containers(resource):
        for index, port in enumerate(as_list(c.spec.get("ports"))):
            host_port = dig(port, "hostPort")
            if host_port not in (None, 0, 0.0):
                out.append(
                    f"{container_label(resource, c)}: {c.path}.ports[{index}].hostPort is "
                    f"{int(host_port)}; fix: remove hostPort and reach the pod through a Service"
                )
    return out


def check_no_service_account_token(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    spec = pod_spec(resource)
    if spec is None:
        return []
    if as_map(resource.metadata.get("annotations")).get(API_ACCESS_ANNOTATION):
        return []
    if spec.get("automountServiceAccountToken") is not False:
        return [
            f"{resource.label}: {pod_spec_path(resource)}.automountServiceAccountToken is not false; "
            "fix: set it to false, or annotate the workload with "
            f"{API_ACCESS_ANNOTATION}: <why it needs the Kubernetes API>"
        ]
    return []


def check_dedicated_service_account(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    spec = pod_spec(resource)
    if spec is None:
        return []
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if not account or account == "default":
        return [
            f"{resource.label}: {pod_spec_path(resource)}.serviceAccountName is "
            f"{account or 'unset'} (the namespace's default account); fix: create a ServiceAccount for "
            "this workload and set serviceAccountName"
        ]
    return []
