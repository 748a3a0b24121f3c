"""Which Pulumi engine `venta` runs: one the user chose, a recent one on PATH, or the one setup provided.

`scripts/setup.sh` (through `scripts/toolchain/engine.sh`) records the engine it provided in
`.venv/pulumi-engine`: its bin folder on the first line, how it was obtained on the second. The
engine's folder also holds the plugins it needs (language host, kubernetes, random), which the
Pulumi CLI finds on PATH, so `venta` puts that folder first on the engine's PATH.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from venta.host import Host

RECORD = Path(".venv") / "pulumi-engine"
SETUP = "bash scripts/setup.sh"

# Runs `<pulumi> version`; returns its output, or None when it does not run.
VersionProbe = Callable[[Path], "str | None"]


class EngineNotFound(Exception):
    """No usable Pulumi engine; the message says what was found and what to do."""


@dataclass(frozen=True)
class PulumiEngine:
    bin_dir: Path  # holds `pulumi` and the plugins
    version: str  # as the CLI prints it: v3.274.1
    origin: str  # how venta found it, for the user

    def describe(self) -> str:
        return f"engine: pulumi {self.version} ({self.origin}), {self.bin_dir / 'pulumi'}"

    def path_with_engine(self, path: str) -> str:
        """A PATH on which this engine and its plugins come first."""
        return os.pathsep.join([str(self.bin_dir), *(p for p in path.split(os.pathsep) if p)])


def minimum_version() -> str:
    """The locked Python SDK's version: the Automation API refuses an older CLI."""
    return importlib.metadata.version("pulumi")


def _parts(version: str) -> tuple[int, ...]:
    core = version.strip().lstrip("v").split("-")[0].split("+")[0]
    try:
        return tuple(int(part) for part in core.split("."))
    except ValueError:
        return ()


def recent_enough(version: str, minimum: str) -> bool:
    """At or above `minimum` within its major version."""
    found, least = _parts(version), _parts(minimum)
    return bool(found) and found[0] == least[0] and found >= least


def run_version(pulumi: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(pulumi), "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def locate(host: Host, root: Path, probe: VersionProbe = run_version) -> PulumiEngine:
    """The engine to run, in order: `$PULUMI_HOME/bin`, a recent `pulumi` on PATH, setup's engine."""
    minimum = minimum_version()
    notes: list[str] = []
    for candidate, origin in _candidates(host, root):
        version = probe(candidate / "pulumi")
        if version is None:
            notes.append(f"{candidate / 'pulumi'} ({origin}) does not run")
        elif not recent_enough(version, minimum):
            notes.append(f"{candidate / 'pulumi'} ({origin}) is {version}, older than {minimum}")
        else:
            return PulumiEngine(bin_dir=candidate, version=version, origin=origin)
    found = "".join(f"\n  - {note}" for note in notes) or "\n  - none on PATH, none set up"
    raise EngineNotFound(
        f"venta: no usable Pulumi CLI (version {minimum} or newer within major {_parts(minimum)[0]}); "
        f"nothing was run.\nLooked at:{found}\n"
        f"Run `{SETUP}`: it uses a recent pulumi on PATH, else downloads the official release, else "
        "builds it from Go modules, and records it for venta."
    )


def _candidates(host: Host, root: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    pulumi_home = host.env.get("PULUMI_HOME")
    if pulumi_home and (Path(pulumi_home) / "bin" / "pulumi").is_file():
        found.append((Path(pulumi_home) / "bin", "PULUMI_HOME"))
    on_path = shutil.which("pulumi", path=host.env.get("PATH", os.defpath))
    if on_path:
        found.append((Path(on_path).resolve().parent, "found on PATH"))
    recorded = _recorded(root)
    if recorded:
        found.append(recorded)
    return found


def _recorded(root: Path) -> tuple[Path, str] | None:
    try:
        lines = (root / RECORD).read_text().splitlines()
    except OSError:
        return None
    if not lines or not lines[0].strip():
        return None
    how = lines[1].strip() if len(lines) > 1 else "provided by setup"
    return Path(lines[0].strip()), f"set up by {SETUP}: {how}"
