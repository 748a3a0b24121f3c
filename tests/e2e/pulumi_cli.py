"""The real Pulumi CLI (the engine setup provides) on a throwaway copy of the project.

Each `PulumiProject` is a copy of the repository's project files in a temp dir, with its own file
backend, `PULUMI_HOME` and `HOME`, no kubeconfig and plugin downloads off: every run is offline and
nothing is written into the working tree (its `Pulumi.<stack>.yaml`, `rendered/`, `~/.pulumi`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from venta.engine_location import EngineNotFound, locate
from venta.host import Host

REPO = Path(__file__).resolve().parents[2]
# What the program, the policy pack and the venta command read; everything else stays behind.
PROJECT_FILES = ["Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py", "pyproject.toml"]
PROJECT_DIRS = ["stacks", "infra", "policy", "venta", "services"]
PASSPHRASE = "e2e-passphrase"
# The engine's bound on one CLI run here; a run that needs longer is a failure worth seeing.
RUN_TIMEOUT = 900


def toolchain_bin() -> Path | None:
    """The bin folder of the engine `venta` runs (venta.engine_location), or None when none is set up."""
    try:
        return locate(Host.current(), REPO).bin_dir
    except EngineNotFound:
        return None


class PulumiError(AssertionError):
    """A CLI run that exited non-zero, with its command line and output."""


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class PulumiProject:
    root: Path
    bin_dir: Path
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def copy_of_repo(cls, into: Path, bin_dir: Path) -> PulumiProject:
        root = into / "project"
        root.mkdir(parents=True)
        for name in PROJECT_FILES:
            shutil.copy2(REPO / name, root / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
        for name in PROJECT_DIRS:
            shutil.copytree(REPO / name, root / name, ignore=ignore)
        # Pulumi.yaml names `.venv` and the policy pack `../.venv`: the repo's locked environment.
        (root / ".venv").symlink_to(REPO / ".venv")
        for folder in ("home", "pulumi-home", "state"):
            (into / folder).mkdir()
        return cls(root=root, bin_dir=bin_dir)

    @property
    def state_dir(self) -> Path:
        return self.root.parent / "state"

    def env(self) -> dict[str, str]:
        keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
        path = [str(self.bin_dir), str(REPO / ".venv" / "bin"), "/usr/bin", "/bin"]
        # The language host picks the uv toolchain where it finds uv.lock above a program without
        # `toolchain:` (the policy pack), as the upstream host does; uv must then be on PATH.
        uv = shutil.which("uv")
        if uv:
            path.append(str(Path(uv).parent))
        return {
            **keep,
            "PATH": os.pathsep.join(path),
            "HOME": str(self.root.parent / "home"),
            "PULUMI_HOME": str(self.root.parent / "pulumi-home"),
            "PULUMI_BACKEND_URL": f"file://{self.state_dir}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run(self, *args: str, check: bool = True, label: str | None = None) -> Run:
        return self.run_command(["pulumi", *args, "--non-interactive"], check=check, label=label)

    def run_command(
        self,
        argv: list[str],
        *,
        check: bool = True,
        label: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Run:
        started = time.monotonic()
        done = subprocess.run(
            argv,
            cwd=self.root,
            env={**self.env(), **(env or {})},
            stdin=subprocess.DEVNULL,  # an inherited open stdin stalls the policy pack's start-up
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        result = Run(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        if label:
            self.timings[label] = result.seconds
        if check and done.returncode != 0:
            raise PulumiError(
                f"{' '.join(argv)} exited {done.returncode}\n--- stdout\n{done.stdout[-6000:]}"
                f"\n--- stderr\n{done.stderr[-4000:]}"
            )
        return result

    def set_config(self, stack: str, path: str, value: str) -> None:
        self.run("config", "set", "--stack", stack, "--path", path, value)

    def preview(self, stack: str, *extra: str, check: bool = True, label: str | None = None) -> Run:
        return self.run("preview", "--stack", stack, "--json", *extra, check=check, label=label)

    def export_state(self, stack: str, *, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "export", "--stack", stack] + (["--show-secrets"] if show_secrets else [])
        exported: dict[str, Any] = self.run(*args).json()
        return exported

    def state_file(self, stack: str) -> Path:
        """The file backend's checkpoint of `stack` (the raw bytes an attacker with the bucket sees)."""
        matches = list((self.state_dir / ".pulumi" / "stacks").rglob(f"{stack}.json"))
        if len(matches) != 1:
            raise AssertionError(f"expected one state file for {stack}, found {matches}")
        return matches[0]


def planned_steps(preview: Run) -> list[dict[str, Any]]:
    """The steps of a `preview --json` run, excluding the stack resource and default providers."""
    steps: list[dict[str, Any]] = preview.json().get("steps", [])
    skipped = ("pulumi:pulumi:Stack", "pulumi:providers:")
    return [s for s in steps if not urn_type_and_name(s["urn"])[0].startswith(skipped)]


def urn_type_and_name(urn: str) -> tuple[str, str]:
    parts = urn.split("::")
    return parts[2].split("$")[-1], parts[3]
