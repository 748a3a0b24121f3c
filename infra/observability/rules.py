"""Alert rules of a stack as plain Prometheus rule groups (pure: no Pulumi, no I/O).

`rule_groups(...)` returns the `groups` list that goes both into a PrometheusRule's `spec` and, for
promtool, into a rule file. Every expression is pinned to the stack's namespace so that two stacks
watched by one Prometheus never answer for each other. A service is identified by its scrape job,
which the ServiceMonitors set to the Service's `app.kubernetes.io/name`, i.e. the service name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from infra.observability import metrics as m
from stacks.catalog import SERVICES
from stacks.monitoring import AlertThresholds

Rule = dict[str, Any]
Severity = Literal["critical", "warning"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TEXTS = Path(__file__).with_name("alerts.yaml")

# Durable JetStream consumers worth watching, by the service that owns them. A consumer belongs to a
# service when its durable name is the service name, optionally followed by `-<suffix>` (one per stream).
DEFAULT_CONSUMER_SERVICES: tuple[str, ...] = tuple(s.name for s in SERVICES if s.durable_consumer)


@dataclass(frozen=True)
class RuleScope:
    """What the rules of one stack watch."""

    namespace: str
    services: tuple[str, ...]
    thresholds: AlertThresholds
    runbook_base_url: str = "docs/runbooks.md"
    nats_servers: int = 1
    consumer_services: tuple[str, ...] = DEFAULT_CONSUMER_SERVICES
    # The data stores the stack runs: an external one has no exporter here, so no alert reads it.
    stores: tuple[str, ...] = ("postgres", "redis", "nats")

    def __post_init__(self) -> None:
        for name in (self.namespace, *self.services, *self.consumer_services):
            if not _DNS_LABEL.match(name):
                raise ValueError(f"{name!r} is not a Kubernetes name (lowercase letters, digits, '-')")
        unknown = set(self.thresholds.latency_p99_seconds_by_service) - set(self.services)
        if unknown:
            raise ValueError(
                f"latency thresholds name unknown services {sorted(unknown)}; known: {list(self.services)}"
            )


def _minutes(value: int) -> str:
    return f"{value}m"


def _severity(scope: RuleScope, wanted: Severity) -> Severity:
    # Stacks that do not page (dev) still show their alerts, but nothing in them wakes anyone up.
    return "critical" if wanted == "critical" and scope.thresholds.page else "warning"


@cache
def alert_texts() -> dict[str, dict[str, str]]:
    """Each alert's severity, summary and description (infra/observability/alerts.yaml)."""
    texts: dict[str, dict[str, str]] = yaml.safe_load(TEXTS.read_text())
    return texts


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Our `{name}` placeholders; Prometheus' own `{{ ... }}` are left for Prometheus."""
    return re.sub(r"\{([a-z_]+)\}", lambda match: values[match.group(1)], template)


def _alert(
    scope: RuleScope, name: str, expr: str, minutes: int, service: str | None = None, **values: object
) -> Rule:
    """An alerting rule; `service` labels alerts that are about one service (or data store) of the stack."""
    text = alert_texts()[name]
    rule: Rule = {"alert": name, "expr": expr}
    if minutes:
        rule["for"] = _minutes(minutes)
    rule["labels"] = {"severity": _severity(scope, text["severity"])}  # type: ignore[arg-type]
    if service is not None:
        rule["labels"].update(service=service, namespace=scope.namespace)
    filled = {
        "namespace": scope.namespace,
        "service": service or "",
        **{k: str(v) for k, v in values.items()},
    }
    rule["annotations"] = {
        "summary": _fill(text["summary"], filled),
        "description": _fill(text["description"], filled),
        "runbook_url": f"{scope.runbook_base_url}#{name.lower()}",
    }
    return rule


def _sel(scope: RuleScope, *matchers: str) -> str:
    """A label selector for the stack's namespace plus raw `matchers` such as `job="webhooks"`."""
    return "{" + ", ".join((f'namespace="{scope.namespace}"', *matchers)) + "}"


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def service_rules(scope: RuleScope, service: str) -> list[Rule]:
    """Error rate, p99 latency and reachability of one service."""
    t = scope.thresholds
    own = _sel(scope, f'job="{service}"')
    errors = _sel(scope, f'job="{service}"', 'status=~"5.."')
    window = f"{t.error_rate_minutes}m"
    total_rate = f"sum(rate({m.HTTP_REQUESTS}{own}[{window}]))"
    error_ratio = f"sum(rate({m.HTTP_REQUESTS}{errors}[{window}])) / {total_rate}"
    # Quiet services are skipped: one failure out of three requests is not an outage.
    failing = (
        f"({error_ratio}) > {t.error_rate_ratio} and {total_rate} > {t.error_rate_min_requests_per_second}"
    )
    overrides: dict[str, float] = dict(t.latency_p99_seconds_by_service.items())
    limit = overrides.get(service, t.latency_p99_seconds)
    p99 = f"histogram_quantile(0.99, sum by (le) (rate({m.HTTP_DURATION}_bucket{own}[5m])))"
    down = f"sum by (job) ({m.UP}{own}) == 0 or absent({m.UP}{own})"
    ratio = _percent(t.error_rate_ratio)
    return [
        _alert(
            scope,
            "VentaHighErrorRate",
            failing,
            t.error_rate_minutes,
            service,
            window=window,
            threshold=ratio,
        ),
        _alert(
            scope,
            "VentaHighLatencyP99",
            f"{p99} > {limit}",
            t.latency_minutes,
            service,
            threshold=f"{limit:g}",
        ),
        _alert(scope, "VentaServiceDown", down, t.service_down_minutes, service),
    ]


