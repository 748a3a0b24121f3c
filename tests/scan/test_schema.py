"""The scanned renders (prod pinned as a release pins it) validate strictly for Kubernetes 1.31, with
the validation the infra tests share (one per render per run); and the cached validator the render
command uses agrees with kubernetes-validate's own loader on what it refuses."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from infra.render import validate_manifest
from infra.render.capture import CapturedStack
from tests.infra.helpers import schema_errors
from tests.scan.conftest import STACKS


@pytest.mark.scan
@pytest.mark.parametrize("stack", STACKS)
def test_every_scanned_object_is_valid_kubernetes_1_31(scanned: dict[str, CapturedStack], stack: str) -> None:
    assert schema_errors(scanned[stack]) == []


@pytest.mark.scan
def test_both_validators_refuse_the_same_mistakes(rendered: dict[str, Path]) -> None:
    path = next(rendered["dev"].glob("*-deployment-*.yaml"))
    document = yaml.safe_load(path.read_text())
    kubernetes_validate.validate(document, "1.31", strict=True)  # raises if the written file is invalid
    assert validate_manifest(document) == []
    for breaks in ({"spec": {"replica": 2}}, {"spec": {"replicas": "two"}}):
        broken = copy.deepcopy(document)
        broken["spec"].update(breaks["spec"])
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, "1.31", strict=True)
        assert validate_manifest(broken), breaks
