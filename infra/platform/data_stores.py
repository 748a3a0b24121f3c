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

    postgres = Postgres(
        f"{name}-{names.POSTGRES}",
        PostgresArgs(
            settings=s.postgres,
            common=common,
            storage_size=s.storage.postgres,
            backup_size=s.storage.backups,
            databases=[spec.database_name for spec in SERVICES if spec.database],
            clients=clients("database"),
            superuser_password=s.secrets.postgres_password,
        ),
        child(names.POSTGRES),
    )
    redis = Redis(
        f"{name}-{names.REDIS}",
        RedisArgs(
            settings=s.redis,
            common=common,
            storage_size=s.storage.redis,
            clients=clients("redis"),
            password=s.secrets.redis_password,
        ),
        child(names.REDIS),
    )
    nats = Nats(
        f"{name}-{names.NATS}",
        NatsArgs(
            settings=s.nats,
            common=common,
            storage_size=s.storage.nats,
            users=[spec.name for spec in SERVICES if spec.nats],
            clients=clients("nats"),
        ),
        child(names.NATS),
    )
    return DataStores(postgres, redis, nats)
