"""A rendered pod template as ``docker run`` options: the same user, groups, capabilities, read-only
root, volumes, resource limits, environment and probes, or an error naming the field it cannot
reproduce (so a pod spec that grows a field this does not know fails the image tests, never passes
them by ignoring it).

Pure functions over plain manifests (``dict``s, secrets in the clear): no Docker, no Pulumi.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]

# Where the pod runs, not what runs in it: nothing of these changes the container.
PLACEMENT_FIELDS = {
    "affinity",
    "nodeSelector",
    "priorityClassName",
    "schedulerName",
    "serviceAccountName",
    "tolerations",
    "topologySpreadConstraints",
    "dnsPolicy",
}
# The kubelet's default of restartPolicy; the tests watch the container instead of restarting it.
POD_FIELDS = {"containers", "securityContext", "volumes", "automountServiceAccountToken"}
POD_FIELDS |= {"enableServiceLinks", "terminationGracePeriodSeconds", "restartPolicy"}
CONTAINER_FIELDS = {"name", "image", "imagePullPolicy", "env", "envFrom", "ports", "resources"}
CONTAINER_FIELDS |= {"securityContext", "volumeMounts", "command", "args", "workingDir"}
CONTAINER_FIELDS |= {"livenessProbe", "readinessProbe", "startupProbe"}
CONTAINER_FIELDS |= {"terminationMessagePath", "terminationMessagePolicy", "lifecycle"}
SECURITY_FIELDS = {"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem", "privileged"}
SECURITY_FIELDS |= {"allowPrivilegeEscalation", "capabilities", "seccompProfile", "fsGroup"}
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
_QUANTITY = re.compile(r"^([0-9.]+)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
_FACTORS = {"": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_FACTORS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


class NotReproduced(ValueError):
    """A pod spec field the image tests cannot give a container, named by its path."""


@dataclass(frozen=True)
class HttpProbe:
    """What the kubelet calls: GET <scheme>://<pod IP>:<port><path>, healthy on 200-399."""

    path: str
    port: int
    scheme: str
    timeout_s: float
    period_s: float
    initial_delay_s: float
    failure_threshold: int


@dataclass(frozen=True)
class HostVolume:
    """A persistent volume as a host directory, prepared the way the kubelet applies ``fsGroup``."""

    name: str
    group: int | None  # chgrp and setgid to this group, group-writable


@dataclass(frozen=True)
class ContainerRun:
    pod: str
    container: str
    image: str
    options: list[str]  # docker run options, host volumes as {volume:<name>} placeholders
    env: dict[str, str] = field(repr=False)  # holds the Secret's values: kept out of failure reports
    ports: dict[str, int]  # name (or number as text) -> containerPort
    probes: dict[str, HttpProbe]
    command: list[str] = field(default_factory=list)  # entrypoint and args, when the pod overrides them
    host_volumes: list[HostVolume] = field(default_factory=list)
    stop_timeout_s: int = 30
    pre_stop_sleep_s: int = 0  # lifecycle.preStop.sleep: the stop waits this long before SIGTERM


def quantity(value: str | float, path: str) -> float:
    """A Kubernetes quantity (``500m``, ``256Mi``, ``2``) as a number."""
    found = _QUANTITY.match(str(value))
    if found is None:
        raise NotReproduced(f"{path}: quantity {value!r} not understood")
    return float(found.group(1)) * _FACTORS[found.group(2) or ""]


def _refuse_unknown(spec: Mapping[str, Any], known: set[str], path: str) -> None:
    unknown = sorted(set(spec) - known)
    if unknown:
        raise NotReproduced(f"{path}: {', '.join(unknown)} not reproduced by the image tests")


def index(objects: Iterable[Manifest]) -> dict[tuple[str, str, str], Manifest]:
    """Objects by (kind, namespace, name)."""
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in objects
        if "name" in o.get("metadata", {})
    }


def _data(obj: Manifest) -> dict[str, str]:
    """A ConfigMap's or Secret's values as text (``data`` of a Secret is base64)."""
    values = dict(obj.get("data") or {})
    if obj["kind"] == "Secret":
        values = {k: base64.b64decode(v).decode() for k, v in values.items()}
    return {**values, **(obj.get("stringData") or {})}


def _source(
    index: Mapping[tuple[str, str, str], Manifest], kind: str, ns: str, ref: Mapping[str, Any]
) -> Any:
    found = index.get((kind, ns, ref.get("name", "")))
    if found is None and not ref.get("optional", False):
        have = sorted(name for k, n, name in index if (k, n) == (kind, ns))
        raise NotReproduced(f"{kind} {ns}/{ref.get('name')!r} is referenced but not rendered; have {have}")
    return found


