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
from typing import Any, Literal

from infra.observability import metrics as m
from stacks.catalog import SERVICES
from stacks.monitoring import AlertThresholds

Rule = dict[str, Any]
Severity = Literal["critical", "warning"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

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


def _alert(
    scope: RuleScope,
    name: str,
    expr: str,
    *,
    minutes: int,
    severity: Severity,
    summary: str,
    description: str,
    service: str | None = None,
) -> Rule:
    """An alerting rule; `service` labels alerts that are about one service (or data store) of the stack."""
    rule: Rule = {"alert": name, "expr": expr}
    if minutes:
        rule["for"] = _minutes(minutes)
    rule["labels"] = {"severity": _severity(scope, severity)}
    if service is not None:
        rule["labels"].update(service=service, namespace=scope.namespace)
    rule["annotations"] = {
        "summary": summary,
        "description": description,
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
    overrides: dict[str, float] = dict(t.latency_p99_seconds_by_service.items())
    p99_limit = overrides.get(service, t.latency_p99_seconds)
    p99 = f"histogram_quantile(0.99, sum by (le) (rate({m.HTTP_DURATION}_bucket{own}[5m])))"
    return [
        _alert(
            scope,
            "VentaHighErrorRate",
            # Quiet services are skipped: one failure out of three requests is not an outage.
            f"({error_ratio}) > {t.error_rate_ratio}"
            f" and {total_rate} > {t.error_rate_min_requests_per_second}",
            minutes=t.error_rate_minutes,
            severity="critical",
            service=service,
            summary=f"{service} is failing requests",
            description=(
                f"{service} in {scope.namespace} answered {{{{ $value | humanizePercentage }}}} of its "
                f"requests with a 5xx over the last {window} (threshold {_percent(t.error_rate_ratio)})."
            ),
        ),
        _alert(
            scope,
            "VentaHighLatencyP99",
            f"{p99} > {p99_limit}",
            minutes=t.latency_minutes,
            severity="warning",
            service=service,
            summary=f"{service} is slow",
            description=(
                f"p99 response time of {service} in {scope.namespace} is {{{{ $value | humanizeDuration }}}} "
                f"(threshold {p99_limit:g}s)."
            ),
        ),
        _alert(
            scope,
            "VentaServiceDown",
            f"sum by (job) ({m.UP}{own}) == 0 or absent({m.UP}{own})",
            minutes=t.service_down_minutes,
            severity="critical",
            service=service,
            summary=f"{service} has no reachable pod",
            description=f"No pod of {service} in {scope.namespace} answered a metrics scrape.",
        ),
    ]


def workload_rules(scope: RuleScope) -> list[Rule]:
    """Autoscaling at its ceiling, crash-looping containers and volumes running out of space."""
    t = scope.thresholds
    ns = _sel(scope)
    on_hpa = "on (namespace, horizontalpodautoscaler)"
    return [
        _alert(
            scope,
            "VentaHpaAtMaxReplicas",
            # An HPA whose min equals its max is always "at max": that is a fixed size, not pressure.
            f"({m.KSM_HPA_CURRENT}{ns} >= {on_hpa} {m.KSM_HPA_MAX}{ns})"
            f" and {on_hpa} ({m.KSM_HPA_MAX}{ns} > {on_hpa} {m.KSM_HPA_MIN}{ns})",
            minutes=t.hpa_at_max_minutes,
            severity="warning",
            summary="{{ $labels.horizontalpodautoscaler }} cannot scale out any further",
            description=(
                "The HPA of {{ $labels.horizontalpodautoscaler }} in {{ $labels.namespace }} has run at its "
                f"maximum ({{{{ $value }}}} replicas) for {_minutes(t.hpa_at_max_minutes)}."
            ),
        ),
        _alert(
            scope,
            "VentaPodRestarting",
            f"increase({m.KSM_RESTARTS}{ns}[1h]) > {t.restarts_per_hour}",
            minutes=0,
            severity="warning",
            summary="{{ $labels.container }} keeps restarting",
            description=(
                "Container {{ $labels.container }} of pod {{ $labels.pod }} in {{ $labels.namespace }} "
                # increase() extrapolates to the window's edges: round to whole restarts for humans.
                'restarted {{ $value | printf "%.0f" }} times in the last hour '
                f"(threshold {t.restarts_per_hour})."
            ),
        ),
        _alert(
            scope,
            "VentaVolumeFillingUp",
            f"{m.KUBELET_VOLUME_AVAILABLE}{ns} / {m.KUBELET_VOLUME_CAPACITY}{ns} < {t.volume_free_ratio}",
            minutes=5,
            severity="warning",
            summary="{{ $labels.persistentvolumeclaim }} is running out of space",
            description=(
                "Volume {{ $labels.persistentvolumeclaim }} in {{ $labels.namespace }} has only "
                f"{{{{ $value | humanizePercentage }}}} free (threshold {_percent(t.volume_free_ratio)})."
            ),
        ),
    ]


def _store_down(scope: RuleScope, name: str, store: str, metric: str) -> Rule:
    t = scope.thresholds
    ns = _sel(scope)
    return _alert(
        scope,
        name,
        f"{metric}{ns} == 0 or absent({metric}{ns})",
        minutes=t.datastore_down_minutes,
        severity="critical",
        service=store,
        summary=f"{store} is down",
        description=(
            f"{store} in {scope.namespace} has not answered its exporter for "
            f"{_minutes(t.datastore_down_minutes)} (or the exporter itself is gone)."
        ),
    )


def nats_rule(scope: RuleScope) -> Rule:
    """Fewer healthy NATS servers than the stack runs. Counting the healthy ones also catches a
    server the exporter cannot reach at all, which reports no health series rather than a bad one;
    counting distinct `server_id`s keeps several exporter replicas from counting a server twice."""
    t = scope.thresholds
    healthy = f"count(count by (server_id) ({m.NATS_HEALTHZ}{_sel(scope)} == 0)) or vector(0)"
    return _alert(
        scope,
        "VentaNatsDown",
        f"({healthy}) < {scope.nats_servers}",
        minutes=t.datastore_down_minutes,
        severity="critical",
        service="nats",
        summary="nats is down",
        description=(
            f"Only {{{{ $value }}}} of {scope.nats_servers} nats servers in {scope.namespace} have reported "
            f"healthy for {_minutes(t.datastore_down_minutes)}."
        ),
    )


def datastore_rules(scope: RuleScope) -> list[Rule]:
    """PostgreSQL, Redis and NATS reachability, as their exporters see it."""
    return [
        _store_down(scope, "VentaPostgresDown", "postgres", m.PG_UP),
        _store_down(scope, "VentaRedisDown", "redis", m.REDIS_UP),
        nats_rule(scope),
    ]


def consumer_rule(scope: RuleScope, service: str) -> Rule:
    """A durable JetStream consumer of `service` with too many messages waiting."""
    t = scope.thresholds
    consumer = _sel(scope, 'consumer_name=~"' + service + '(-.+)?"')
    return _alert(
        scope,
        "VentaJetStreamConsumerBehind",
        # The max over the stream's replicas: each server of the cluster reports the same consumer.
        f"max by (stream_name, consumer_name) ({m.JS_CONSUMER_PENDING}{consumer})"
        f" > {t.consumer_pending_messages}",
        minutes=t.consumer_lag_minutes,
        severity="warning",
        service=service,
        summary=f"{service} is falling behind on {{{{ $labels.stream_name }}}}",
        description=(
            f"Consumer {{{{ $labels.consumer_name }}}} of {service} in {scope.namespace} has "
            f"{{{{ $value | humanize }}}} messages of stream {{{{ $labels.stream_name }}}} waiting "
            f"(threshold {t.consumer_pending_messages})."
        ),
    )


def dead_letter_rule(scope: RuleScope) -> Rule:
    """webhooks giving up on more deliveries than the threshold within 15 minutes."""
    t = scope.thresholds
    webhooks = _sel(scope, 'job="webhooks"')
    return _alert(
        scope,
        "VentaWebhookDeadLettersGrowing",
        f"sum(increase({m.WEBHOOK_DEAD_LETTERS}{webhooks}[15m])) > {t.dead_letters_per_15_minutes}",
        minutes=0,
        severity="warning",
        service="webhooks",
        summary="webhooks is giving up on deliveries",
        description=(
            f"webhooks in {scope.namespace} moved "
            '{{ $value | printf "%.0f" }} deliveries to dead '
            f"letters in the last 15 minutes (threshold {t.dead_letters_per_15_minutes})."
        ),
    )


def messaging_rules(scope: RuleScope) -> list[Rule]:
    """JetStream consumers falling behind, per consuming service, and webhook dead letters."""
    rules = [consumer_rule(scope, service) for service in scope.consumer_services]
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
