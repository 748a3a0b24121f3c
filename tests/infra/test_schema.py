"""Every rendered object validates strictly (unknown fields rejected) against the Kubernetes 1.31 schema."""

from __future__ import annotations

import copy

import pytest

from infra.render import CapturedStack, validate_manifest
from tests.infra.helpers import manifests, named, schema_errors


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_object_validates_for_1_31(stack: str, request: pytest.FixtureRequest) -> None:
    captured: CapturedStack = request.getfixturevalue(f"{stack}_stack")
    assert len(manifests(captured)) > 50 and schema_errors(captured) == []


def test_whole_numbers_are_integers(prod_stack: CapturedStack) -> None:
    def floats(value: object) -> int:
        if isinstance(value, dict):
            return sum(floats(v) for v in value.values())
        if isinstance(value, list):
            return sum(floats(v) for v in value)
        return int(isinstance(value, float))

    assert floats(manifests(prod_stack)) == 0


def test_validation_reports_every_error(dev_stack: CapturedStack) -> None:
    broken = copy.deepcopy(named(dev_stack, "Deployment", "webhooks"))
    broken["spec"]["replicaz"] = 2
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["periodSeconds"] = "ten"
    container["securityContext"]["runAsUsr"] = 1
    errors = validate_manifest(broken)
    assert len(errors) == 3, errors
    assert any("spec: Additional properties are not allowed ('replicaz'" in e for e in errors)
    assert any("livenessProbe.periodSeconds" in e for e in errors)
    assert any("'runAsUsr'" in e for e in errors)


def test_unknown_kind_is_an_error() -> None:
    assert validate_manifest({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "x"}}) == [
        "Gadget/x: no 1.31 schema for v1 Gadget"
    ]
