"""Versioned SQL migrations owned by each service, safe when several replicas start at once.

Files are ``services/<pkg>/migrations/NNNN_<name>.sql``. ``apply_migrations`` takes a PostgreSQL
advisory lock keyed by the service name, so replicas starting together queue up and the later ones
find everything applied. Each file runs in its own transaction together with its row in
``schema_migrations``; a file changed after it was applied (checksum mismatch) stops start-up rather
than leaving the schema in an unknown state.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger("venta.migrations")
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return migrations


def lock_key(service: str) -> int:
    # Advisory locks take a bigint; a stable 32-bit hash of the name keeps services apart.
    return zlib.crc32(f"venta-migrations:{service}".encode())


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    service    text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)"""


async def apply_migrations(conn: asyncpg.Connection, service: str, directory: Path) -> list[int]:
    """Apply what is missing; return the versions applied now."""
    migrations = load_migrations(directory)
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", lock_key(service))
    try:
        await conn.execute(_BOOKKEEPING)
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations WHERE service = $1", service)
        done = {row["version"]: row["checksum"] for row in rows}
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{service} migration {migration.version:04d}_{migration.name} changed after it "
                        "was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (service, version, name, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    service,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.version)
            log.info("applied migration", extra={"version": migration.version, "migration": migration.name})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key(service))
    return applied_now
