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
