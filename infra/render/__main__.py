"""`python -m infra.render <stack> [--out DIR]`: write one YAML file per object and print a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.render.capture import capture_stack
from infra.render.manifests import to_manifests
from infra.render.validate import validate_manifest
from stacks import SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.render", description=__doc__)
    parser.add_argument("stack", help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--out", type=Path, default=None, help="directory for the YAML files (default: rendered/<stack>)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. venta:images='{...}' (repeatable)",
    )
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    try:
        manifests = to_manifests(capture_stack(args.stack, overrides))
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    out = args.out or Path("rendered") / args.stack
    write(manifests, out)
    print(summary(manifests))
    errors = [e for m in manifests for e in validate_manifest(m)]
    print(
        f"\n{len(manifests)} objects written to {out}; schema (Kubernetes 1.31, strict): "
        f"{'valid' if not errors else f'{len(errors)} error(s)'}"
    )
    for problem in errors:
        print(f"  {problem}", file=sys.stderr)
    return 1 if errors else 0


def file_name(index: int, manifest: dict[str, Any]) -> str:
    return f"{index:03d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"


def write(manifests: list[dict[str, Any]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.yaml"):
        stale.unlink()  # a removed object must not linger from an earlier render
    for index, manifest in enumerate(manifests):
        (out / file_name(index, manifest)).write_text(yaml.safe_dump(manifest, sort_keys=False))


def summary(manifests: list[dict[str, Any]]) -> str:
    hpas = {
        m["spec"]["scaleTargetRef"]["name"]: f"{m['spec']['minReplicas']}-{m['spec']['maxReplicas']} (HPA)"
        for m in manifests
        if m["kind"] == "HorizontalPodAutoscaler"
    }
    rows = [("KIND", "NAME", "REPLICAS", "IMAGE")]
    for m in manifests:
        name = m["metadata"]["name"]
        spec = m.get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
        if not template:
            rows.append((m["kind"], name, "", ""))
            continue
        replicas = (
            hpas.get(name) or str(spec.get("replicas", "")) or ("scheduled" if m["kind"] == "CronJob" else "")
        )
        images = ", ".join(c["image"] for c in template["spec"]["containers"])
        rows.append((m["kind"], name, replicas, images))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    )


if __name__ == "__main__":
    raise SystemExit(main())
