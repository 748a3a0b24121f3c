"""docker-compose.yml: valid against the Compose specification, every service wired as the contracts say."""

import re
from typing import Any

import pytest
import yaml

from tests.delivery.repo_files import CONTRACT_SERVICES, ROOT, check_schema, service_names

DATA_STORES = ["nats", "postgres", "redis"]
# One-shot containers that prepare something and exit; the services wait for them to succeed.
ONE_SHOT = ["files-volume-owner"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # resolves the `<<:` merges
    assert isinstance(doc, dict)
    return doc


def test_compose_file_validates_against_the_compose_spec() -> None:
    result = check_schema("vendor.compose-spec", ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_package_and_data_store_is_in_compose(compose: dict[str, Any]) -> None:
    assert set(service_names()) <= set(CONTRACT_SERVICES)  # a new package needs its contract row first
    assert sorted(compose["services"]) == sorted(CONTRACT_SERVICES + DATA_STORES + ONE_SHOT)


@pytest.mark.parametrize("name", CONTRACT_SERVICES)
def test_each_service_is_built_from_the_shared_dockerfile(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    build = {"context": ".", "dockerfile": "services/Dockerfile", "args": {"SERVICE": name}}
    assert service["build"] == build
    assert service["environment"]["SERVICE_NAME"] == name
    assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]


def test_every_container_has_a_healthcheck_and_waits_for_healthy_deps(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name in ONE_SHOT:
            assert "healthcheck" not in service and "restart" not in service
            continue
        assert service["healthcheck"]["test"][0] == "CMD", name
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
            assert dependency in ONE_SHOT or "healthcheck" in services[dependency]
    assert sorted(services["api-gateway"]["depends_on"]) == sorted(
        [*(s for s in CONTRACT_SERVICES if s != "api-gateway"), "redis"]
    )


def test_services_depend_on_the_stores_their_environment_names(compose: dict[str, Any]) -> None:
    uses = {"DATABASE_URL": "postgres", "REDIS_URL": "redis", "NATS_SERVERS": "nats"}
    for name in CONTRACT_SERVICES:
        service = compose["services"][name]
        needed = {store for variable, store in uses.items() if variable in service["environment"]}
        assert needed <= set(service["depends_on"]), name


def test_each_database_the_services_use_is_created(compose: dict[str, Any]) -> None:
    created = set(re.findall(r"CREATE DATABASE (\w+);", (ROOT / "compose" / "postgres-init.sql").read_text()))
    used = {
        service["environment"]["DATABASE_URL"].rsplit("/", 1)[1]
        for service in compose["services"].values()
        if "DATABASE_URL" in service.get("environment", {})
    }
    assert (
        used
        == created
        == {"user_management", "vendor_management", "search_discovery", "webhooks", "file_management"}
    )


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    mounts = {
        mount.split(":")[0]: name
        for name, service in compose["services"].items()
        for mount in service.get("volumes", [])
        if not mount.startswith("./") and name not in ONE_SHOT
    }
    assert set(mounts) == declared == {"postgres-data", "redis-data", "nats-data", "files-data"}
    assert mounts["files-data"] == "file-management"
    owner = compose["services"]["files-volume-owner"]
    assert owner["volumes"] == ["files-data:/data/files"]
    assert owner["command"] == ["chown", "10001:10001", "/data/files"]


def test_gateway_on_port_3000_and_nats_with_jetstream(compose: dict[str, Any]) -> None:
    assert compose["services"]["api-gateway"]["ports"] == ["3000:8000"]
    assert [name for name, s in compose["services"].items() if "ports" in s] == ["api-gateway"]
    assert "--jetstream" in compose["services"]["nats"]["command"]


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for variable, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|SEED|AUTH|KEY|_URL", variable) and variable != "NATS_SERVERS":
                if variable.endswith("_URL") and "@" not in value:
                    continue
                assert "${" in value and ":?" in value, f"{name}.{variable} must come from .env"


@pytest.mark.parametrize("name", CONTRACT_SERVICES)
def test_each_environment_matches_the_services_settings(compose: dict[str, Any], name: str) -> None:
    """Every required setting is given, and nothing is given that the service would silently ignore."""
    from localdev.services import settings_class
    from services.catalog import SERVICES

    fields = settings_class(SERVICES[name]).model_fields
    given = {variable.lower() for variable in compose["services"][name]["environment"]}
    required = {field for field, info in fields.items() if info.is_required()}
    assert required - given == set()
    assert given - set(fields) == set()
