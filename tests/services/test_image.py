"""The services image and its command: hadolint, requirements in step with uv.lock, `python -m services`."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.servers import free_port
from services.__main__ import main as services_main

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "services" / "Dockerfile"
REQUIREMENTS = ROOT / "services" / "requirements.txt"
EXPORT = ["export", "--only-group", "services", "--no-emit-project", "--frozen", "--no-header", "--quiet"]


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


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


async def test_command_serves_until_sigterm_then_shuts_down_cleanly(servers: Any) -> None:
    port = free_port()
    env = {
        **os.environ, "SERVICE_NAME": "user-management", "PORT": str(port), "HOST": "127.0.0.1",
        "DATABASE_URL": await servers.new_database(), "JWT_PUBLIC_KEY": servers.public_pem,
        "JWT_SIGNING_SEED": servers.signing_seed, "LOG_LEVEL": "info",
    }  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 30
            while True:
                assert proc.returncode is None, "service exited during start-up"
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "service did not become ready"
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is the signal's.
    assert proc.returncode == -signal.SIGTERM
    lines = output.decode()
    assert '"msg":"stopping"' in lines and "Application shutdown complete" in lines
    assert all(line.startswith("{") for line in lines.splitlines() if line.strip()), "every log line is JSON"


@pytest.mark.parametrize("name", ["api-gateway", "user-management", "vendor-management", "search-discovery"])
def test_every_marketplace_service_has_an_app_factory(name: str) -> None:
    from importlib import import_module

    from services.catalog import SERVICES

    module = import_module(f"services.{SERVICES[name].package}.app")
    assert callable(module.create_app)
