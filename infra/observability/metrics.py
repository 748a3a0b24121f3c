"""Metric names the alert rules and dashboards read, and who exports each.

The services register the `SERVICE_*` names (tests check them against `services/`); everything else
comes from components the cluster or this stack runs, at the versions pinned in `exporters.py`.
"""

from __future__ import annotations

# Registered by every service through the shared library (services.common).
HTTP_REQUESTS = "http_requests_total"  # counter {method, path, status}
HTTP_DURATION = "http_request_duration_seconds"  # histogram {method, path}
# Registered by webhooks: one increment per delivery given up and moved to the dead-letter store.
WEBHOOK_DEAD_LETTERS = "webhook_dead_letters_total"

# kube-state-metrics (runs with the cluster's monitoring stack; its `namespace` label is the object's).
KSM_HPA_CURRENT = "kube_horizontalpodautoscaler_status_current_replicas"
KSM_HPA_DESIRED = "kube_horizontalpodautoscaler_status_desired_replicas"
KSM_HPA_MAX = "kube_horizontalpodautoscaler_spec_max_replicas"
KSM_HPA_MIN = "kube_horizontalpodautoscaler_spec_min_replicas"
KSM_RESTARTS = "kube_pod_container_status_restarts_total"
KSM_DEPLOYMENT_READY = "kube_deployment_status_replicas_ready"

# kubelet (cAdvisor and volume stats, scraped by the cluster's monitoring stack).
KUBELET_VOLUME_AVAILABLE = "kubelet_volume_stats_available_bytes"
KUBELET_VOLUME_CAPACITY = "kubelet_volume_stats_capacity_bytes"
CONTAINER_CPU = "container_cpu_usage_seconds_total"
CONTAINER_MEMORY = "container_memory_working_set_bytes"

# Exporters this stack deploys when the operator is on (see exporters.py).
PG_UP = "pg_up"  # postgres_exporter: 1 when it can query PostgreSQL
PG_CONNECTIONS = "pg_stat_database_numbackends"
REDIS_UP = "redis_up"  # redis_exporter: 1 when it can reach Redis
REDIS_CLIENTS = "redis_connected_clients"
REDIS_MEMORY = "redis_memory_used_bytes"
# prometheus-nats-exporter without -prefix: `gnatsd_` for the core endpoints, `jetstream_` for -jsz.
NATS_HEALTHZ = "gnatsd_healthz_status"  # 0 when the server's /healthz says ok, 1 otherwise
NATS_CONNECTIONS = "gnatsd_varz_connections"
NATS_MSGS_IN = "gnatsd_varz_in_msgs"
JS_CONSUMER_PENDING = "jetstream_consumer_num_pending"  # {stream_name, consumer_name}
JS_CONSUMER_ACK_PENDING = "jetstream_consumer_num_ack_pending"
JS_STREAM_MESSAGES = "jetstream_stream_total_messages"

# Prometheus itself: 1 when the last scrape of a target succeeded.
UP = "up"

SERVICE_METRICS = frozenset({HTTP_REQUESTS, HTTP_DURATION, WEBHOOK_DEAD_LETTERS})

EXTERNAL_METRICS = frozenset(
    {
        KSM_HPA_CURRENT,
        KSM_HPA_DESIRED,
        KSM_HPA_MAX,
        KSM_HPA_MIN,
        KSM_RESTARTS,
        KSM_DEPLOYMENT_READY,
        KUBELET_VOLUME_AVAILABLE,
        KUBELET_VOLUME_CAPACITY,
        CONTAINER_CPU,
        CONTAINER_MEMORY,
        PG_UP,
        PG_CONNECTIONS,
        REDIS_UP,
        REDIS_CLIENTS,
        REDIS_MEMORY,
        NATS_HEALTHZ,
        NATS_CONNECTIONS,
        NATS_MSGS_IN,
        JS_CONSUMER_PENDING,
        JS_CONSUMER_ACK_PENDING,
        JS_STREAM_MESSAGES,
        UP,
    }
)