def workload_rules(scope: RuleScope) -> list[Rule]:
    """Autoscaling at its ceiling, crash-looping containers and volumes running out of space."""
    t = scope.thresholds
    ns = _sel(scope)
    on_hpa = "on (namespace, horizontalpodautoscaler)"
    # An HPA whose min equals its max is always "at max": that is a fixed size, not pressure.
    at_max = (
        f"({m.KSM_HPA_CURRENT}{ns} >= {on_hpa} {m.KSM_HPA_MAX}{ns})"
        f" and {on_hpa} ({m.KSM_HPA_MAX}{ns} > {on_hpa} {m.KSM_HPA_MIN}{ns})"
    )
    restarts = f"increase({m.KSM_RESTARTS}{ns}[1h]) > {t.restarts_per_hour}"
    filling = f"{m.KUBELET_VOLUME_AVAILABLE}{ns} / {m.KUBELET_VOLUME_CAPACITY}{ns} < {t.volume_free_ratio}"
    hpa_minutes, free = t.hpa_at_max_minutes, _percent(t.volume_free_ratio)
    return [
        _alert(scope, "VentaHpaAtMaxReplicas", at_max, hpa_minutes, duration=_minutes(hpa_minutes)),
        _alert(scope, "VentaPodRestarting", restarts, 0, threshold=t.restarts_per_hour),
        _alert(scope, "VentaVolumeFillingUp", filling, 5, threshold=free),
    ]


def datastore_rules(scope: RuleScope) -> list[Rule]:
    """PostgreSQL, Redis and NATS reachability, as their exporters see it. NATS counts its healthy
    servers: that also catches a server the exporter cannot reach at all, which reports no health
    series rather than a bad one; counting distinct `server_id`s keeps several exporter replicas from
    counting a server twice."""
    t = scope.thresholds
    ns, minutes = _sel(scope), t.datastore_down_minutes
    during = _minutes(minutes)
    healthy = f"count(count by (server_id) ({m.NATS_HEALTHZ}{ns} == 0)) or vector(0)"
    nats_down = f"({healthy}) < {scope.nats_servers}"
    stores = (("VentaPostgresDown", "postgres", m.PG_UP), ("VentaRedisDown", "redis", m.REDIS_UP))
    rules = [
        _alert(scope, name, f"{up}{ns} == 0 or absent({up}{ns})", minutes, store, duration=during)
        for name, store, up in stores
        if store in scope.stores
    ]
    if "nats" in scope.stores:
        rules.append(
            _alert(
                scope,
                "VentaNatsDown",
                nats_down,
                minutes,
                "nats",
                servers=scope.nats_servers,
                duration=during,
            )
        )
    return rules


def consumer_rule(scope: RuleScope, service: str) -> Rule:
    """A durable JetStream consumer of `service` with too many messages waiting."""
    t = scope.thresholds
    consumer = _sel(scope, 'consumer_name=~"' + service + '(-.+)?"')
    # The max over the stream's replicas: each server of the cluster reports the same consumer.
    limit = t.consumer_pending_messages
    behind = f"max by (stream_name, consumer_name) ({m.JS_CONSUMER_PENDING}{consumer}) > {limit}"
    return _alert(
        scope, "VentaJetStreamConsumerBehind", behind, t.consumer_lag_minutes, service, threshold=limit
    )


def dead_letter_rule(scope: RuleScope) -> Rule:
    """webhooks giving up on more deliveries than the threshold within 15 minutes."""
    limit = scope.thresholds.dead_letters_per_15_minutes
    webhooks = _sel(scope, 'job="webhooks"')
    growing = f"sum(increase({m.WEBHOOK_DEAD_LETTERS}{webhooks}[15m])) > {limit}"
    return _alert(scope, "VentaWebhookDeadLettersGrowing", growing, 0, "webhooks", threshold=limit)


def messaging_rules(scope: RuleScope) -> list[Rule]:
    """JetStream consumers falling behind, per consuming service (read by the NATS exporter, so only
    where the stack runs NATS), and webhook dead letters."""
    consumers = scope.consumer_services if "nats" in scope.stores else ()
    rules = [consumer_rule(scope, service) for service in consumers]
    if "webhooks" in scope.services:
        rules.append(dead_letter_rule(scope))
    return rules


def rule_groups(scope: RuleScope) -> list[dict[str, Any]]:
    """The stack's rule groups, in a stable order."""
    prefix = scope.namespace
    service_alerts = [rule for service in scope.services for rule in service_rules(scope, service)]
    return [
        {"name": f"{prefix}-services", "rules": service_alerts},
        {"name": f"{prefix}-workloads", "rules": workload_rules(scope)},
        {"name": f"{prefix}-datastores", "rules": datastore_rules(scope)},
        {"name": f"{prefix}-messaging", "rules": messaging_rules(scope)},
    ]


def alert_names(groups: Iterable[Mapping[str, Any]]) -> list[str]:
    """Distinct alert names in `groups`, in first-seen order (for runbook and docs checks)."""
    seen: dict[str, None] = {}
    for group in groups:
        for rule in group["rules"]:
            seen.setdefault(rule["alert"], None)
    return list(seen)


def rule_file(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A Prometheus rule file (what promtool reads); the same body as a PrometheusRule's spec."""
    return {"groups": list(groups)}
