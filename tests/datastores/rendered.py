"""What a stack renders for its data stores, read the way the cluster reads it: the objects with their
secrets in the clear, each workload's containers, the files their volumes mount (from the Secret or
ConfigMap the pod spec names, by its generated name), their commands and environment.

Pure functions over plain manifests, shared by the data-store tests and the image tests. Changes made
to run a file outside a cluster go through ``substitute``, which replaces exactly the values it is
given and fails when one is missing, so a test says every substitution it makes.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from infra.render.capture import CapturedStack
from infra.render.manifests import is_kubernetes_object, to_manifest
from tests.images.pods import environment, index
from tests.policy.captured import unwrap_secrets

Manifest = dict[str, Any]
NAME_LABEL = "app.kubernetes.io/name"


def cluster_objects(captured: CapturedStack) -> list[Manifest]:
    """The stack's Kubernetes objects, secrets in the clear (what the cluster would hold)."""
    return [
        to_manifest(dataclasses.replace(r, inputs=unwrap_secrets(r.inputs)))
        for r in captured.resources
        if is_kubernetes_object(r)
    ]


def find(objects: Iterable[Manifest], kind: str, name: str) -> Manifest:
    """The one object of ``kind`` whose ``app.kubernetes.io/name`` label is ``name``."""
    found = [
        o
        for o in objects
        if o["kind"] == kind and (o["metadata"].get("labels") or {}).get(NAME_LABEL) == name
    ]
    if len(found) != 1:
        raise LookupError(f"{len(found)} {kind} objects labelled {NAME_LABEL}={name}")
    return found[0]


def find_optional(objects: Iterable[Manifest], kind: str, name: str) -> Manifest | None:
    try:
        return find(objects, kind, name)
    except LookupError:
        return None


def pod_spec(workload: Manifest) -> Manifest:
    """The pod spec of a Deployment, StatefulSet or CronJob."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: Manifest = spec["template"]["spec"]
    return result


def container(workload: Manifest, name: str | None = None) -> Manifest:
    """A container or init container by name (default: the first container)."""
    spec = pod_spec(workload)
    every = [*(spec.get("initContainers") or []), *spec["containers"]]
    if name is None:
        first: Manifest = spec["containers"][0]
        return first
    named = [c for c in every if c["name"] == name]
    if len(named) != 1:
        raise LookupError(
            f"{workload['metadata']['name']} has no container {name!r}: {[c['name'] for c in every]}"
        )
    return named[0]


def object_data(obj: Manifest) -> dict[str, str]:
    """A ConfigMap's or Secret's values as text (a Secret's ``data`` is base64)."""
    values = dict(obj.get("data") or {})
    if obj["kind"] == "Secret":
        values = {k: base64.b64decode(v).decode() for k, v in values.items()}
    return {**values, **(obj.get("stringData") or {})}


def mounted_files(
    workload: Manifest, objects: Iterable[Manifest], container_name: str | None = None
) -> dict[PurePosixPath, str]:
    """Every file the pod's Secret and ConfigMap volumes put in one container, by path."""
    by_key = index(objects)
    namespace = workload["metadata"].get("namespace", "")
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes") or []}
    files: dict[PurePosixPath, str] = {}
    for mount in container(workload, container_name).get("volumeMounts") or []:
        volume = volumes.get(mount["name"], {})
        if "secret" in volume:
            key = ("Secret", namespace, volume["secret"]["secretName"])
        elif "configMap" in volume:
            key = ("ConfigMap", namespace, volume["configMap"]["name"])
        else:
            continue
        if key not in by_key:
            raise LookupError(f"{workload['metadata']['name']} mounts {key}, which the stack does not render")
        files |= {PurePosixPath(mount["mountPath"]) / k: text for k, text in object_data(by_key[key]).items()}
    return files


def mounted_under(files: Mapping[PurePosixPath, str], directory: str) -> dict[str, str]:
    """The files mounted directly in ``directory``, by file name."""
    return {path.name: text for path, text in files.items() if path.parent == PurePosixPath(directory)}


def command_file(workload: Manifest, objects: Iterable[Manifest], after: str | None = None) -> str:
    """The file the data store's command names (the argument after ``after``, else the argument that
    ends in ``.conf``), read from the Secret or ConfigMap the pod mounts there."""
    command = container(workload).get("command", [])
    named = (
        [command[command.index(after) + 1]]
        if after in command
        else [c for c in command if c.endswith(".conf")]
    )
    files = mounted_files(workload, objects)
    if len(named) != 1 or PurePosixPath(named[0]) not in files:
        raise ValueError(f"{workload['metadata']['name']}: command {command} names no file its volumes hold")
    return files[PurePosixPath(named[0])]


def container_env(
    workload: Manifest, objects: Iterable[Manifest], container_name: str | None = None, ordinal: int = 0
) -> dict[str, str]:
    """A container's environment as the kubelet builds it (a StatefulSet's pods are ``<name>-<n>``)."""
    meta = workload["metadata"]
    pod = f"{meta['name']}-{ordinal}"
    return environment(container(workload, container_name), meta.get("namespace", ""), pod, index(objects))


def shell_script(workload: Manifest, container_name: str | None = None) -> str:
    """The script of a container run as ``sh -c <script>`` (in its command or its args)."""
    entry = container(workload, container_name)
    argv = [*(entry.get("command") or []), *(entry.get("args") or [])]
    if argv[:2] != ["sh", "-c"] or len(argv) != 3:
        raise ValueError(f"{entry['name']} is not `sh -c <script>`: {argv}")
    script: str = argv[2]
    return script


def set_value(conf: str, key: str, value: str) -> str:
    """``conf`` with the value of its one ``key: value`` (NATS) or ``key value`` (Redis) line replaced."""
    pattern = re.compile(rf"^(\s*{re.escape(key)}(?:\s*[:=]\s*|\s+))\S+$", re.M)
    replaced, count = pattern.subn(lambda m: m[1] + value, conf)
    if count != 1:
        raise ValueError(f"the rendered config has {count} `{key}` lines; expected one")
    return replaced


def substitute(text: str, replacements: Mapping[str, str]) -> str:
    """``text`` with each key replaced by its value everywhere; a key that does not occur is an error
    (the rendered file changed, and the test must say what it changes now)."""
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"{old!r} does not occur in the rendered text")
        text = text.replace(old, new)
    return text
