"""Tools the tests build from Go modules with the scripts in scripts/toolchain/ (cached per machine)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "toolchain"


def built_tool(script: str, override: str) -> Path:
    """The binary at the environment variable `override` when set, else the one `script` builds (or
    finds in its cache) and names on its last line; a failed build fails the test, never skips it."""
    given = os.environ.get(override)
    if given:
        return Path(given)
    result = subprocess.run(["bash", str(SCRIPTS / script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{script} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def checked_bin(script: str, override: str, binaries: tuple[str, ...]) -> Path | None:
    """The folder of binaries `script` has built (`--check` names it, building nothing), or the one at
    the environment variable `override`; None unless it holds every one of `binaries`."""
    given = os.environ.get(override)
    if given:
        found: Path | None = Path(given)
    else:
        done = subprocess.run(["bash", str(SCRIPTS / script), "--check"], capture_output=True, text=True)
        found = Path(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    if found is None or not all((found / name).is_file() for name in binaries):
        return None
    return found
