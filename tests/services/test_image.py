"""The services image and its command: shape, requirements in step with uv.lock, the CLI (hadolint runs
in tests/scan)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from services.__main__ import main as services_main

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "services" / "Dockerfile"
REQUIREMENTS = ROOT / "services" / "requirements.txt"
EXPORT = ["export", "--only-group", "services", "--no-emit-project", "--frozen", "--no-header", "--quiet"]


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert [name for _, name in stages] == ["build", "runtime"]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1)), (
        "base must be a pinned slim 3.11"
    )
    runtime = text.split(" AS runtime", 1)[1]
    assert "pip install" not in runtime, "dependencies are installed in the build stage only"
    assert "USER 10001:10001" in runtime and "--uid 10001" in runtime
    assert re.search(r'^\s+CMD \["python", "-c", ', runtime, re.M), "HEALTHCHECK must use the JSON form"
    assert 'CMD ["python", "-m", "services"]' in runtime and "SERVICE_NAME=${SERVICE}" in runtime
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1] == "!services/"


def test_requirements_are_in_step_with_the_lock() -> None:
    uv = shutil.which("uv")
    assert uv, "uv is installed by scripts/setup.sh"
    exported = subprocess.run([uv, *EXPORT], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    committed = "".join(
        line for line in REQUIREMENTS.read_text().splitlines(True) if not line.startswith("#")
    )
    exported = "".join(line for line in exported.splitlines(True) if not line.startswith("#"))
    assert committed == exported, (
        "run: uv export --only-group services --no-emit-project --frozen -o services/requirements.txt"
    )
    names = set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==", committed, re.M | re.I))
    assert {"fastapi", "uvicorn", "asyncpg", "aiohttp", "nats-py"} <= names
    assert not {name for name in names if name.startswith("pulumi") or name in {"pytest", "mypy", "ruff"}}


def test_command_refuses_unknown_services_and_names_missing_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DATABASE_URL", "JWT_PUBLIC_KEY", "JWT_SIGNING_SEED", "SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert services_main(["billing"]) == 2
    assert "known: api-gateway" in capsys.readouterr().err
    monkeypatch.setenv("SERVICE_NAME", "user-management")
    assert services_main([]) == 2
    err = capsys.readouterr().err
    assert "DATABASE_URL: is required but not set" in err and "JWT_SIGNING_SEED" in err
