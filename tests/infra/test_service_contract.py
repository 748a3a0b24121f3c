"""Both sides of docs/contracts.md: the environment a stack gives each service satisfies that service's
own validated settings (services never import infra; this test reads both)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from infra.render import CapturedStack
from infra.render.capture import SECRET_SIG
from stacks.catalog import SERVICES


def _environment(captured: CapturedStack, service: str) -> dict[str, str]:
    config = captured.by_name(f"venta-{service}-config").inputs["data"]
    secret = captured.by_name(f"venta-{service}-secret").inputs["stringData"]
    values = secret["value"] if SECRET_SIG in secret else secret
    return {**config, **values}


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_stack_environment_satisfies_the_service_settings(
    stack: str, spec: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: CapturedStack = request.getfixturevalue(f"{stack}_stack")
    env = _environment(captured, spec.name)
    module = importlib.import_module(f"services.{spec.name.replace('-', '_')}.settings")
    for name in list(module.Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)  # only what the stack sets may count
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = module.Settings()
    assert settings.service_name == spec.name
    assert settings.port == 8000
    assert settings.environment == stack
    if spec.database:
        assert settings.database_url.get_secret_value() == env["DATABASE_URL"]
    if spec.nats:
        assert settings.nats_user == spec.name and settings.nats_password.get_secret_value()
        assert settings.nats_servers == [f"nats://nats.venta-{stack}.svc:4222"]
