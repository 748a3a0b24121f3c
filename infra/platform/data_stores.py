"""The stack's PostgreSQL, Redis and NATS, each admitting exactly the services the catalog says use it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.builders import names
from infra.builders.labels import selector
from infra.components.datastore import DataStore, DataStoreCommon
from infra.components.nats import Nats, NatsArgs
from infra.components.postgres import Postgres, PostgresArgs
from infra.components.redis import Redis, RedisArgs
from infra.platform.guard_rails import ChildOptions
from stacks.catalog import SERVICES
from stacks.model import StackSettings


@dataclass(frozen=True)
class DataStores:
    postgres: Postgres
    redis: Redis
    nats: Nats

    def all(self) -> list[DataStore]:
        return [self.postgres, self.redis, self.nats]


def data_stores(
    name: str, s: StackSettings, namespace: pulumi.Input[str], instance: str, child: ChildOptions
) -> DataStores:
    common = DataStoreCommon(
        namespace=namespace,
        instance=instance,
        storage_class=s.storage.class_name,
        monitoring_namespace=s.monitoring.namespace,
        spread_across_nodes=s.spread_across_nodes,
        pull_policy=s.images.pull_policy,
    )

    def clients(uses: str) -> list[dict[str, str]]:
        return [selector(spec.name, instance) for spec in SERVICES if getattr(spec, uses)]

    storage, secrets = s.storage, s.secrets
    # Each store: its settings, volume size and clients (the services whose catalog entry uses it).
    postgres = PostgresArgs(
        s.postgres,
        common,
        storage.postgres,
        clients("database"),
        backup_size=storage.backups,
        databases=[spec.database_name for spec in SERVICES if spec.database],
        superuser_password=secrets.postgres_password,
    )
    redis = RedisArgs(s.redis, common, storage.redis, clients("redis"), password=secrets.redis_password)
    nats = NatsArgs(s.nats, common, storage.nats, clients("nats"), users=[e.name for e in SERVICES if e.nats])
    return DataStores(
        Postgres(f"{name}-{names.POSTGRES}", postgres, child(names.POSTGRES)),
        Redis(f"{name}-{names.REDIS}", redis, child(names.REDIS)),
        Nats(f"{name}-{names.NATS}", nats, child(names.NATS)),
    )
