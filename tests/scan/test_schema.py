"""Every rendered object against the Kubernetes 1.31 schemas, strictly (unknown fields rejected),
with kubernetes-validate's own loader: independent of the validator the render command uses."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.scan.conftest import STACKS


@pytest.mark.scan
@pytest.mark.parametrize("stack", STACKS)
def test_every_object_is_valid_kubernetes_1_31(rendered: dict[str, Path], stack: str) -> None:
    files = sorted(rendered[stack].glob("*.yaml"))
    errors = []
    kinds = set()
    for path in files:
        for document in yaml.safe_load_all(path.read_text()):
            kinds.add(document["kind"])
            try:
                kubernetes_validate.validate(document, "1.31", strict=True)
            except kubernetes_validate.ValidationError as error:
                errors.append(f"{path.name}: {error.message} at {'.'.join(map(str, error.path))}")
    assert errors == []
    assert {"Deployment", "StatefulSet", "Service", "NetworkPolicy", "ConfigMap", "Secret"} <= kinds


@pytest.mark.scan
def test_strict_validation_rejects_a_misspelt_field(rendered: dict[str, Path]) -> None:
    # Guards the test above against a validator that accepts anything.
    path = next(rendered["dev"].glob("*-deployment-*.yaml"))
    document = yaml.safe_load(path.read_text())
    document["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, "1.31", strict=True)
