"""Regenerates infra/observability/crds/*.json: the Prometheus Operator's CRD schemas, made strict.

The CRDs ship in the operator's Go module (example/prometheus-operator-crd/). Their openAPIV3Schema is
kept as JSON, with `additionalProperties: false` added wherever an object lists its properties, so a
misspelt field fails the same way it does for the built-in kinds (kubernetes-validate's -strict files).

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
KINDS = {"servicemonitors": "servicemonitor", "prometheusrules": "prometheusrule"}
OUT = Path(__file__).resolve().parents[2] / "infra" / "observability" / "crds"


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
