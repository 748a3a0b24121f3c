"""The stacks' alert rules, checked and unit-tested by Prometheus' own promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from infra.observability.rules import RuleScope, alert_names, rule_file, rule_groups
from stacks.monitoring import DEV_THRESHOLDS, PROD_THRESHOLDS, AlertThresholds
from tests.observability.promtool_cases import CASES, NAMESPACES, NATS_SERVERS, SERVICES, promtool_test_file

THRESHOLDS: dict[str, AlertThresholds] = {"dev": DEV_THRESHOLDS, "prod": PROD_THRESHOLDS}
STACKS = tuple(THRESHOLDS)


def _scope(stack: str) -> RuleScope:
    return RuleScope(NAMESPACES[stack], SERVICES, THRESHOLDS[stack], nats_servers=NATS_SERVERS[stack])


def _run(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], cwd=cwd, capture_output=True, text=True, check=False)


def _write_rules(directory: Path, stack: str) -> Path:
    path = directory / f"{stack}.rules.yaml"
    path.write_text(yaml.safe_dump(rule_file(rule_groups(_scope(stack))), sort_keys=False))
    return path


@pytest.mark.parametrize("stack", STACKS)
def test_promtool_accepts_the_stack_rules(promtool: Path, tmp_path: Path, stack: str) -> None:
    rules = _write_rules(tmp_path, stack)
    count = sum(len(group["rules"]) for group in rule_groups(_scope(stack)))
    result = _run(promtool, "check", "rules", rules.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_check_rejects_a_broken_expression(promtool: Path, tmp_path: Path) -> None:
    groups = rule_groups(_scope("prod"))
    groups[0]["rules"][0] = {**groups[0]["rules"][0], "expr": "sum(rate(http_requests_total[5m])"}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(rule_file(groups)))
    result = _run(promtool, "check", "rules", "broken.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "unclosed left parenthesis" in result.stdout + result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_alerts_fire_and_stay_silent_as_expected(promtool: Path, tmp_path: Path, stack: str) -> None:
    rules = _write_rules(tmp_path, stack)
    tests = tmp_path / f"{stack}.test.yaml"
    tests.write_text(yaml.safe_dump(promtool_test_file(stack, rules.name), sort_keys=False))
    result = _run(promtool, "test", "rules", tests.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_reports_a_wrong_expectation(promtool: Path, tmp_path: Path) -> None:
    """The harness can fail: prod's texts expected from dev's rules are a mismatch promtool reports."""
    rules = _write_rules(tmp_path, "dev")
    wrong = promtool_test_file("prod", rules.name)
    # Prod's cases in dev's namespace: the series reach dev's rules, which judge them by dev's numbers.
    for test in wrong["tests"]:
        for series in test["input_series"]:
            series["series"] = series["series"].replace(NAMESPACES["prod"], NAMESPACES["dev"])
    (tmp_path / "wrong.test.yaml").write_text(yaml.safe_dump(wrong))
    result = _run(promtool, "test", "rules", "wrong.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "5% errors page in prod" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    names = alert_names(rule_groups(_scope("prod")))
    fires = {case.alertname for case in CASES if any(case.expect[stack] for stack in STACKS)}
    silent = {case.alertname for case in CASES if not all(case.expect[stack] for stack in STACKS)}
    assert set(names) <= fires, f"alerts no case sees firing: {sorted(set(names) - fires)}"
    assert set(names) <= silent, f"alerts no case sees silent: {sorted(set(names) - silent)}"


def test_some_case_tells_dev_from_prod() -> None:
    """At least one case per threshold family fires in prod and stays silent in dev."""
    prod_only = {case.alertname for case in CASES if case.expect["prod"] and not case.expect["dev"]}
    assert {
        "VentaHighErrorRate",
        "VentaHighLatencyP99",
        "VentaPodRestarting",
        "VentaJetStreamConsumerBehind",
        "VentaWebhookDeadLettersGrowing",
        "VentaVolumeFillingUp",
        "VentaHpaAtMaxReplicas",
    } <= prod_only


def test_every_case_speaks_for_every_stack() -> None:
    for case in CASES:
        assert set(case.expect) == set(STACKS) == set(case.severity), case.name
