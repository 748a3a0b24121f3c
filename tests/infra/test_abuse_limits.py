"""The stack's abuse limits reach the services: webhooks' subscription quota and retention,
vendor-management's outbox retention, file-management's upload quota, and the extra public keys of a
signing-key rotation. Each is validated at load, lands in the service's ConfigMap through the catalog's
environment, and is what the service's own settings then read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.render import CapturedStack
from localdev.services import settings_class
from services.catalog import SERVICES
from services.common.auth import TokenIssuer, TokenVerifier, generate_seed, public_pem_from_seed
from tests.infra.helpers import named, of_kind
from tests.infra.test_settings import config, problems

# What each service's settings read, by stack: the profiles' choices (stacks/profiles/).
CHOSEN = {
    "dev": {
        "webhooks": {"WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER": "10", "WEBHOOK_RETENTION_DAYS": "3"},
        "vendor-management": {"OUTBOX_RETENTION_DAYS": "2"},
        "file-management": {
            "FILE_QUOTA_UPLOADS": "50",
            "FILE_QUOTA_BYTES": str(200 * 2**20),
            "FILE_QUOTA_WINDOW_SECONDS": "3600",
        },
    },
    "prod": {
        "webhooks": {"WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER": "10", "WEBHOOK_RETENTION_DAYS": "14"},
        "vendor-management": {"OUTBOX_RETENTION_DAYS": "7"},
        "file-management": {
            "FILE_QUOTA_UPLOADS": "100",
            "FILE_QUOTA_BYTES": str(500 * 2**20),
            "FILE_QUOTA_WINDOW_SECONDS": "3600",
        },
    },
}


def environment(captured: CapturedStack, service: str) -> dict[str, str]:
    """The ConfigMap a service's Deployment reads its environment from (by its generated name)."""
    container = named(captured, "Deployment", service)["spec"]["template"]["spec"]["containers"][0]
    (name,) = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    return dict(named(captured, "ConfigMap", name)["data"])


def service_settings(captured: CapturedStack, service: str, **secrets: str) -> Any:
    """The service's own Settings built from its rendered ConfigMap (secrets stood in), as in its pod."""
    env = environment(captured, service)
    stand_ins = {
        "DATABASE_URL": "postgresql://u:p@postgres:5432/db",
        "REDIS_URL": "redis://redis:6379/0",
        "NATS_SERVERS": env.get("NATS_SERVERS", "nats://nats:4222"),
        **secrets,
    }
    fields = settings_class(SERVICES[service]).model_fields
    given = {k.lower(): v for k, v in {**stand_ins, **env}.items() if k.lower() in fields}
    return settings_class(SERVICES[service]).model_validate(given)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_stack_gives_the_services_its_limits(
    stack: str, dev_stack: CapturedStack, prod_stack: CapturedStack
) -> None:
    captured = {"dev": dev_stack, "prod": prod_stack}[stack]
    for service, expected in CHOSEN[stack].items():
        env = environment(captured, service)
        assert {key: env[key] for key in expected} == expected, service
    webhooks = service_settings(captured, "webhooks")
    files = service_settings(captured, "file-management")
    outbox = service_settings(captured, "vendor-management")
    wanted = CHOSEN[stack]
    assert webhooks.webhook_retention_days == float(wanted["webhooks"]["WEBHOOK_RETENTION_DAYS"])
    assert outbox.outbox_retention_days == float(wanted["vendor-management"]["OUTBOX_RETENTION_DAYS"])
    assert files.file_quota_bytes == int(wanted["file-management"]["FILE_QUOTA_BYTES"])


