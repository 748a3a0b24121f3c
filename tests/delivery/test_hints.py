"""A failure whose cause the project knows gets its next step beside Pulumi's own message."""

from pathlib import Path

import pytest

from tests.delivery.conftest import make_host
from tests.delivery.fakes import RecordingEngine, RecordingStack
from venta.cli import main
from venta.hints import hint

# Pulumi's message for `venta up prod` on a cluster without the Prometheus Operator, as the real
# engine printed it (tests/e2e/test_cluster_monitoring.py).
MISSING_CRDS = """\
  kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition (venta-needs-crd-servicemonitors.monitoring.\
coreos.com-or-set-monitoring.prometheusOperator-false):
    error: resource 'servicemonitors.monitoring.coreos.com' does not exist"""
TURN_OFF = "`pulumi config set --path venta:monitoring.prometheusOperator false --stack prod`"


def run_failing(tmp_path: Path, message: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    host = make_host(tmp_path, kube_context="prod-cluster", passphrase="from-the-repository-secrets")
    stack = RecordingStack("prod", config={"venta:images.tag": "v1.0.0"}, fail_up_with=message)
    assert main(["up", "prod"], engine=RecordingEngine(stack), host=host) == 1
    captured = capsys.readouterr()
    assert "rollout: complete" not in captured.out
    return captured.err.strip().splitlines()


def test_a_cluster_without_the_operators_crds_names_the_setting_that_turns_them_off(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = run_failing(tmp_path, MISSING_CRDS, capsys)
    assert "\n".join(lines[:-1]) == f"venta: up prod failed:\n{MISSING_CRDS}"  # Pulumi's message, whole
    assert lines[-1].startswith("venta: the cluster has no servicemonitors.monitoring.coreos.com ")
    assert "prometheusrules" not in lines[-1]  # only what the engine found missing
    assert lines[-1].endswith(TURN_OFF)


def test_another_failure_gets_pulumis_message_alone(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    invalid = (
        'error: ServiceMonitor.monitoring.coreos.com "webhooks" is invalid: spec.endpoints: Required value'
    )
    assert run_failing(tmp_path, invalid, capsys) == ["venta: up prod failed:", invalid]


@pytest.mark.parametrize(
    ("message", "hinted"),
    [
        # Without the CRD reads (an older program), the API server refuses the kinds themselves.
        ('error: no matches for kind "ServiceMonitor" in version "monitoring.coreos.com/v1"', True),
        ("error: resource 'prometheusrules.monitoring.coreos.com' does not exist", True),
        ('error: configmaps "grafana" not found', False),
        ("error: update failed\n  timeout waiting for rollout", False),
    ],
)
def test_the_hint_follows_the_cause_not_the_wording_around_it(message: str, hinted: bool) -> None:
    found = hint(message, "shop-eu")
    assert (found is not None) is hinted
    if found:
        assert found.endswith("--path venta:monitoring.prometheusOperator false --stack shop-eu`")
