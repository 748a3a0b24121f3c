"""Regenerates infra/observability/crds/*.json: the Prometheus Operator's CRD schemas, made strict;
and builds the CRDs back from them, for a cluster the e2e tests install them into.

The CRDs ship in the operator's Go module (example/prometheus-operator-crd/). Their openAPIV3Schema is
kept as JSON, with `additionalProperties: false` added wherever an object lists its properties, so a
misspelt field fails the same way it does for the built-in kinds (kubernetes-validate's -strict files).
A cluster refuses that (a structural schema has properties or additionalProperties, not both), so
`crd_objects` takes exactly that back out.

    .venv/bin/python -m tests.observability.crd_schemas      # needs Go and the Go module proxy
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

MODULE = "github.com/prometheus-operator/prometheus-operator"
VERSION = "v0.85.0"
GROUP = "monitoring.coreos.com"
KINDS = {"servicemonitors": "servicemonitor", "prometheusrules": "prometheusrule"}
OUT = Path(__file__).resolve().parents[2] / "infra" / "observability" / "crds"
# The CRDs' names, as the operator's manifests declare them.
NAMES = {
    "servicemonitors": {"kind": "ServiceMonitor", "shortNames": ["smon"]},
    "prometheusrules": {"kind": "PrometheusRule", "shortNames": ["promrule"]},
}


def strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def structural(schema: Any) -> Any:
    """`strict` undone: no `additionalProperties: false` beside `properties` (which the upstream
    schemas never have, since a structural schema may not)."""
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: structural(value) for key, value in schema.items()}
    if "properties" in out and out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def crd_objects() -> list[dict[str, Any]]:
    """The operator's CustomResourceDefinitions this repo's stacks need, built from the stored schemas."""
    objects = []
    for plural, stem in KINDS.items():
        schema = structural(json.loads((OUT / f"{stem}-monitoring-v1.json").read_text()))
        names = NAMES[plural]
        objects.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.{GROUP}"},
                "spec": {
                    "group": GROUP,
                    "names": {
                        "kind": names["kind"],
                        "listKind": f"{names['kind']}List",
                        "plural": plural,
                        "singular": stem,
                        "shortNames": names["shortNames"],
                        "categories": ["prometheus-operator"],
                    },
                    "scope": "Namespaced",
                    "versions": [
                        {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
                    ],
                },
            }
        )
    return objects


def main() -> None:
    found = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"], capture_output=True, text=True, check=True
    )
    crd_dir = Path(json.loads(found.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    OUT.mkdir(parents=True, exist_ok=True)
    for plural, kind in KINDS.items():
        crd = yaml.safe_load((crd_dir / f"monitoring.coreos.com_{plural}.yaml").read_text())
        [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema["description"] = f"{crd['metadata']['name']} from {MODULE} {VERSION}, made strict"
        (OUT / f"{kind}-monitoring-v1.json").write_text(json.dumps(schema, sort_keys=True, indent=1) + "\n")


if __name__ == "__main__":
    main()
