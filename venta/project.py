"""Where the Pulumi project is and which stacks it has."""

from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_NAME = "venta"


@dataclass(frozen=True)
class PolicyPack:
    """A local policy pack run on every preview and update, with its config file if any."""

    path: str
    config: str | None = None


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


def _stack_file(root: Path, stack: str) -> dict[str, object]:
    try:
        doc = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def stack_profile(root: Path, stack: str) -> str:
    """The environment profile a stack resolves to, as `stacks.load` resolves it: `venta:profile`,
    else the stack's own name."""
    config = _stack_file(root, stack).get("config")
    profile = config.get("venta:profile") if isinstance(config, dict) else None
    return profile if isinstance(profile, str) and profile else stack


def stack_secrets_provider(root: Path, stack: str) -> str | None:
    """The secrets provider the stack file records: a KMS URL (`secretsprovider`), "passphrase" when
    it carries a passphrase salt, or None when the stack was never initialised with this file."""
    doc = _stack_file(root, stack)
    provider = doc.get("secretsprovider")
    if isinstance(provider, str) and provider not in ("", "default"):
        return provider
    return "passphrase" if doc.get("encryptionsalt") else None


def render_dir(stack: str) -> str:
    """Where render mode writes a stack's manifests, relative to the project (git-ignored)."""
    return f"rendered/{stack}"


def policy_pack(root: Path, stack: str) -> PolicyPack:
    """The repo's policy pack, with the stack's own settings for it when there are any."""
    config = root / "policy" / "config" / f"{stack}.json"
    return PolicyPack(str(root / "policy"), str(config) if config.is_file() else None)
