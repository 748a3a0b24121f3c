"""Alert thresholds of a stack: the numbers its PrometheusRules compare against (`monitoring.thresholds`).

Each environment profile starts from a baseline (`DEV_THRESHOLDS` or `PROD_THRESHOLDS`); a stack may
override single values in `Pulumi.<stack>.yaml` under `venta:monitoring.thresholds`. Prod is stricter:
lower error and latency ceilings, shorter grace periods, more free disk required, and critical alerts page.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from stacks.catalog import ServiceName

Seconds = Annotated[float, Field(ge=0.001, le=60)]


class _Strict(BaseModel):
    # The same rules as every other settings model (stacks.model.Settings, which imports this module):
    # unknown keys are errors, nothing is coerced from another type, nothing mutates.
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, alias_generator=to_camel, populate_by_name=True
    )


class AlertThresholds(_Strict):
    """Numbers the alert rules compare against. Durations are whole minutes."""

    error_rate_ratio: float = Field(ge=0.001, le=0.999, description="5xx share of a service's requests")
    error_rate_min_requests_per_second: float = Field(
        ge=0, description="below this traffic the error ratio is too noisy to alert on"
    )
    error_rate_minutes: int = Field(ge=1, le=120)
    latency_p99_seconds: Seconds = Field(description="p99 of http_request_duration_seconds")
    latency_p99_seconds_by_service: dict[ServiceName, Seconds] = Field(
        default_factory=dict, description="per-service p99 ceilings replacing latency_p99_seconds"
    )
    latency_minutes: int = Field(ge=1, le=120)
    hpa_at_max_minutes: int = Field(ge=1, le=1440, description="how long an HPA may sit at maxReplicas")
    restarts_per_hour: int = Field(ge=1, le=100, description="container restarts within one hour")
    datastore_down_minutes: int = Field(ge=1, le=60)
    service_down_minutes: int = Field(ge=1, le=60)
    consumer_pending_messages: int = Field(ge=1, description="unprocessed messages of a durable consumer")
    consumer_lag_minutes: int = Field(ge=1, le=120)
    dead_letters_per_15_minutes: int = Field(ge=0, description="new webhook dead letters in 15 minutes")
    volume_free_ratio: float = Field(ge=0.01, le=0.99, description="alert when less than this share is free")
    page: bool = Field(description="critical alerts page someone; when false they are warnings")


DEV_THRESHOLDS = AlertThresholds(
    error_rate_ratio=0.10,
    error_rate_min_requests_per_second=0.05,
    error_rate_minutes=10,
    latency_p99_seconds=2.0,
    latency_minutes=15,
    hpa_at_max_minutes=30,
    restarts_per_hour=6,
    datastore_down_minutes=5,
    service_down_minutes=10,
    consumer_pending_messages=1000,
    consumer_lag_minutes=15,
    dead_letters_per_15_minutes=20,
    volume_free_ratio=0.10,
    page=False,
)

PROD_THRESHOLDS = AlertThresholds(
    error_rate_ratio=0.02,
    error_rate_min_requests_per_second=0.1,
    error_rate_minutes=5,
    latency_p99_seconds=0.5,
    # Uploads stream whole files through file-management; its p99 is bounded by file size, not code.
    latency_p99_seconds_by_service={"file-management": 2.0},
    latency_minutes=5,
    hpa_at_max_minutes=15,
    restarts_per_hour=3,
    datastore_down_minutes=1,
    service_down_minutes=2,
    consumer_pending_messages=100,
    consumer_lag_minutes=5,
    dead_letters_per_15_minutes=5,
    volume_free_ratio=0.20,
    page=True,
)
