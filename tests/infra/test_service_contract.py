"""Both sides of docs/contracts.md: the environment a stack gives each service satisfies that service's
own validated settings (services never import infra; this test reads both)."""

from __future__ import annotations

import importlib
import ipaddress
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from infra.render import CapturedStack
from infra.render.capture import SECRET_SIG
from stacks.catalog import SERVICES


def _environment(captured: CapturedStack, service: str) -> dict[str, str]:
    config = captured.by_name(f"venta-{service}-config").inputs["data"]
    secret = captured.by_name(f"venta-{service}-secret").inputs["stringData"]
    values = secret["value"] if SECRET_SIG in secret else secret
    return {**config, **values}


def _settings_from_stack(
    settings_class: Any, captured: CapturedStack, service: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The service's settings as its pod would build them: only what the stack sets may count."""
    for name in list(settings_class.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in _environment(captured, service).items():
        monkeypatch.setenv(name, value)
    return settings_class()


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_stack_environment_satisfies_the_service_settings(
    stack: str, spec: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: CapturedStack = request.getfixturevalue(f"{stack}_stack")
    env = _environment(captured, spec.name)
    module = importlib.import_module(f"services.{spec.name.replace('-', '_')}.settings")
    settings = _settings_from_stack(module.Settings, captured, spec.name, monkeypatch)
    assert settings.service_name == spec.name
    assert settings.port == 8000
    assert settings.internal_port == _container_ports(captured, spec.name)["internal"]
    # API docs only where a developer reaches them through `kubectl port-forward`, never in prod.
    assert settings.api_docs is (stack == "dev")
    assert settings.environment == stack
    if spec.database:
        assert settings.database_url.get_secret_value() == env["DATABASE_URL"]
    if spec.nats:
        assert settings.nats_user == spec.name and settings.nats_password.get_secret_value()
        assert settings.nats_servers == [f"nats://nats.venta-{stack}.svc:4222"]


def _container_ports(captured: CapturedStack, service: str) -> dict[str, int]:
    (deployment,) = [
        d.inputs
        for d in captured.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"]["name"] == service
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {port["name"]: int(port["containerPort"]) for port in container["ports"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_gateway_reaches_each_upstreams_probes_through_its_service(
    stack: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/health/upstreams calls the URL the gateway derives from its settings; in the cluster that is a
    Service port whose target is the container port the upstream serves /health/ready on."""
    from services.api_gateway.settings import Settings

    captured: CapturedStack = request.getfixturevalue(f"{stack}_stack")
    gateway = _settings_from_stack(Settings, captured, "api-gateway", monkeypatch)
    assert gateway.trusted_proxy_cidrs == ()  # neither committed stack trusts a proxy
    for spec in SERVICES:
        if spec.public_entry:
            continue
        url = urlsplit(gateway.upstream_internal_url(spec.name))
        service = captured.by_name(f"venta-{spec.name}-svc").inputs
        assert url.hostname == service["metadata"]["name"] == spec.name
        (port,) = [p for p in service["spec"]["ports"] if int(p["port"]) == url.port]
        container = _container_ports(captured, spec.name)
        served = int(_environment(captured, spec.name)["INTERNAL_PORT"])
        assert container[port["targetPort"]] == served == 9090, spec.name


def test_the_trusted_proxies_of_the_stack_reach_the_gateway_alone(
    captured_stack: Callable[..., CapturedStack], monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.api_gateway.settings import Settings

    listed = ["10.244.0.0/16", "fd00:10:244::/56"]
    gateway = {"host": "api.venta.example.com", "tlsSecret": "venta-gateway-tls", "trustedProxyCidrs": listed}
    captured = captured_stack("prod", {"venta:gateway": json.dumps(gateway)})
    for spec in SERVICES:
        given = "TRUSTED_PROXY_CIDRS" in _environment(captured, spec.name)
        assert given is spec.public_entry, spec.name
    gateway_settings = _settings_from_stack(Settings, captured, "api-gateway", monkeypatch)
    assert gateway_settings.trusted_proxy_cidrs == tuple(ipaddress.ip_network(cidr) for cidr in listed)
