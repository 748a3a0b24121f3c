"""The rule builder and its thresholds, without promtool: structure, scoping, runbooks, strictness."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.observability.rules import RuleScope, alert_names, rule_groups
from infra.render.capture import stack_config
from stacks import SettingsError, load
from stacks.monitoring import DEV_THRESHOLDS, PROD_THRESHOLDS, AlertThresholds
from tests.observability.promtool_cases import SERVICES

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"
PROD = RuleScope("venta-prod", SERVICES, PROD_THRESHOLDS)
DEV = RuleScope("venta-dev", SERVICES, DEV_THRESHOLDS)


def _rules(scope: RuleScope) -> list[dict]:
    return [rule for group in rule_groups(scope) for rule in group["rules"]]


def _anchors(markdown: str) -> set[str]:
    # GitHub's heading anchors: lowercase, spaces to '-', punctuation dropped.
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("scope", [DEV, PROD], ids=["dev", "prod"])
def test_every_alert_explains_itself_and_links_its_runbook(scope: RuleScope) -> None:
    anchors = _anchors(RUNBOOKS.read_text())
    for rule in _rules(scope):
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
        page, anchor = annotations["runbook_url"].split("#")
        assert page == "docs/runbooks.md"
        assert anchor in anchors, f"{rule['alert']}: docs/runbooks.md has no section #{anchor}"


def test_per_service_alerts_name_their_service() -> None:
    for rule in _rules(PROD):
        service = rule["labels"].get("service")
        if service is None:
            # Workload alerts name the object from the series' own labels.
            assert "{{ $labels." in rule["annotations"]["description"], rule["alert"]
            continue
        assert service in rule["annotations"]["description"], rule["alert"]
        assert service in rule["annotations"]["summary"], rule["alert"]


@pytest.mark.parametrize("scope", [DEV, PROD], ids=["dev", "prod"])
def test_every_selector_is_pinned_to_the_stack_namespace(scope: RuleScope) -> None:
    for rule in _rules(scope):
        selectors = re.findall(r"[a-z_:]+\{[^}]*\}", rule["expr"])
        assert selectors, rule["alert"]
        for selector in selectors:
            assert f'namespace="{scope.namespace}"' in selector, f"{rule['alert']}: {selector}"


def test_each_service_gets_its_own_error_latency_and_down_alerts() -> None:
    per_service = {
        (rule["alert"], rule["labels"]["service"])
        for rule in _rules(PROD)
        if rule["alert"] in {"VentaHighErrorRate", "VentaHighLatencyP99", "VentaServiceDown"}
    }
    assert len(per_service) == 3 * len(SERVICES)


def test_the_alert_set_covers_the_issue() -> None:
    assert set(alert_names(rule_groups(PROD))) == {
        "VentaHighErrorRate",
        "VentaHighLatencyP99",
        "VentaServiceDown",
        "VentaHpaAtMaxReplicas",
        "VentaPodRestarting",
        "VentaVolumeFillingUp",
        "VentaPostgresDown",
        "VentaRedisDown",
        "VentaNatsDown",
        "VentaJetStreamConsumerBehind",
        "VentaWebhookDeadLettersGrowing",
    }


def test_dev_pages_nobody() -> None:
    assert {rule["labels"]["severity"] for rule in _rules(DEV)} == {"warning"}
    assert "critical" in {rule["labels"]["severity"] for rule in _rules(PROD)}


# (field, True when a lower value is stricter)
_STRICTER_WHEN_LOWER = {
    "error_rate_ratio": True,
    "error_rate_minutes": True,
    "latency_p99_seconds": True,
    "latency_minutes": True,
    "hpa_at_max_minutes": True,
    "restarts_per_hour": True,
    "datastore_down_minutes": True,
    "service_down_minutes": True,
    "consumer_pending_messages": True,
    "consumer_lag_minutes": True,
    "dead_letters_per_15_minutes": True,
    "volume_free_ratio": False,
}


@pytest.mark.parametrize("field", sorted(_STRICTER_WHEN_LOWER))
def test_prod_is_stricter_than_dev(field: str) -> None:
    prod, dev = getattr(PROD_THRESHOLDS, field), getattr(DEV_THRESHOLDS, field)
    assert (prod < dev) if _STRICTER_WHEN_LOWER[field] else (prod > dev), f"{field}: prod {prod}, dev {dev}"


def test_a_wrong_threshold_is_refused_naming_the_key() -> None:
    values = DEV_THRESHOLDS.model_dump(by_alias=True)
    with pytest.raises(ValidationError) as err:
        AlertThresholds.model_validate({**values, "errorRateRatio": 1.5, "latencyP99Second": 1})
    text = str(err.value)
    assert "errorRateRatio" in text and "less than or equal to 0.999" in text
    assert "latencyP99Second" in text and "Extra inputs are not permitted" in text


def test_a_per_service_ceiling_must_be_positive_and_name_a_service() -> None:
    values = PROD_THRESHOLDS.model_dump(by_alias=True)
    with pytest.raises(ValidationError) as err:
        AlertThresholds.model_validate({**values, "latencyP99SecondsByService": {"webhooks": -1, "web": 1.0}})
    assert [e["loc"] for e in err.value.errors()] == [
        ("latencyP99SecondsByService", "webhooks"),
        ("latencyP99SecondsByService", "web", "[key]"),
    ]


def test_a_stack_overrides_single_thresholds_over_its_profile() -> None:
    override = {"prometheusOperator": True, "thresholds": {"errorRateRatio": 0.05}}
    settings = load("prod", stack_config("prod", {"venta:monitoring": json.dumps(override)}))
    assert settings.monitoring.prometheus_operator is True
    assert settings.monitoring.thresholds == PROD_THRESHOLDS.model_copy(update={"error_rate_ratio": 0.05})
    assert load("dev", stack_config("dev")).monitoring.thresholds == DEV_THRESHOLDS


def test_bad_monitoring_settings_fail_at_load_with_every_problem() -> None:
    bad = {
        "prometheusOperater": True,
        "thresholds": {
            "errorRateRatio": 2,
            "restartsPerHour": "3",
            "latencyP99SecondsByService": {"serach": 1.0},
        },
    }
    with pytest.raises(SettingsError) as err:
        load("prod", stack_config("prod", {"venta:monitoring": json.dumps(bad)}))
    paths = {problem.path for problem in err.value.problems}
    assert paths == {
        "monitoring.prometheusOperater",
        "monitoring.thresholds.errorRateRatio",
        "monitoring.thresholds.restartsPerHour",
        "monitoring.thresholds.latencyP99SecondsByService.serach",
    }
    assert "prometheusOperator" in str(err.value)  # the right spelling is offered


def test_a_ceiling_for_an_unknown_service_is_refused() -> None:
    thresholds = PROD_THRESHOLDS.model_copy(update={"latency_p99_seconds_by_service": {"serach": 1.0}})
    with pytest.raises(ValueError, match=r"unknown services \['serach'\]"):
        RuleScope("venta-prod", SERVICES, thresholds)


def test_a_namespace_that_is_not_a_kubernetes_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes name"):
        RuleScope('venta"} or vector(1) #', SERVICES, PROD_THRESHOLDS)
