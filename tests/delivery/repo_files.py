"""Read the repo's delivery files the way the tools that run them do."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from services.catalog import SERVICES

ROOT = Path(__file__).resolve().parents[2]
# The one list of services (services/catalog.py), in its order.
CATALOG_SERVICES = list(SERVICES)
WORKFLOWS = ROOT / ".github" / "workflows"


def load_yaml_strings(path: Path) -> Any:
    """YAML with every scalar kept as a string: `on:` stays "on" (PyYAML's default reads it as True)."""
    return yaml.load(path.read_text(), Loader=yaml.BaseLoader)


def workflow(name: str) -> dict[str, Any]:
    doc = load_yaml_strings(WORKFLOWS / name)
    assert isinstance(doc, dict)
    return doc


def readme_fresh_machine_commands() -> list[str]:
    """The commands of the README's "On a fresh machine" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def stack_names() -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


def check_schema(builtin_schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema with one of the schemas it ships (e.g. `vendor.compose-spec`)."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", builtin_schema, *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, check=False)
