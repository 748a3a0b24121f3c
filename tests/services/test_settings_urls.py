"""Connection strings in service settings: checked with pydantic's URL types, kept secret, and never
echoed in an error (they hold passwords)."""

from __future__ import annotations

import pytest

from services.api_gateway.settings import Settings as GatewaySettings
from services.common.settings import (
    DatabaseSettings,
    NatsSettings,
    RedisSettings,
    SettingsError,
    load_settings,
)

PASSWORD = "hunter2-s3cret"


class Stores(DatabaseSettings, RedisSettings, NatsSettings):
    pass


GOOD = {
    "service_name": "demo",
    "database_url": f"postgresql://demo:{PASSWORD}@db.internal:5432/demo",
    "redis_url": f"redis://:{PASSWORD}@cache.internal:6379/0",
    "nats_servers": "nats://bus.internal:4222,tls://bus-2.internal:4222",
}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("database_url", f"mysql://demo:{PASSWORD}@db:3306/demo", "postgresql:// URL: URL scheme should be"),
        ("database_url", f"postgresql://demo:{PASSWORD}@:5432/demo", "postgresql:// URL"),
        ("redis_url", f"http://:{PASSWORD}@cache:6379/0", "redis:// URL: URL scheme should be"),
        ("nats_servers", "nats://bus:4222,http://bus-2", "nats:// URL: URL scheme should be"),
        ("nats_servers", " , ", "needs at least one nats:// URL"),
    ],
)
def test_a_bad_url_names_the_variable_and_never_the_value(field: str, value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Stores, **{**GOOD, field: value})
    message = str(caught.value)
    assert f"{field.upper()}" in message and reason in message
    assert PASSWORD not in message


def test_connection_strings_are_secrets() -> None:
    settings = load_settings(Stores, **GOOD, nats_password=PASSWORD)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    assert settings.database_url.get_secret_value() == GOOD["database_url"]  # kept as given
    assert settings.nats_servers == ["nats://bus.internal:4222", "tls://bus-2.internal:4222"]
    assert settings.nats_password.get_secret_value() == PASSWORD


def test_upstreams_are_http_urls_without_a_trailing_slash(public_pem: str) -> None:
    upstreams = {f"upstream_{name}": f"http://{name}.internal/" for name in _routed()}
    settings = load_settings(
        GatewaySettings,
        service_name="api-gateway",
        redis_url="redis://r:6379/0",
        jwt_public_key=public_pem,
        **upstreams,
    )
    assert settings.upstream_url("vendor-management") == "http://vendor_management.internal"
    with pytest.raises(SettingsError, match=r"UPSTREAM_WEBHOOKS: .*must be a http:// or https:// URL"):
        load_settings(
            GatewaySettings,
            service_name="api-gateway",
            redis_url="redis://r:6379/0",
            jwt_public_key=public_pem,
            **{**upstreams, "upstream_webhooks": "ftp://webhooks"},
        )


def _routed() -> list[str]:
    from services.api_gateway.routes_table import ROUTES

    return [route.service.replace("-", "_") for route in ROUTES]
