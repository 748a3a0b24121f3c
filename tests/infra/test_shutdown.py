"""Every service pod of both stacks stops without losing a request: a preStop sleep while endpoints
update, then a grace period longer than everything the service does after SIGTERM (its own drain and
in-flight wait, as its settings read them from the stack's environment, and the cleanup)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from infra.render import CapturedStack
from services.catalog import SHUTDOWN
from stacks.catalog import SERVICES
from tests.infra.helpers import named
from tests.infra.test_service_contract import _environment


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_service_pods_sleep_before_sigterm_and_outlast_the_drain(
    stack: str, spec: Any, request: pytest.FixtureRequest
) -> None:
    captured: CapturedStack = request.getfixturevalue(f"{stack}_stack")
    pod = named(captured, "Deployment", spec.name)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # Longer than the few seconds kube-proxy and the Ingress take to drop a terminating endpoint.
    assert sleep >= 5

    # What the service itself does after SIGTERM, with the environment this stack gives it.
    env = _environment(captured, spec.name)
    fields = importlib.import_module(f"services.{spec.name.replace('-', '_')}.settings").Settings.model_fields
    drain = float(env.get("SHUTDOWN_DRAIN_SECONDS", fields["shutdown_drain_seconds"].default))
    in_flight = float(env.get("SHUTDOWN_GRACE_SECONDS", fields["shutdown_grace_seconds"].default))
    assert drain > 15, "longer than the gateway's pooled keep-alive, so no idle connection is cut"
    assert pod["terminationGracePeriodSeconds"] >= sleep + drain + in_flight + SHUTDOWN.cleanup


def test_the_pure_builder_leaves_the_callers_container_alone() -> None:
    from infra.builders.shutdown import core, drained_pod

    container = core.ContainerArgs(name="x", image="y")
    fields = drained_pod(container)
    assert container.lifecycle is None
    assert fields["containers"][0].lifecycle is not None and fields["containers"][0].name == "x"
