"""Where the Pulumi project is and which stacks it has."""

from pathlib import Path

import yaml

PROJECT_NAME = "venta"


class ProjectError(Exception):
    """No Venta project where the command looked."""


def _is_project(folder: Path) -> bool:
    try:
        doc = yaml.safe_load((folder / "Pulumi.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and doc.get("name") == PROJECT_NAME


def find_root(cwd: Path) -> Path:
    """The project folder: the working directory or a parent, else the checkout this package is in."""
    for folder in (cwd, *cwd.parents, Path(__file__).resolve().parent.parent):
        if _is_project(folder):
            return folder
    raise ProjectError(f"no Pulumi.yaml of project {PROJECT_NAME!r} in {cwd} or its parents")


def known_stacks(root: Path) -> list[str]:
    """Stacks that have settings: one `Pulumi.<stack>.yaml` each."""
    files = root.glob("Pulumi.*.yaml")
    return sorted(path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in files)


def render_dir(stack: str) -> str:
    """Where render mode writes a stack's manifests, relative to the project (git-ignored)."""
    return f"rendered/{stack}"