def test_a_stack_overrides_one_limit_and_the_service_reads_it(
    captured_stack: Callable[..., CapturedStack],
) -> None:
    captured = captured_stack(
        "prod",
        config(
            "prod",
            webhooks={"maxSubscriptionsPerOwner": 3},
            outbox={"retentionDays": 30},
            fileQuota={"bytes": "1Gi", "windowSeconds": 600},
        ),
    )
    webhooks = service_settings(captured, "webhooks")
    assert (webhooks.webhook_max_subscriptions_per_owner, webhooks.webhook_retention_days) == (3, 14)
    assert service_settings(captured, "vendor-management").outbox_retention_days == 30
    files = service_settings(captured, "file-management")
    assert (files.file_quota_bytes, files.file_quota_window_seconds, files.file_quota_uploads) == (
        2**30,
        600,
        100,
    )
    # Only the services that read a limit get it.
    assert "FILE_QUOTA_BYTES" not in environment(captured, "webhooks")


def test_bad_limits_fail_at_load_naming_the_key() -> None:
    found = problems(
        "dev",
        config(
            webhooks={"maxSubscriptionsPerOwner": 0, "retentionDays": "14"},
            outbox={"retentionDays": 0},
            fileQuota={"uploads": 10, "bytes": "lots"},
        ),
    )
    assert found == [
        "webhooks.maxSubscriptionsPerOwner: given 0; allowed at least 1",
        'webhooks.retentionDays: given "14"; allowed an integer',
        "outbox.retentionDays: given 0; allowed at least 1",
        'fileQuota.bytes: given "lots"; allowed a memory or storage quantity such as 256Mi or 10Gi',
    ]
    # One user may not be allowed to fill the files volume (dev: 1Gi) within a window.
    assert problems("dev", config(fileQuota={"bytes": "2Gi"})) == [
        'fileQuota.bytes: given "2Gi"; allowed at most storage.files (1Gi)'
    ]


def test_extra_public_keys_are_validated() -> None:
    key = public_pem_from_seed(generate_seed())
    found = problems("dev", config(auth={"extraPublicKeys": ["not a key", key + key]}))
    assert [p.split(":")[0] for p in found] == ["auth.extraPublicKeys.0", "auth.extraPublicKeys.1"]
    assert all("one Ed25519 public key in PEM" in p for p in found)
    assert problems("dev", config(auth={"extraPublicKeys": [key, key]}))[0].startswith(
        "auth.extraPublicKeys: given"
    )


def test_a_rotation_key_is_accepted_by_every_service(captured_stack: Callable[..., CapturedStack]) -> None:
    """Mid-rotation: the stack signs with its seed and accepts the old key too. Every service's
    JWT_PUBLIC_KEY holds both; tokens of either key verify; user-management starts (its key is there)."""
    current, old = generate_seed(), generate_seed()
    captured = captured_stack(
        "prod",
        config(
            "prod",
            secrets={"jwtSigningSeed": current},
            auth={"extraPublicKeys": [public_pem_from_seed(old)]},
        ),
    )
    tokens = [TokenIssuer(seed, 900).issue("user-1", "customer") for seed in (current, old)]
    stranger = TokenIssuer(generate_seed(), 900).issue("user-1", "customer")
    for spec in SERVICES.values():
        pems = environment(captured, spec.name)["JWT_PUBLIC_KEY"]
        assert pems.count("BEGIN PUBLIC KEY") == 2, spec.name
        verifier = TokenVerifier(pems)
        assert [verifier.verify(token).user_id for token in tokens] == ["user-1", "user-1"]
        with pytest.raises(Exception, match="not accepted"):
            verifier.verify(stranger)
    # user-management refuses to start unless its seed's key is among the accepted ones.
    signer = service_settings(captured, "user-management", JWT_SIGNING_SEED=current)
    assert signer.jwt_public_key.startswith(public_pem_from_seed(current).strip())
    # Without the setting, one key: the stack's own.
    assert environment(captured_stack("prod"), "webhooks")["JWT_PUBLIC_KEY"].count("BEGIN") == 1
    assert len(of_kind(captured, "ConfigMap")) == len(of_kind(captured_stack("prod"), "ConfigMap"))
