"""docker-compose.yml: valid against the Compose specification, every service of the catalog wired with
the same environment contract as on the cluster. The file is written by hand; these tests fail until it
agrees with services/catalog.py."""

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import stacks
from infra.builders import service_env
from infra.render.capture import CapturedStack, stack_config
from services.catalog import SERVICES
from tests.datastores.rendered import cluster_objects, container_env, find, mounted_files, mounted_under
from tests.delivery.repo_files import CATALOG_SERVICES, ROOT, check_schema
from venta.compose_env import INIT_SCRIPT, database_password_variable, write_compose_env

DATA_STORES = ["nats", "postgres", "redis", "redis-cache"]
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


def test_every_service_of_the_catalog_and_data_store_is_in_compose(compose: dict[str, Any]) -> None:
    assert sorted(compose["services"]) == sorted(CATALOG_SERVICES + DATA_STORES + ONE_SHOT)


@pytest.mark.parametrize("name", CATALOG_SERVICES)
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


@pytest.mark.parametrize("name", CATALOG_SERVICES)
def test_each_service_waits_for_exactly_what_it_uses(compose: dict[str, Any], name: str) -> None:
    entry = SERVICES[name]
    stores = {
        "postgres": entry.database,
        "redis": entry.redis,
        "redis-cache": entry.cache,
        "nats": entry.nats,
    }
    wanted = {store for store, used in stores.items() if used}
    if entry.public_entry:  # the gateway starts once every upstream answers
        wanted |= {other for other in SERVICES if not SERVICES[other].public_entry}
    if entry.file_storage:
        wanted.add("files-volume-owner")
    assert set(compose["services"][name].get("depends_on", {})) == wanted


def test_each_role_and_database_comes_from_the_stacks_init_script(
    compose: dict[str, Any], captured_stack: Callable[..., CapturedStack], tmp_path: Path
) -> None:
    """Compose's PostgreSQL runs the init script `venta compose-env` writes, which is the dev stack's
    own rendered script byte for byte but for the passwords, and each service logs in as its role."""
    postgres = compose["services"]["postgres"]
    (mount,) = [m for m in postgres["volumes"] if isinstance(m, dict)]
    assert mount["source"] == f"./{INIT_SCRIPT}" and mount["target"].startswith(
        "/docker-entrypoint-initdb.d/"
    )
    assert mount["bind"] == {"create_host_path": False} and mount["read_only"] is True

    env_file = tmp_path / ".env"
    write_compose_env(env_file, force=False)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    generated = (tmp_path / INIT_SCRIPT).read_text()
    objects = cluster_objects(captured_stack("dev"))
    pod = find(objects, "StatefulSet", "postgres")
    rendered = mounted_under(mounted_files(pod, objects), mount["target"].rsplit("/", 1)[0])
    (stack_script,) = (text for name, text in rendered.items() if name.endswith("databases.sql"))
    for entry in (e for e in SERVICES.values() if e.database):
        stack_password = service_env_of(objects, entry.name)["DATABASE_URL"].split(":")[2].split("@")[0]
        variable = database_password_variable(entry)
        stack_script = stack_script.replace(f"'{stack_password}'", f"'{env[variable]}'")
        url = compose["services"][entry.name]["environment"]["DATABASE_URL"]
        db = entry.database_name
        given = f"${{{variable}:?run .venv/bin/venta compose-env first}}"
        assert url == f"postgresql://{db}:{given}@postgres:5432/{db}"
    assert generated == stack_script


def service_env_of(objects: list[dict[str, Any]], service: str) -> dict[str, str]:
    return container_env(find(objects, "Deployment", service), objects)


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    mounts = {
        mount.split(":")[0]: name
        for name, service in compose["services"].items()
        for mount in service.get("volumes", [])
        if isinstance(mount, str) and not mount.startswith("./") and name not in ONE_SHOT
    }
    assert set(mounts) == declared == {"postgres-data", "redis-data", "nats-data", "files-data"}
    assert [mounts["files-data"]] == [name for name, entry in SERVICES.items() if entry.file_storage]
    owner = compose["services"]["files-volume-owner"]
    assert owner["volumes"] == ["files-data:/data/files"]
    assert owner["command"] == ["chown", "10001:10001", "/data/files"]


def test_gateway_on_port_3000_and_nats_with_jetstream(compose: dict[str, Any]) -> None:
    (entry,) = (name for name, service in SERVICES.items() if service.public_entry)
    assert compose["services"][entry]["ports"] == ["3000:8000"]
    assert [name for name, s in compose["services"].items() if "ports" in s] == [entry]
    assert "--jetstream" in compose["services"]["nats"]["command"]


