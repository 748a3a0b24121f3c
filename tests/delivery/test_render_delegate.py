"""`venta render` runs the real infra render command (the program under Pulumi's mocks)."""

import subprocess
import sys
from pathlib import Path

import yaml

from tests.delivery.repo_files import CATALOG_SERVICES, ROOT


def test_venta_render_writes_the_stacks_manifests_from_any_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "venta", "render", "dev", "--out", "manifests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = sorted((tmp_path / "manifests").glob("*.yaml"))
    kinds = [yaml.safe_load(path.read_text())["kind"] for path in written]
    assert kinds.count("Deployment") == len(CATALOG_SERVICES)
    assert "schema (Kubernetes 1.31, strict): valid" in result.stdout
    assert not (ROOT / "manifests").exists()
