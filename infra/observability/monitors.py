"""Prometheus Operator objects as plain specs: ServiceMonitor and PrometheusRule bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

API_VERSION = "monitoring.coreos.com/v1"
# The scrape job is named after the Service's app.kubernetes.io/name: the service name the rules use.
JOB_LABEL = "app.kubernetes.io/name"


def service_monitor_spec(
    service_selector: Mapping[str, str], namespace: str, port: str, path: str = "/metrics"
) -> dict[str, Any]:
    return {
        "jobLabel": JOB_LABEL,
        "selector": {"matchLabels": dict(service_selector)},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [{"port": port, "path": path, "interval": "30s", "scrapeTimeout": "10s"}],
    }


def prometheus_rule_spec(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"groups": [dict(group) for group in groups]}
