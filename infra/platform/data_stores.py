"""The stack's PostgreSQL, Redis and NATS, each admitting exactly the services the catalog says use it,
or, for a store the stack is pointed at instead (`<store>.external`), nothing but the credentials its
operator gave the stack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pydantic import SecretStr

from infra.builders import names
from infra.builders.labels import selector
from infra.components.datastore import DataStore, DataStoreCommon
from infra.components.nats import Nats, NatsArgs
from infra.components.postgres import Postgres, PostgresArgs
from infra.components.redis import Redis, RedisArgs
from infra.platform.guard_rails import ChildOptions
from stacks.catalog import BY_NAME, SERVICES
from stacks.model import StackSettings


@dataclass(frozen=True)
class DataStores:
    """The stores the stack runs (None for an external one), and what each service is given to sign
    in, wherever its store runs."""

    postgres: Postgres | None
    redis: Redis | None
    nats: Nats | None
    postgres_passwords: Mapping[str, pulumi.Output[str]]  # database -> its role's password
    redis_password: pulumi.Output[str] | None
    nats_passwords: Mapping[str, pulumi.Output[str]]  # user (the service's name) -> password

    def all(self) -> list[DataStore]:
        """The stores this stack deploys."""
        return [store for store in (self.postgres, self.redis, self.nats) if store is not None]


def _given(secret: SecretStr) -> pulumi.Output[str]:
    return pulumi.Output.secret(secret.get_secret_value())


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
    # Each store the stack runs: its settings, volume size and clients (the services whose catalog
    # entry uses it).
    postgres = redis = nats = None
    if s.postgres.external is None:
        postgres_args = PostgresArgs(
            s.postgres,
            common,
            storage.postgres,
            clients("database"),
            backup_size=storage.backups,
            databases=[spec.database_name for spec in SERVICES if spec.database],
            superuser_password=secrets.postgres_password,
        )
        postgres = Postgres(f"{name}-{names.POSTGRES}", postgres_args, child(names.POSTGRES))
    if s.redis.external is None:
        redis_args = RedisArgs(
            s.redis, common, storage.redis, clients("redis"), password=secrets.redis_password
        )
        redis = Redis(f"{name}-{names.REDIS}", redis_args, child(names.REDIS))
    if s.nats.external is None:
        users = [entry.name for entry in SERVICES if entry.nats]
        nats = Nats(
            f"{name}-{names.NATS}",
            NatsArgs(s.nats, common, storage.nats, clients("nats"), users=users),
            child(names.NATS),
        )
    by_database = {BY_NAME[n].database_name: pw for n, pw in secrets.postgres_passwords.items()}
    redis_password = secrets.redis_password if s.redis.auth else None
    return DataStores(
        postgres,
        redis,
        nats,
        postgres_passwords=postgres.passwords
        if postgres
        else {db: _given(pw) for db, pw in by_database.items()},
        redis_password=redis.password if redis else (_given(redis_password) if redis_password else None),
        nats_passwords=nats.passwords
        if nats
        else {user: _given(pw) for user, pw in secrets.nats_passwords.items()},
    )
