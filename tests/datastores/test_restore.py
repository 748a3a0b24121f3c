"""Restore, proven: data written through the services, the backup job's scripts (with the dev stack
given a target on a local S3-compatible server), the database and the backups volume both lost, a new
PostgreSQL initialised from the pod's init files at the same address, scripts/postgres-restore.sh
fetching the newest set from the target, and the same services reading the same data again.

The services run in this process with the environment their Deployments get (their ConfigMap and
Secret), the data stores' Service addresses replaced by the local servers' (substitutions as in
tests/datastores/postgres.py and nats.py).
"""

from __future__ import annotations

import asyncio
import importlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.render.capture import CapturedStack
from localdev.serve import serving
from localdev.servers import PostgresServer
from services.catalog import SERVICES
from tests.datastores.nats import rendered_nats, wait_healthy
from tests.datastores.postgres import (
    DATABASES,
    read_each_database,
    run_backup_job,
    start_primary,
    write_each_database,
)
from tests.datastores.rendered import Manifest, cluster_objects, container_env, find, mounted_files
from tests.datastores.s3 import S3, s3_server
from tests.datastores.servers import PodMounts, PodPostgres, _image_path

ROOT = Path(__file__).resolve().parents[2]
RESTORE = ROOT / "scripts" / "postgres-restore.sh"
PREFIX = "venta-dev/postgres"


def service_settings(objects: list[Manifest], service: str, addresses: dict[str, str]) -> Any:
    """The service's Settings from its pod's environment, Service addresses replaced by ``addresses``
    (``postgres.venta-dev.svc:5432`` -> this machine's server, and so on)."""
    env = container_env(find(objects, "Deployment", service), objects)
    for variable in ("DATABASE_URL", "NATS_SERVERS"):
        if variable in env:
            for cluster, here in addresses.items():
                env[variable] = env[variable].replace(cluster, here)
    env["LOG_LEVEL"] = "WARNING"  # dev's DEBUG would log every HTTP call of the test itself
    settings_class = importlib.import_module(f"services.{SERVICES[service].package}.settings").Settings
    return settings_class(**{key.lower(): value for key, value in env.items()})


@asynccontextmanager
async def services(objects: list[Manifest], addresses: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    """user-management and vendor-management serving; yields their base URLs."""
    async with AsyncExitStack() as stack:
        urls = {}
        for service in ("user-management", "vendor-management"):
            package = SERVICES[service].package
            app = importlib.import_module(f"services.{package}.app").create_app(
                service_settings(objects, service, addresses)
            )
            urls[service] = await stack.enter_async_context(serving(app))
        yield urls


async def eventually_ok(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    """Until 200: the services' pools find the new server by themselves (503 meanwhile)."""
    deadline = time.monotonic() + 20
    while True:
        response = await client.get(url, **kwargs)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


def restore(server: PostgresServer, superuser_password: str, s3: S3, into: str) -> str:
    env = {
        **s3.rclone_env(),
        "PATH": _image_path(),
        "PGHOST": server.host,
        "PGPORT": str(server.port),
        "PGUSER": "postgres",
        "PGPASSWORD": superuser_password,
    }
    done = subprocess.run(
        ["sh", str(RESTORE), "--from", f":s3:{s3.bucket}/{PREFIX}", into],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def s3() -> Any:
    with s3_server() as server:
        yield server


async def test_backup_wipe_restore_and_the_services_read_the_same_data(
    captured_stack: Callable[..., CapturedStack], s3: S3
) -> None:
    objects = cluster_objects(captured_stack("dev", s3.target_config(PREFIX)))
    namespace = find(objects, "StatefulSet", "postgres")["metadata"]["namespace"]
    pod = find(objects, "StatefulSet", "postgres")
    pod_env, pod_files = container_env(pod, objects), mounted_files(pod, objects)
    primary = start_primary(objects)
    scratch = Path(tempfile.mkdtemp(prefix="venta-restore-"))
    try:
        with rendered_nats(objects) as nats_servers:
            wait_healthy(nats_servers)
            (nats_server,) = nats_servers
            addresses = {
                f"postgres.{namespace}.svc:5432": f"{primary.host}:{primary.port}",
                f"nats.{namespace}.svc:4222": f"{nats_server.host}:{nats_server.port}",
            }
            async with services(objects, addresses) as urls, httpx.AsyncClient(timeout=10) as http:
                users, vendors = urls["user-management"], urls["vendor-management"]
                account = {"email": "restored@example.com", "password": "correct horse", "role": "vendor"}
                assert (await http.post(f"{users}/users/register", json=account)).status_code == 201
                login = {k: account[k] for k in ("email", "password")}
                token = (await http.post(f"{users}/users/login", json=login)).json()["access_token"]
                auth = {"authorization": f"Bearer {token}"}
                created = await http.post(
                    f"{vendors}/vendors", json={"name": "Kept", "category": "food"}, headers=auth
                )
                assert created.status_code == 201, created.text
                vendor = created.json()
                await write_each_database(objects, primary, "before the loss")

                mounts = PodMounts(scratch)
                backups = mounts.directory("backups")
                run_backup_job(objects, primary, mounts, backups)

                # The loss: the database's volume and the backups volume (say, the namespace) are gone.
                address, port = primary.host, primary.port
                primary.cleanup()
                shutil.rmtree(backups)
                primary = PodPostgres(address, pod_env, pod_files)
                primary.port = port  # the same Service address, as a new pod behind it would have
                primary.start_as_pod()
                lost = await http.get(f"{vendors}/vendors/{vendor['id']}")
                assert lost.status_code != 200, "the new server holds nothing yet"

                output = restore(primary, primary.password, s3, str(scratch / "fetched"))
                for database in ("user_management", "vendor_management", "webhooks"):
                    assert f"{database} restored" in output

                me = await eventually_ok(http, f"{users}/users/me", headers=auth)
                assert me.status_code == 200 and me.json()["email"] == account["email"], me.text
                assert (await http.post(f"{users}/users/login", json=login)).status_code == 200
                got = await eventually_ok(http, f"{vendors}/vendors/{vendor['id']}")
                assert got.json() == vendor
                listed = (await http.get(f"{vendors}/vendors")).json()
                assert [v["id"] for v in listed["items"]] == [vendor["id"]]
                restored = await read_each_database(objects, primary)
                assert restored == {database: ["before the loss"] for database in DATABASES}
    finally:
        primary.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)
