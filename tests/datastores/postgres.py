"""A stack's PostgreSQL pods on this machine: the primary as the postgres image initialises it from the
pod's init files, the replica cloned by its init container's command. Shared by the data-store tests.

Substituted, beyond what ``PodPostgres`` says: in the clone command, the primary pod's host name and
port (``-h postgres-0.postgres-headless -p 5432``) by the primary's address and port here, and the
mounted credentials' folder by a temp folder holding the same files; ``PGDATA`` by a temp dir.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import asyncpg

from infra.builders import names
from localdev.servers import PostgresServer
from services.catalog import SERVICES
from tests.datastores.rendered import (
    Manifest,
    container,
    container_env,
    find,
    mounted_files,
    pod_spec,
    shell_script,
    substitute,
)
from tests.datastores.servers import PodMounts, PodPostgres, StandbyPostgres, loopback_address

# Each database of the catalog, and the service whose role owns it.
DATABASES = {SERVICES[name].database_name: name for name, entry in SERVICES.items() if entry.database}


def start_primary(objects: list[Manifest], host: str | None = None) -> PodPostgres:
    pod = find(objects, "StatefulSet", "postgres")
    server = PodPostgres(host or loopback_address(), container_env(pod, objects), mounted_files(pod, objects))
    try:
        return server.start_as_pod()
    except BaseException:
        server.cleanup()
        raise


def service_url(
    objects: list[Manifest], service: str, server: PostgresServer, variable: str = "DATABASE_URL"
) -> str:
    """The service's own connection string from its Secret, its Service address replaced by ``server``'s."""
    env = container_env(find(objects, "Deployment", service), objects)
    namespace = find(objects, "Deployment", service)["metadata"]["namespace"]
    host = env[variable].split("@", 1)[1].split("/", 1)[0]
    assert host.endswith(f".{namespace}.svc:5432"), host
    return substitute(env[variable], {host: f"{server.host}:{server.port}"})


def pod_host(objects: list[Manifest], app: str, ordinal: int = 0) -> str:
    """A StatefulSet pod's host name inside its namespace, as Kubernetes names it."""
    workload = find(objects, "StatefulSet", app)
    return f"{workload['metadata']['name']}-{ordinal}.{workload['spec']['serviceName']}"


def mount_paths(workload: Manifest, container_name: str) -> dict[str, str]:
    """A container's Secret and ConfigMap mounts: volume name -> mount path."""
    return {m["name"]: m["mountPath"] for m in container(workload, container_name).get("volumeMounts") or []}


def with_mounts(
    workload: Manifest, objects: list[Manifest], container_name: str, mounts: PodMounts, script: str
) -> str:
    """``script`` with each mounted folder of the container that it names replaced by a temp folder
    holding the same files."""
    files = mounted_files(workload, objects, container_name)
    folders = {str(path.parent) for path in files}
    return substitute(
        script, {folder: mounts.place(folder, files) for folder in sorted(folders) if folder in script}
    )


@contextlib.contextmanager
def replica_of(objects: list[Manifest], primary: PodPostgres) -> Iterator[StandbyPostgres]:
    """The replica pod: its clone command run against ``primary``, then served as a standby."""
    workload = find(objects, "StatefulSet", "postgres-replica")
    with tempfile.TemporaryDirectory(prefix="venta-clone-") as scratch:
        mounts = PodMounts(Path(scratch))
        script = with_mounts(
            workload, objects, "clone-primary", mounts, shell_script(workload, "clone-primary")
        )
        here = f"-h {primary.host} -p {primary.port}"
        script = substitute(script, {f"-h {pod_host(objects, 'postgres')} -p {names.POSTGRES_PORT}": here})
        env = container_env(workload, objects, "clone-primary")
        assert PurePosixPath(env.pop("PGDATA")).is_absolute()  # replaced by the standby's own folder
        standby = StandbyPostgres(loopback_address(), script, env)
        try:
            standby.start()
            yield standby
        finally:
            standby.cleanup()


def run_backup_job(objects: list[Manifest], source: PostgresServer, mounts: PodMounts, backups: str) -> str:
    """The backup CronJob's pod on this machine: the dump container's script against ``source``, then,
    when the stack names a target, the upload container's. Substituted: the ``PGHOST``/``PGPORT``
    the dump reads (the replica's or primary's Service) by ``source``'s address, the backups volume's
    mount path by ``backups``, the mounted credentials' folders by temp folders; returns the output."""
    cron = find(objects, "CronJob", "postgres-backup")
    script = shell_script(cron, "pg-dump")
    service = re.search(r"PGHOST=(\S+) PGPORT=(\d+)", script)
    assert service is not None, "the dump script names the server it reads"
    volume = mount_paths(cron, "pg-dump")["backups"]
    script = with_mounts(cron, objects, "pg-dump", mounts, script)
    script = substitute(script, {service[0]: f"PGHOST={source.host} PGPORT={source.port}", volume: backups})
    output = mounts.run(script, container_env(cron, objects, "pg-dump")).stdout
    if any(c["name"] == "upload" for c in pod_spec(cron)["containers"]):
        upload = with_mounts(cron, objects, "upload", mounts, shell_script(cron, "upload"))
        upload = substitute(upload, {mount_paths(cron, "upload")["backups"]: backups})
        output += mounts.run(upload, container_env(cron, objects, "upload")).stdout
    return output


async def write_each_database(objects: list[Manifest], primary: PostgresServer, note: str) -> None:
    for service in DATABASES.values():
        conn = await asyncpg.connect(service_url(objects, service, primary))
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS backed_up (note text)")
            await conn.execute("INSERT INTO backed_up VALUES ($1)", note)
        finally:
            await conn.close()


async def read_each_database(objects: list[Manifest], server: PostgresServer) -> dict[str, list[str]]:
    """What ``write_each_database`` left, read by each service's own role: database -> notes."""
    found = {}
    for database, service in DATABASES.items():
        conn = await asyncpg.connect(service_url(objects, service, server))
        try:
            found[database] = [
                r["note"] for r in await conn.fetch("SELECT note FROM backed_up ORDER BY note")
            ]
        finally:
            await conn.close()
    return found
