"""services/catalog.py is the one list of services: the code, the gateway's routes, the contract page and
the stack's defaults all agree with it, and it depends on nothing."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import stacks
from infra.render.capture import stack_config
from localdev.services import Ports, service_env, settings_class
from services.api_gateway.routes_table import ROUTES
from services.catalog import SERVICES
from services.common.settings import (
    DatabaseSettings,
    JwtSigningSettings,
    NatsSettings,
    RedisSettings,
    ServiceSettings,
)

ROOT = Path(__file__).resolve().parents[2]
NAMES = list(SERVICES)


def test_the_catalog_imports_nothing_but_the_standard_library() -> None:
    tree = ast.parse((ROOT / "services" / "catalog.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "dataclasses"}


def test_every_service_package_is_in_the_catalog_and_back() -> None:
    packages = {p.parent.name for p in (ROOT / "services").glob("*/__init__.py")} - {"common"}
    assert packages == {entry.package for entry in SERVICES.values()}
    assert all(name == entry.package.replace("_", "-") for name, entry in SERVICES.items())


@pytest.mark.parametrize("name", NAMES)
def test_the_catalog_says_what_the_service_settings_read(name: str) -> None:
    entry = SERVICES[name]
    cls = settings_class(entry)
    assert issubclass(cls, ServiceSettings)
    assert issubclass(cls, DatabaseSettings) == entry.database
    assert issubclass(cls, RedisSettings) == (entry.redis or entry.cache)
    assert issubclass(cls, NatsSettings) == entry.nats
    assert issubclass(cls, JwtSigningSettings) == entry.signs_tokens
    assert ("storage_dir" in cls.model_fields) == entry.file_storage
    assert {variable.lower() for variable, _ in entry.env} <= set(cls.model_fields)


def test_one_public_entry_routes_to_every_other_service() -> None:
    entries = [name for name, entry in SERVICES.items() if entry.public_entry]
    assert len(entries) == 1
    routed = {route.service for route in ROUTES}
    assert routed == set(NAMES) - set(entries), "a service needs its route in routes_table.py"


@pytest.mark.parametrize("name", NAMES)
def test_the_local_run_gives_each_service_what_it_requires(name: str, tmp_path: Path) -> None:
    entry = SERVICES[name]
    urls = {
        "redis": "redis://127.0.0.1:1/0",
        "nats": "nats://127.0.0.1:2",
        f"db:{name}": "postgresql://x@h/d",
    }
    seed = "A" * 43 + "="
    ports = {n: Ports(9000 + i, 9500 + i) for i, n in enumerate(NAMES)}
    env = service_env(entry, urls, ports, seed, tmp_path)
    fields = settings_class(entry).model_fields
    required = {field for field, info in fields.items() if info.is_required()}
    assert required <= {variable.lower() for variable in env}
    assert {variable.lower() for variable in env} - set(fields) <= {"jwt_public_key"}


def test_the_contract_page_lists_the_catalog() -> None:
    text = (ROOT / "docs" / "contracts.md").read_text()
    rows = re.findall(r"^\| ([a-z-]+) \| `services\.(\w+)` \| (\w+) \|$", text, flags=re.M)
    assert rows == [(name, entry.package, entry.area) for name, entry in SERVICES.items()]


def test_a_service_without_a_stack_uses_the_stacks_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's values won where they had drifted (120 s stale window, pool bound 100)."""
    stack = stacks.load("dev", stack_config("dev"))
    geolocation = importlib.import_module("services.geolocation.settings").Settings
    fields = geolocation.model_fields
    assert fields["location_stale_after_seconds"].default == stack.location_stale_after_seconds == 120
    pool = DatabaseSettings.model_fields
    assert (pool["db_pool_min"].default, pool["db_pool_max"].default) == (
        stack.db_pool_min,
        stack.db_pool_max,
    )
    for var in ("DATABASE_URL", "DB_POOL_MAX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DB_POOL_MAX", "101")
    with pytest.raises(ValueError, match="less than or equal to 100"):
        DatabaseSettings(service_name="x", database_url="postgresql://u:p@h:5432/d")
    with pytest.raises(stacks.SettingsError, match="dbPoolMax: given 101; allowed at most 100"):
        stacks.load("dev", stack_config("dev", {"venta:dbPoolMax": "101"}))