def test_nats_holds_each_service_to_its_subjects(compose: dict[str, Any]) -> None:
    """compose/nats.conf is what the catalog implies (the cluster's users and permissions), NATS reads
    it, and each service logs in as its own user with its own password from .env."""
    from venta.compose_env import compose_nats_conf, nats_password_variable

    assert (ROOT / "compose" / "nats.conf").read_text() == compose_nats_conf(), (
        "compose/nats.conf is out of date: write venta.compose_env.compose_nats_conf() to it"
    )
    nats = compose["services"]["nats"]
    assert "./compose/nats.conf:/etc/nats/nats.conf:ro" in nats["volumes"]
    assert nats["command"][:2] == ["--config", "/etc/nats/nats.conf"]
    for name, entry in SERVICES.items():
        environment = compose["services"][name]["environment"]
        if not entry.nats:
            assert "NATS_USER" not in environment
            continue
        variable = nats_password_variable(name)
        assert environment["NATS_USER"] == name
        assert environment["NATS_PASSWORD"].startswith("${" + variable + ":?")
        assert nats["environment"][variable] == environment["NATS_PASSWORD"]
    # nats-server reads the file with the passwords .env gives it (and refuses it without them).
    env = {nats_password_variable(n): "pw" for n, e in SERVICES.items() if e.nats}
    check = [shutil.which("nats-server") or "nats-server", "-c", str(ROOT / "compose" / "nats.conf"), "-t"]
    assert subprocess.run(check, env=env, capture_output=True, check=False).returncode == 0
    assert subprocess.run(check, env={}, capture_output=True, check=False).returncode != 0


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for variable, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|SEED|AUTH|KEY|_URL", variable) and variable != "NATS_SERVERS":
                if variable.endswith("_URL") and "@" not in value:
                    continue
                assert "${" in value and ":?" in value, f"{name}.{variable} must come from .env"


@pytest.fixture(scope="module")
def cluster_settings() -> stacks.StackSettings:
    return stacks.load("dev", stack_config("dev"))


@pytest.mark.parametrize("name", CATALOG_SERVICES)
def test_each_environment_is_the_one_the_cluster_gives(
    compose: dict[str, Any], cluster_settings: stacks.StackSettings, name: str
) -> None:
    """The same variables as the service's ConfigMap and Secret on a cluster, with the catalog's values
    where the catalog gives one."""
    entry = SERVICES[name]
    where = service_env.endpoints("local")
    cluster = service_env.config_data(entry, cluster_settings, where, "PEM") | service_env.secret_data(
        entry, where, service_env.Credentials()
    )
    given = dict(compose["services"][name]["environment"])
    # A local knob the cluster leaves at its default: no balancer in front to drain for (pods take
    # the catalog's time).
    local = {"SHUTDOWN_DRAIN_SECONDS": "0"}
    assert {key: given.pop(key) for key in local} == local
    assert sorted(given) == sorted(cluster)
    assert (given["SERVICE_NAME"], given["PORT"]) == (name, cluster["PORT"])
    # Probes and /metrics on the same internal port as in a pod, the docs on as in dev, and (gateway)
    # no proxy trusted: the published port faces the clients themselves.
    for variable in ("INTERNAL_PORT", "API_DOCS", "TRUSTED_PROXY_CIDRS"):
        assert given.get(variable) == cluster.get(variable), variable
    for variable, default in entry.env:
        assert given[variable] == default, variable
    if entry.database:
        assert given["DATABASE_URL"].endswith(f"@postgres:5432/{entry.database_name}")
        assert (given["DB_POOL_MIN"], given["DB_POOL_MAX"]) == (
            cluster["DB_POOL_MIN"],
            cluster["DB_POOL_MAX"],
        )
    if entry.nats:
        assert given["NATS_QUEUE"] == name == given["NATS_USER"]
    if entry.cache:
        assert "@redis-cache:6379/" in given["CACHE_REDIS_URL"]
    for upstream in (variable for variable in cluster if variable.startswith("UPSTREAM_")):
        assert given[upstream] == cluster[upstream] + ":8000", upstream  # no Service on port 80 here


@pytest.mark.parametrize("name", CATALOG_SERVICES)
def test_each_environment_satisfies_the_services_settings(compose: dict[str, Any], name: str) -> None:
    """Every required setting is given, and nothing is given that the service would silently ignore,
    except the public key that every service receives (docs/contracts.md)."""
    from localdev.services import settings_class

    fields = settings_class(SERVICES[name]).model_fields
    given = {variable.lower() for variable in compose["services"][name]["environment"]}

    def accepted(field: str, info: Any) -> set[str]:
        """A field's variable, or the ones its alias choices name (CACHE_REDIS_URL or REDIS_URL)."""
        choices = getattr(info.validation_alias, "choices", None)
        return {str(choice) for choice in choices} if choices else {field}

    readable = {field: accepted(field, info) for field, info in fields.items()}
    missing = [field for field, info in fields.items() if info.is_required() and not readable[field] & given]
    assert missing == []
    assert given - set().union(*readable.values()) <= {"jwt_public_key"}