def environment(
    container: Mapping[str, Any], namespace: str, pod: str, index: Mapping[tuple[str, str, str], Manifest]
) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom in order, then env on top."""
    env: dict[str, str] = {}
    for i, source in enumerate(container.get("envFrom") or []):
        kind, ref = next(
            (
                (k, source[key])
                for key, k in (("configMapRef", "ConfigMap"), ("secretRef", "Secret"))
                if key in source
            ),
            (None, None),
        )
        if kind is None or ref is None:
            raise NotReproduced(f"envFrom[{i}]: {sorted(source)} not reproduced")
        found = _source(index, kind, namespace, ref)
        if found is not None:
            env |= {source.get("prefix", "") + k: v for k, v in _data(found).items()}
    for item in container.get("env") or []:
        env[item["name"]] = _env_value(item, namespace, pod, index)
    return env


def _env_value(
    item: Mapping[str, Any], ns: str, pod: str, index: Mapping[tuple[str, str, str], Manifest]
) -> str:
    if "valueFrom" not in item:
        return str(item.get("value", ""))
    source = item["valueFrom"]
    for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        if key in source:
            found = _source(index, kind, ns, source[key])
            return "" if found is None else _data(found)[source[key]["key"]]
    field_path = source.get("fieldRef", {}).get("fieldPath")
    if field_path in ("metadata.name", "metadata.namespace"):
        return pod if field_path == "metadata.name" else ns
    raise NotReproduced(f"env {item['name']}: valueFrom {source} not reproduced")


def _security_options(pod_ctx: Mapping[str, Any], ctx: Mapping[str, Any], path: str) -> list[str]:
    _refuse_unknown(pod_ctx, SECURITY_FIELDS, f"{path}.securityContext")
    _refuse_unknown(ctx, SECURITY_FIELDS - {"fsGroup"}, f"{path}.containers[0].securityContext")
    merged = {**pod_ctx, **ctx}  # the container's settings win over the pod's
    uid, gid = merged.get("runAsUser"), merged.get("runAsGroup")
    if uid is None or gid is None:
        raise NotReproduced(f"{path}: runAsUser and runAsGroup must both be set to be reproduced")
    if merged.get("runAsNonRoot") and uid == 0:
        raise NotReproduced(f"{path}: runAsNonRoot with runAsUser 0 would never start")
    options = ["--user", f"{uid}:{gid}"]
    if "fsGroup" in pod_ctx:
        options += ["--group-add", str(pod_ctx["fsGroup"])]
    if merged.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    if merged.get("privileged"):
        options.append("--privileged")
    if merged.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    caps = merged.get("capabilities") or {}
    options += [arg for cap in caps.get("drop", []) for arg in ("--cap-drop", cap)]
    options += [arg for cap in caps.get("add", []) for arg in ("--cap-add", cap)]
    seccomp = (merged.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        options += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":  # Docker's default profile is the runtime's default
        raise NotReproduced(f"{path}: seccompProfile {seccomp} not reproduced")
    return options


def _resource_options(resources: Mapping[str, Any], path: str) -> list[str]:
    """What the kubelet writes to the container's cgroup (v1): CFS quota for the CPU limit, shares
    for the CPU request, the memory limit without swap; memory requests only place the pod.
    Ephemeral storage needs no option: under the read-only root the container writes only to its
    emptyDirs, each a tmpfs of its size limit here, and tests/infra holds their sum within the limit."""
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    known = {"cpu", "memory", "ephemeral-storage"}
    _refuse_unknown(limits, known, f"{path}.resources.limits")
    _refuse_unknown(requests, known, f"{path}.resources.requests")
    options = []
    if "cpu" in limits:
        options += ["--cpus", f"{quantity(limits['cpu'], path):g}"]
    if "cpu" in requests:
        shares = max(2, round(quantity(requests["cpu"], path) * 1024))
        options += ["--cpu-shares", str(shares)]
    if "memory" in limits:
        memory = str(int(quantity(limits["memory"], path)))
        options += ["--memory", memory, "--memory-swap", memory]
    return options


def _volume_options(
    volumes: list[Mapping[str, Any]], mounts: list[Mapping[str, Any]], fs_group: int | None, path: str
) -> tuple[list[str], list[HostVolume]]:
    by_name = {v["name"]: v for v in volumes}
    options: list[str] = []
    host: list[HostVolume] = []
    for mount in mounts:
        _refuse_unknown(mount, {"name", "mountPath", "readOnly"}, f"{path}.volumeMounts")
        volume = by_name.get(mount["name"])
        if volume is None:
            raise NotReproduced(f"{path}.volumeMounts: {mount['name']} is not a volume of the pod")
        target, read_only = mount["mountPath"], bool(mount.get("readOnly"))
        if "emptyDir" in volume:
            # An emptyDir is a fresh directory every user of the pod may write (0777), within its
            # size limit: here a tmpfs of that size.
            limit = (volume["emptyDir"] or {}).get("sizeLimit")
            size = f",size={int(quantity(limit, path))}" if limit else ""
            options += ["--tmpfs", f"{target}:{'ro' if read_only else 'rw'},exec,mode=0777{size}"]
        elif "persistentVolumeClaim" in volume:
            host.append(HostVolume(volume["name"], fs_group))
            options += ["--volume", f"{{volume:{volume['name']}}}:{target}{':ro' if read_only else ''}"]
        else:
            kinds = sorted(set(volume) - {"name"})
            raise NotReproduced(f"{path}.volumes[{volume['name']}]: {kinds} not reproduced")
    return options, host


def _probe(spec: Mapping[str, Any], ports: Mapping[str, int], path: str) -> HttpProbe:
    if set(spec) & {"exec", "tcpSocket", "grpc"} or "httpGet" not in spec:
        raise NotReproduced(f"{path}: only httpGet probes are reproduced, got {sorted(spec)}")
    get = spec["httpGet"]
    _refuse_unknown(get, {"path", "port", "scheme"}, f"{path}.httpGet")
    port = get["port"]
    if str(port) not in ports and not isinstance(port, int):
        raise NotReproduced(f"{path}: port {port!r} is not a port of the container ({sorted(ports)})")
    return HttpProbe(
        path=get.get("path", "/"),
        port=ports.get(str(port), port if isinstance(port, int) else 0),
        scheme=get.get("scheme", "HTTP").lower(),
        timeout_s=float(spec.get("timeoutSeconds", 1)),
        period_s=float(spec.get("periodSeconds", 10)),
        initial_delay_s=float(spec.get("initialDelaySeconds", 0)),
        failure_threshold=int(spec.get("failureThreshold", 3)),
    )


def _pre_stop_sleep(lifecycle: Mapping[str, Any], path: str) -> int:
    """Seconds of a preStop sleep hook (0 without one); other hooks are not reproduced."""
    _refuse_unknown(lifecycle, {"preStop"}, path)
    hook = lifecycle.get("preStop") or {}
    _refuse_unknown(hook, {"sleep"}, f"{path}.preStop")
    return int(hook.get("sleep", {}).get("seconds", 0))


def container_run(workload: Manifest, objects: Iterable[Manifest]) -> ContainerRun:
    """The single container of ``workload``'s pod template as a ``docker run``, environment resolved
    from the ConfigMaps and Secrets among ``objects`` that the pod spec itself references."""
    namespace = workload["metadata"].get("namespace", "")
    pod_name = workload["metadata"]["name"]
    path = f"{workload['kind']} {namespace}/{pod_name}"
    spec = workload["spec"]["template"]["spec"]
    _refuse_unknown(spec, POD_FIELDS | PLACEMENT_FIELDS, path)
    if spec.get("automountServiceAccountToken", True):
        raise NotReproduced(f"{path}: a mounted service account token is not reproduced")
    if len(spec["containers"]) != 1:
        raise NotReproduced(f"{path}: {len(spec['containers'])} containers; one is reproduced")
    container = spec["containers"][0]
    _refuse_unknown(container, CONTAINER_FIELDS, f"{path}.containers[0]")
    ports = {
        str(p.get("name", p["containerPort"])): int(p["containerPort"]) for p in container.get("ports", [])
    }
    ports |= {str(p): p for p in ports.values()}
    pod_ctx = spec.get("securityContext") or {}
    options = _security_options(pod_ctx, container.get("securityContext") or {}, path)
    options += _resource_options(container.get("resources") or {}, path)
    volume_options, host_volumes = _volume_options(
        spec.get("volumes") or [], container.get("volumeMounts") or [], pod_ctx.get("fsGroup"), path
    )
    if "workingDir" in container:
        options += ["--workdir", container["workingDir"]]
    command = [*container.get("command", []), *container.get("args", [])]
    if container.get("args") and not container.get("command"):
        raise NotReproduced(f"{path}: args without command (the image's entrypoint) not reproduced")
    return ContainerRun(
        pod=pod_name,
        container=container["name"],
        image=container["image"],
        options=options + volume_options,
        env=environment(container, namespace, pod_name, index(objects)),
        ports=ports,
        probes={
            name: _probe(container[name], ports, f"{path}.{name}") for name in PROBES if name in container
        },
        command=command,
        host_volumes=host_volumes,
        stop_timeout_s=int(spec.get("terminationGracePeriodSeconds", 30)),
        pre_stop_sleep_s=_pre_stop_sleep(container.get("lifecycle") or {}, f"{path}.lifecycle"),
    )
