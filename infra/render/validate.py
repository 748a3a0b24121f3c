"""Strict schema validation of manifests for Kubernetes 1.31, reporting every error at once.

Uses the schemas bundled with kubernetes-validate (its `-strict` variants reject unknown fields), with
validators built once per kind: the library itself re-reads the files and stops at the first error.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

KUBERNETES_VERSION = "1.31"
SCHEMA_DIR = f"v{KUBERNETES_VERSION}.0-local-strict"


# Strict schemas of the custom resources the stacks create (the Prometheus Operator's, see
# tests/observability/crd_schemas.py), same file naming as the bundled ones.
CUSTOM_SCHEMA_DIR = Path(__file__).resolve().parents[1] / "observability" / "crds"


def _schema_file(name: str) -> Any:
    root = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema", SCHEMA_DIR, name)
    if not root.is_file() and (CUSTOM_SCHEMA_DIR / name).is_file():
        return json.loads((CUSTOM_SCHEMA_DIR / name).read_text())
    return json.loads(root.read_text())


@cache
def _registry() -> Registry:
    return Resource.from_contents(_schema_file("_definitions.json")) @ Registry()


@cache
def validator_for(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    # rbac.authorization.k8s.io/v1 -> rbac-v1; v1 -> v1
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = _schema_file(f"{kind.lower()}-{group}.json")
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def validate_manifest(manifest: dict[str, Any]) -> list[str]:
    """Every schema error as `<Kind>/<name>: <path>: <message>`; an empty list means valid."""
    kind, name = manifest.get("kind", "?"), manifest.get("metadata", {}).get("name", "?")
    try:
        validator = validator_for(manifest["apiVersion"], kind)
    except (KeyError, FileNotFoundError):
        return [f"{kind}/{name}: no {KUBERNETES_VERSION} schema for {manifest.get('apiVersion')} {kind}"]
    return [
        f"{kind}/{name}: {'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    ]
