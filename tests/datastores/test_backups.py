"""The PostgreSQL backup CronJob of each stack, its scripts run on this machine against the stack's
own PostgreSQL (prod: the replica it reads, cloned by the replica's own command): every database and
the roles dumped into a complete set, old sets pruned by the retention; with a target, each set
uploaded to a local S3-compatible server (moto) by the client the upload image runs (rclone) and old
objects pruned there too. Substitutions: tests/datastores/postgres.py, ``run_backup_job``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from infra.render.capture import CapturedStack
from localdev.servers import PostgresServer, _pg_bin, postgres_owner
from tests.datastores.conftest import STACKS
from tests.datastores.postgres import (
    DATABASES,
    replica_of,
    run_backup_job,
    service_url,
    start_primary,
    write_each_database,
)
from tests.datastores.rendered import Manifest, cluster_objects, find, find_optional
from tests.datastores.s3 import S3, s3_server
from tests.datastores.servers import PodMounts

DAY = 86400


def retention_days(objects: list[Manifest]) -> int:
    """The stack's retention, from its settings as the program loaded them (the scripts carry it)."""
    import stacks

    namespace = find(objects, "CronJob", "postgres-backup")["metadata"]["namespace"]
    stack = namespace.removeprefix("venta-")
    backup = stacks.load(stack, _configs[stack]).postgres.backup
    assert backup is not None
    return backup.retention_days


_configs: dict[str, dict[str, str]] = {}


@contextlib.contextmanager
def dump_source(objects: list[Manifest]) -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """(primary, what the job reads): the replica when the stack runs one, else the primary."""
    primary = start_primary(objects)
    try:
        if find_optional(objects, "StatefulSet", "postgres-replica") is None:
            yield primary, primary
        else:
            with replica_of(objects, primary) as standby:
                yield primary, standby
    finally:
        primary.cleanup()


async def wait_replayed(primary: PostgresServer, source: PostgresServer, objects: list[Manifest]) -> None:
    """Until the replica holds what was written (the job dumps what the replica has)."""
    if source is primary:
        return
    deadline = time.monotonic() + 5
    for service in DATABASES.values():
        conn = await asyncpg.connect(service_url(objects, service, source))
        try:
            while not await conn.fetchval("SELECT to_regclass('backed_up') IS NOT NULL"):
                assert time.monotonic() < deadline, "the replica did not catch up"
                await asyncio_sleep(0.05)
        finally:
            await conn.close()


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def aged(path: Path, days: float) -> Path:
    """Give a folder (and what it holds) the modification time of ``days`` ago."""
    when = time.time() - days * DAY
    for item in [*path.rglob("*"), path]:
        os.utime(item, (when, when))
    return path


def seed_sets(backups: Path, days: dict[str, float]) -> None:
    """Sets a past run left: name -> age in days; a dot-name is a set a failed run left half-written.
    They belong to the user the job runs as, as the volume's files do in the pod."""
    owner = postgres_owner()
    for name, age in days.items():
        folder = backups / name
        folder.mkdir()
        (folder / "user_management.dump").write_text("an older dump")
        for item in (folder, folder / "user_management.dump"):
            if owner is not None:
                os.chown(item, *owner)
        aged(folder, age)


def entries(folder: str | Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir())


def dump_tables(path: Path) -> str:
    return subprocess.run(
        [_pg_bin("pg_restore"), "--list", str(path)], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with s3_server() as server:
        yield server


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def objects_with(
    captured_stack: Callable[..., CapturedStack], stack: str, config: dict[str, str]
) -> list[Manifest]:
    captured = captured_stack(stack, config)
    _configs[stack] = captured.config
    return cluster_objects(captured)


async def test_the_job_dumps_every_database_and_the_roles_and_prunes_old_sets(
    stack: str, captured_stack: Callable[..., CapturedStack]
) -> None:
    objects = objects_with(captured_stack, stack, {})
    keep = retention_days(objects)
    with dump_source(objects) as (primary, source), tempfile.TemporaryDirectory() as scratch:
        await write_each_database(objects, primary, f"{stack} data")
        await wait_replayed(primary, source, objects)
        mounts = PodMounts(Path(scratch))
        backups = Path(mounts.directory("backups"))
        seed_sets(
            backups, {"20200101T000000Z": keep + 1, "20200102T000000Z": keep - 0.5, ".20200103T000000Z": 0}
        )
        output = run_backup_job(objects, source, mounts, str(backups))
        assert "complete" in output
        sets = entries(backups)
        assert sets[0] == "20200102T000000Z" and len(sets) == 2, f"old and half-written sets pruned: {sets}"
        made = backups / sets[1]
        assert entries(made) == sorted(["roles.sql", *(f"{db}.dump" for db in DATABASES)])
        for database in DATABASES:
            assert "TABLE DATA public backed_up" in dump_tables(made / f"{database}.dump"), database
        roles = (made / "roles.sql").read_text()
        for database in DATABASES:
            assert f"CREATE ROLE {database};" in roles and "SCRAM-SHA-256$" in roles


async def test_with_a_target_each_set_is_uploaded_and_old_objects_are_pruned_there(
    stack: str, captured_stack: Callable[..., CapturedStack], s3: S3
) -> None:
    prefix = f"venta-{stack}/postgres"
    objects = objects_with(captured_stack, stack, s3.target_config(prefix))
    keep = retention_days(objects)
    cron = find(objects, "CronJob", "postgres-backup")
    upload = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert upload["name"] == "upload" and upload["image"].startswith("rclone/rclone:1.60.1")
    # Objects of earlier runs on the target: one past the retention, one within it.
    with tempfile.TemporaryDirectory() as earlier:
        seed_sets(Path(earlier), {"20200101T000000Z": keep + 1, "20200102T000000Z": keep - 0.5})
        s3.rclone("copy", earlier, f":s3:{s3.bucket}/{prefix}")
    assert s3.files(prefix) == [
        "20200101T000000Z/user_management.dump",
        "20200102T000000Z/user_management.dump",
    ]
    with dump_source(objects) as (primary, source), tempfile.TemporaryDirectory() as scratch:
        await write_each_database(objects, primary, f"{stack} data")
        await wait_replayed(primary, source, objects)
        mounts = PodMounts(Path(scratch))
        backups = mounts.directory("backups")
        run_backup_job(objects, source, mounts, backups)
        (made,) = entries(backups)
    uploaded = s3.files(prefix)
    expected = sorted(f"{made}/{name}" for name in ["roles.sql", *(f"{db}.dump" for db in DATABASES)])
    assert uploaded == ["20200102T000000Z/user_management.dump", *expected], json.dumps(uploaded)
