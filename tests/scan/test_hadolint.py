"""hadolint on every Dockerfile of the repo: clean, no ignored rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.scan.conftest import REPO

HADOLINT = Path(sys.executable).parent / "hadolint"
SKIPPED_DIRS = {".venv", ".venv-scan", ".git", "node_modules", "build", "rendered"}


def dockerfiles() -> list[Path]:
    found = [
        p
        for p in REPO.rglob("*Dockerfile*")
        if p.is_file() and not SKIPPED_DIRS & set(p.relative_to(REPO).parts)
    ]
    return sorted(found)


@pytest.mark.scan
def test_the_service_image_has_a_dockerfile() -> None:
    # docs/contracts.md: one multi-stage services/Dockerfile builds every service image.
    assert REPO / "services" / "Dockerfile" in dockerfiles()


@pytest.mark.scan
@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: str(p.relative_to(REPO)))
def test_dockerfile_is_clean(dockerfile: Path) -> None:
    assert HADOLINT.exists(), f"{HADOLINT} is missing: run `bash scripts/setup.sh`"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.scan
def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    # Guards the test above against a linter that passes anything.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install fastapi\n")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "DL3007" in result.stdout
