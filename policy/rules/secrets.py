"""Secrets stay in Secrets: not in env literals, not in ConfigMaps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.constants import NOT_SECRET_NAME, SECRET_NAME, SECRET_VALUE
from policy.model import EMPTY, Resource, as_list, as_map, container_label, containers


def looks_secret(name: str, value: Any) -> bool:
    """True when a non-empty value sits under a secret-sounding name or looks like a credential."""
    text = "" if value is None else str(value)
    if not text:
        return False
    if SECRET_NAME.search(name) and not NOT_SECRET_NAME.search(name):
        return True
    return any(pattern.search(text) for pattern in SECRET_VALUE)


def check_no_secret_env_literals(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in containers(resource):
        for index, env in enumerate(as_list(c.spec.get("env"))):
            env = as_map(env)
            name = str(env.get("name", ""))
            if "value" in env and looks_secret(name, env.get("value")):
                out.append(
                    f"{container_label(resource, c)}: {c.path}.env[{index}] ({name}) carries a "
                    "secret-looking literal value; fix: move it into a Secret and use "
                    "valueFrom.secretKeyRef (or envFrom.secretRef)"
                )
    return out


def check_no_credentials_in_configmap(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    if resource.kind != "ConfigMap":
        return []
    data = as_map(resource.props.get("data"))
    return [
        f"{resource.label}: data.{key} looks like a credential; fix: move it into a Secret (ConfigMaps are "
        "readable by anyone who can read the namespace's config and are not encrypted)"
        for key in sorted(data)
        if looks_secret(str(key), data[key])
    ]
