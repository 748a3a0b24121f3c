"""Synthetic series and the alerts each stack must (or must not) raise on them.

Each `Case` is written once and turned into one promtool `tests:` entry per stack, with the series
placed in that stack's namespace. `expect` maps a stack to the alerts promtool must see firing at
`eval_time`; a stack mapped to `[]` must stay silent. Expected labels and texts are written out by
hand: they are what an on-call engineer would read, not a copy of the builder's strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stacks.catalog import SERVICE_NAMES

NAMESPACES = {"dev": "venta-dev", "prod": "venta-prod"}
# NATS servers each stack runs (the profiles: one in dev, a cluster of three in prod).
NATS_SERVERS = {"dev": 1, "prod": 3}
SERVICES: tuple[str, ...] = tuple(SERVICE_NAMES)


@dataclass(frozen=True)
class Series:
    metric: str
    labels: Mapping[str, str]
    values: str  # promtool's expanding notation, one sample per minute

    def render(self, namespace: str) -> dict[str, str]:
        labels = {"namespace": namespace, **self.labels}
        body = ", ".join(f'{key}="{value}"' for key, value in labels.items())
        return {"series": f"{self.metric}{{{body}}}", "values": self.values}


@dataclass(frozen=True)
class Alert:
    """One firing alert: its labels beyond `namespace` (added per stack) and its two texts.

    `{ns}` in a text stands for the stack's namespace.
    """

    labels: Mapping[str, str]
    summary: str
    description: str


@dataclass(frozen=True)
class Case:
    name: str
    alertname: str
    eval_time: str
    series: Sequence[Series]
    expect: Mapping[str, Sequence[Alert]]
    # Severity per stack for the firing alerts (critical alerts do not page in dev).
    severity: Mapping[str, str] = field(default_factory=lambda: {"dev": "warning", "prod": "warning"})


PAGING = {"dev": "warning", "prod": "critical"}


def _http(service: str, status: str, values: str) -> Series:
    labels = {"job": service, "method": "GET", "path": "/api/items/{item_id}", "status": status}
    return Series("http_requests_total", labels, values)


def _buckets(service: str, counts: Mapping[str, str]) -> list[Series]:
    base = {"job": service, "method": "GET", "path": "/api/items/{item_id}"}
    return [Series("http_request_duration_seconds_bucket", {**base, "le": le}, v) for le, v in counts.items()]


def _up(values_by_service: Mapping[str, str]) -> list[Series]:
    return [
        Series("up", {"job": service, "instance": f"{service}:9090"}, values)
        for service, values in values_by_service.items()
    ]


def _error_alert(service: str, share: str, window: str, threshold: str) -> Alert:
    return Alert(
        {"service": service},
        f"{service} is failing requests",
        f"{service} in {{ns}} answered {share} of its requests with a 5xx over the last {window} "
        f"(threshold {threshold}).",
    )


def _latency_alert(service: str, p99: str, threshold: str) -> Alert:
    return Alert(
        {"service": service},
        f"{service} is slow",
        f"p99 response time of {service} in {{ns}} is {p99} (threshold {threshold}).",
    )


def _down_alert(service: str) -> Alert:
    return Alert(
        {"service": service, "job": service},
        f"{service} has no reachable pod",
        f"No pod of {service} in {{ns}} answered a metrics scrape.",
    )


def _store_alert(store: str, minutes: str, extra: Mapping[str, str] | None = None) -> Alert:
    return Alert(
        {"service": store, **(extra or {})},
        f"{store} is down",
        f"{store} in {{ns}} has not answered its exporter for {minutes} (or the exporter itself is gone).",
    )


def _consumer_alert(service: str, consumer: str, stream: str, pending: str, threshold: str) -> Alert:
    return Alert(
        {"service": service, "consumer_name": consumer, "stream_name": stream},
        f"{service} is falling behind on {stream}",
        f"Consumer {consumer} of {service} in {{ns}} has {pending} messages of stream {stream} waiting "
        f"(threshold {threshold}).",
    )


_ALL_UP = {service: "1x20" for service in SERVICES}
_KSM = {"job": "kube-state-metrics"}
_HPA = {**_KSM, "horizontalpodautoscaler": "geolocation"}
_PVC = {"persistentvolumeclaim": "data-postgres-0"}


def _nats_health(exporter_pod: str, server: str, values: str) -> Series:
    labels = {"job": "nats-exporter", "pod": exporter_pod, "server_id": server}
    return Series("gnatsd_healthz_status", labels, values)


def _hpa(current: str, maximum: str, minimum: str) -> list[Series]:
    return [
        Series("kube_horizontalpodautoscaler_status_current_replicas", _HPA, current),
        Series("kube_horizontalpodautoscaler_spec_max_replicas", _HPA, maximum),
        Series("kube_horizontalpodautoscaler_spec_min_replicas", _HPA, minimum),
    ]


_P99_750MS = {"0.25": "0+900x30", "0.5": "0+980x30", "1": "0+1000x30", "+Inf": "0+1000x30"}

CASES: tuple[Case, ...] = (
    Case(
        "5% errors page in prod, stay under dev's 10%",
        "VentaHighErrorRate",
        "12m",
        [_http("user-management", "200", "0+570x20"), _http("user-management", "500", "0+30x20")],
        {"prod": [_error_alert("user-management", "5%", "5m", "2%")], "dev": []},
        PAGING,
    ),
    Case(
        "20% errors fire in both stacks, over each stack's window",
        "VentaHighErrorRate",
        "25m",
        [_http("search-discovery", "200", "0+400x30"), _http("search-discovery", "503", "0+100x30")],
        {
            "prod": [_error_alert("search-discovery", "20%", "5m", "2%")],
            "dev": [_error_alert("search-discovery", "20%", "10m", "10%")],
        },
        PAGING,
    ),
    Case(
        "errors that just started are pending, not firing",
        "VentaHighErrorRate",
        "3m",
        [_http("search-discovery", "200", "0+400x30"), _http("search-discovery", "503", "0+100x30")],
        {"prod": [], "dev": []},
    ),
    Case(
        "a quiet service failing 3 requests a minute is below the traffic floor",
        "VentaHighErrorRate",
        "20m",
        [_http("vendor-management", "500", "0+3x30")],
        {"prod": [], "dev": []},
    ),
    Case(
        "p99 of 750ms is slow in prod only",
        "VentaHighLatencyP99",
        "15m",
        _buckets("vendor-management", _P99_750MS),
        {"prod": [_latency_alert("vendor-management", "750ms", "0.5s")], "dev": []},
    ),
    Case(
        "file-management has its own, higher p99 ceiling in prod",
        "VentaHighLatencyP99",
        "15m",
        _buckets("file-management", _P99_750MS),
        {"prod": [], "dev": []},
    ),
    Case(
        "p99 of 3.75s is slow in both stacks",
        "VentaHighLatencyP99",
        "25m",
        _buckets("real-time", {"1": "0+900x30", "2.5": "0+980x30", "5": "0+1000x30", "+Inf": "0+1000x30"}),
        {
            "prod": [_latency_alert("real-time", "3.75s", "0.5s")],
            "dev": [_latency_alert("real-time", "3.75s", "2s")],
        },
    ),
    Case(
        "geolocation failing its scrapes for 5 minutes is down in prod, still pending in dev",
        "VentaServiceDown",
        "5m",
        _up({**_ALL_UP, "geolocation": "0x20"}),
        {"prod": [_down_alert("geolocation")], "dev": []},
        PAGING,
    ),
    Case(
        "a service no longer scraped at all is down",
        "VentaServiceDown",
        "15m",
        _up({s: v for s, v in _ALL_UP.items() if s != "api-gateway"}),
        {"prod": [_down_alert("api-gateway")], "dev": [_down_alert("api-gateway")]},
        PAGING,
    ),
    Case(
        "every service answering its scrapes raises nothing",
        "VentaServiceDown",
        "15m",
        _up(_ALL_UP),
        {"prod": [], "dev": []},
    ),
    Case(
        "an HPA pinned at its maximum for 17 minutes: prod warns, dev waits for 30",
        "VentaHpaAtMaxReplicas",
        "17m",
        _hpa("10x30", "10x30", "3x30"),
        {
            "prod": [
                Alert(
                    # Matching on (namespace, horizontalpodautoscaler) keeps only those labels.
                    {"horizontalpodautoscaler": "geolocation"},
                    "geolocation cannot scale out any further",
                    "The HPA of geolocation in {ns} has run at its maximum (10 replicas) for 15m.",
                )
            ],
            "dev": [],
        },
    ),
    Case(
        "an HPA below its maximum is fine",
        "VentaHpaAtMaxReplicas",
        "40m",
        _hpa("9x45", "10x45", "3x45"),
        {"prod": [], "dev": []},
    ),
    Case(
        "an HPA with min = max is a fixed size, not pressure",
        "VentaHpaAtMaxReplicas",
        "40m",
        _hpa("1x45", "1x45", "1x45"),
        {"prod": [], "dev": []},
    ),
    Case(
        "4 restarts in an hour: over prod's 3, under dev's 6",
        "VentaPodRestarting",
        "70m",
        [
            Series(
                "kube_pod_container_status_restarts_total",
                {**_KSM, "pod": "webhooks-6c9f7-x2x9q", "container": "webhooks"},
                "0x60 1 2 3 4 4 4 4 4 4 4",
            )
        ],
        {
            "prod": [
                Alert(
                    {**_KSM, "pod": "webhooks-6c9f7-x2x9q", "container": "webhooks"},
                    "webhooks keeps restarting",
                    "Container webhooks of pod webhooks-6c9f7-x2x9q in {ns} restarted 4 times in the last "
                    "hour (threshold 3).",
                )
            ],
            "dev": [],
        },
    ),
    Case(
        "postgres_exporter reporting pg_up 0",
        "VentaPostgresDown",
        "7m",
        [Series("pg_up", {"job": "postgres-exporter"}, "0x10")],
        {
            "prod": [_store_alert("postgres", "1m", {"job": "postgres-exporter"})],
            "dev": [_store_alert("postgres", "5m", {"job": "postgres-exporter"})],
        },
        PAGING,
    ),
    Case(
        "PostgreSQL answering its exporter",
        "VentaPostgresDown",
        "7m",
        [Series("pg_up", {"job": "postgres-exporter"}, "1x10")],
        {"prod": [], "dev": []},
    ),
    Case(
        "Redis answering its exporter",
        "VentaRedisDown",
        "7m",
        [Series("redis_up", {"job": "redis-exporter"}, "1x10")],
        {"prod": [], "dev": []},
    ),
    Case(
        "no redis_up at all: Redis or its exporter is gone",
        "VentaRedisDown",
        "7m",
        [Series("pg_up", {"job": "postgres-exporter"}, "1x10")],
        {"prod": [_store_alert("redis", "1m")], "dev": [_store_alert("redis", "5m")]},
        PAGING,
    ),
    Case(
        "one NATS server unhealthy, one unreachable: prod runs 3, dev's single server is fine",
        "VentaNatsDown",
        "3m",
        [
            # Two exporter pods report the same healthy server: it still counts once.
            _nats_health("a", "nats-0", "0x10"),
            _nats_health("b", "nats-0", "0x10"),
            _nats_health("a", "nats-1", "1x10"),
        ],
        {
            "prod": [
                Alert(
                    {"service": "nats"},
                    "nats is down",
                    "Only 1 of 3 nats servers in {ns} have reported healthy for 1m.",
                )
            ],
            "dev": [],
        },
        PAGING,
    ),
    Case(
        "no NATS health at all: the server or its exporter is gone",
        "VentaNatsDown",
        "10m",
        [Series("pg_up", {"job": "postgres-exporter"}, "1x10")],
        {
            "prod": [
                Alert(
                    {"service": "nats"},
                    "nats is down",
                    "Only 0 of 3 nats servers in {ns} have reported healthy for 1m.",
                )
            ],
            "dev": [
                Alert(
                    {"service": "nats"},
                    "nats is down",
                    "Only 0 of 1 nats servers in {ns} have reported healthy for 5m.",
                )
            ],
        },
        PAGING,
    ),
    Case(
        "search-discovery 500 messages behind: over prod's 100, under dev's 1000",
        "VentaJetStreamConsumerBehind",
        "10m",
        [
            Series(
                "jetstream_consumer_num_pending",
                {"stream_name": "VENDORS", "consumer_name": "search-discovery", "server_id": sid},
                "500x15",
            )
            for sid in ("nats-0", "nats-1")
        ],
        {
            "prod": [_consumer_alert("search-discovery", "search-discovery", "VENDORS", "500", "100")],
            "dev": [],
        },
    ),
    Case(
        "webhooks' LOCATIONS consumer 5000 behind, and a consumer of nobody we watch",
        "VentaJetStreamConsumerBehind",
        "20m",
        [
            Series(
                "jetstream_consumer_num_pending",
                {"stream_name": "LOCATIONS", "consumer_name": "webhooks-locations"},
                "5000x25",
            ),
            Series(
                "jetstream_consumer_num_pending",
                {"stream_name": "LOCATIONS", "consumer_name": "analytics"},
                "5000x25",
            ),
        ],
        {
            "prod": [_consumer_alert("webhooks", "webhooks-locations", "LOCATIONS", "5k", "100")],
            "dev": [_consumer_alert("webhooks", "webhooks-locations", "LOCATIONS", "5k", "1000")],
        },
    ),
    Case(
        "15 dead letters in 15 minutes across two pods: over prod's 5, under dev's 20",
        "VentaWebhookDeadLettersGrowing",
        "20m",
        [
            Series("webhook_dead_letters_total", {"job": "webhooks", "pod": "webhooks-a"}, "0+1x20"),
            Series("webhook_dead_letters_total", {"job": "webhooks", "pod": "webhooks-b"}, "0x20"),
        ],
        {
            "prod": [
                Alert(
                    {"service": "webhooks"},
                    "webhooks is giving up on deliveries",
                    "webhooks in {ns} moved 15 deliveries to dead letters in the last 15 minutes "
                    "(threshold 5).",
                )
            ],
            "dev": [],
        },
    ),
    Case(
        "a volume with 15% free: under prod's 20%, over dev's 10%",
        "VentaVolumeFillingUp",
        "10m",
        [
            Series("kubelet_volume_stats_available_bytes", _PVC, "15e9x15"),
            Series("kubelet_volume_stats_capacity_bytes", _PVC, "100e9x15"),
        ],
        {
            "prod": [
                Alert(
                    _PVC,
                    "data-postgres-0 is running out of space",
                    "Volume data-postgres-0 in {ns} has only 15% free (threshold 20%).",
                )
            ],
            "dev": [],
        },
    ),
)


def runbook_url(alertname: str) -> str:
    return f"docs/runbooks.md#{alertname.lower()}"


def promtool_test_file(stack: str, rule_file: str) -> dict[str, Any]:
    """A promtool unit-test file holding every case, as seen by `stack`."""
    namespace = NAMESPACES[stack]
    tests = []
    for case in CASES:
        expected = [
            {
                "exp_labels": {
                    "severity": case.severity[stack],
                    "namespace": namespace,
                    **alert.labels,
                },
                "exp_annotations": {
                    "summary": alert.summary,
                    "description": alert.description.replace("{ns}", namespace),
                    "runbook_url": runbook_url(case.alertname),
                },
            }
            for alert in case.expect[stack]
        ]
        tests.append(
            {
                "name": f"{stack}: {case.name}",
                "interval": "1m",
                "input_series": [series.render(namespace) for series in case.series],
                "alert_rule_test": [
                    {"eval_time": case.eval_time, "alertname": case.alertname, "exp_alerts": expected}
                ],
            }
        )
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}
