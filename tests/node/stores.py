"""PostgreSQL, Redis, a cache Redis and NATS on the host, playing a stack's external data stores: they
listen on the host's end of the node link, admit the node's address (pods leave the node masqueraded
as it) with passwords, and hold the roles, databases and users (NATS' with their subject permissions)
a stack's services expect of an external store, made from the same builders the in-cluster stores'
files come from; the two Redis servers are bounded and evict as the in-cluster ones do."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from infra.builders.datastore_config import nats_conf, postgres_init_sql, redis_conf
from localdev.servers import Server
from stacks.catalog import SERVICES
from stacks.model import StackSettings
from tests.datastores.servers import INIT_DIR, PodPostgres, RenderedNats, RenderedRedis, private_file

NATS_STORE_BYTES = 1 << 30
SUPERUSER_PASSWORD_FILE = PurePosixPath("/run/secrets/postgres/password")


@dataclass(frozen=True)
class ExternalStores:
    host: str
    ports: dict[str, int]  # the store's key in the stack's settings (postgres, redisCache, ...) -> port
    postgres_passwords: dict[str, str]  # service -> its role's password (role and database named alike)
    redis_password: str
    cache_password: str
    nats_passwords: dict[str, str]  # service -> its NATS user's password (the user is the service name)


def _password() -> str:
    return secrets.token_urlsafe(24)


class OperatorPostgres(PodPostgres):
    """PostgreSQL made as the postgres image makes a new volume, its init script the roles and databases
    the services expect; it admits ``clients`` alone over TCP, with passwords (local sockets, which the
    init script uses, trust the machine's own users)."""

    def __init__(self, host: str, clients: str, init_sql: str) -> None:
        self.clients = clients
        env = {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD_FILE": str(SUPERUSER_PASSWORD_FILE)}
        files = {SUPERUSER_PASSWORD_FILE: _password(), PurePosixPath(INIT_DIR, "roles.sql"): init_sql}
        super().__init__(host, env, files)

    def _initialize(self) -> None:
        super()._initialize()
        hba = f"local all all trust\nhost all all {self.clients} scram-sha-256\n"
        private_file(self.data_dir / "pg_hba.conf", hba, self.owner)


@contextlib.contextmanager
def external_stores(host: str, clients: str, settings: StackSettings) -> Iterator[ExternalStores]:
    """The four stores on ``host``, admitting the ``clients`` network, the Redis servers' memory as
    ``settings`` give it; stopped and deleted on exit."""
    postgres_passwords = {spec.name: _password() for spec in SERVICES if spec.database}
    nats_passwords = {spec.name: _password() for spec in SERVICES if spec.nats}
    redis_password, cache_password = _password(), _password()
    servers: list[Server] = []
    try:
        by_database = {
            spec.database_name: postgres_passwords[spec.name] for spec in SERVICES if spec.database
        }
        postgres = OperatorPostgres(host, clients, postgres_init_sql(by_database))
        servers.append(postgres)
        postgres.start_as_pod()
        redis = RenderedRedis(host, redis_conf(redis_password, False, settings.redis.max_memory_bytes))
        cache_conf = redis_conf(
            cache_password, False, settings.redis_cache.max_memory_bytes, "allkeys-lru", persistent=False
        )
        cache = RenderedRedis(host, cache_conf)
        servers += [redis, cache]
        redis.start()
        cache.start()
        conf = nats_conf(nats_passwords, "external", 1, NATS_STORE_BYTES, None)
        nats = RenderedNats(host, conf, {"POD_NAME": "nats-external"})
        servers.append(nats)
        nats.start()
        ports = {"postgres": postgres.port, "redis": redis.port, "redisCache": cache.port, "nats": nats.port}
        yield ExternalStores(host, ports, postgres_passwords, redis_password, cache_password, nats_passwords)
    finally:
        for server in servers:
            server.cleanup()
