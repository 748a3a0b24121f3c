"""The stack's PostgreSQL, Redis, cache Redis and NATS, each admitting exactly the services the catalog
says use it, or, for a store the stack is pointed at instead (`<store>.external`), nothing but the
credentials its operator gave the stack."""

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
    redis_cache: Redis | None
    nats: Nats | None
    postgres_passwords: Mapping[str, pulumi.Output[str]]  # database -> its role's password
    redis_password: pulumi.Output[str] | None
    cache_password: pulumi.Output[str] | None
    nats_passwords: Mapping[str, pulumi.Output[str]]  # user (the service's name) -> password

    def all(self) -> list[DataStore]:
        """The stores this stack deploys."""
        stores = (self.postgres, self.redis, self.redis_cache, self.nats)
        return [store for store in stores if store is not None]


def _given(secret: SecretStr) -> pulumi.Output[str]:
    return pulumi.Output.secret(secret.get_secret_value())


def _redis_password(run: Redis | None, given: SecretStr | None, auth: bool) -> pulumi.Output[str] | None:
    """The password of a Redis the stack runs (its own, given or generated), else the one its operator
    gave (None without auth)."""
    if run is not None:
        return run.password
    return _given(given) if auth and given is not None else None


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
    postgres = redis = cache = nats = None
    if s.postgres.external is None:
        postgres_args = PostgresArgs(
            s.postgres,
            common,
            storage.postgres,
            clients("database"),
            backup_size=storage.backups,
            databases=[spec.database_name for spec in SERVICES if spec.database],
            superuser_password=secrets.postgres_password,
            backup_keys=_backup_keys(s),
        )
        postgres = Postgres(f"{name}-{names.POSTGRES}", postgres_args, child(names.POSTGRES))
    if s.redis.external is None:
        redis_args = RedisArgs(
            s.redis, common, storage.redis, clients("redis"), password=secrets.redis_password
        )
        redis = Redis(f"{name}-{names.REDIS}", redis_args, child(names.REDIS))
    if s.redis_cache.external is None:
        # No volume: a cache keeps nothing across restarts.
        cache_args = RedisArgs(
            s.redis_cache,
            common,
            "",
            clients("cache"),
            password=secrets.redis_cache_password,
            app=names.REDIS_CACHE,
        )
        cache = Redis(f"{name}-{names.REDIS_CACHE}", cache_args, child(names.REDIS_CACHE))
    if s.nats.external is None:
        users = [entry.name for entry in SERVICES if entry.nats]
        nats = Nats(
            f"{name}-{names.NATS}",
            NatsArgs(s.nats, common, storage.nats, clients("nats"), users=users),
            child(names.NATS),
        )
    by_database = {BY_NAME[n].database_name: pw for n, pw in secrets.postgres_passwords.items()}
    return DataStores(
        postgres,
        redis,
        cache,
        nats,
        postgres_passwords=postgres.passwords
        if postgres
        else {db: _given(pw) for db, pw in by_database.items()},
        redis_password=_redis_password(redis, secrets.redis_password, s.redis.auth),
        cache_password=_redis_password(cache, secrets.redis_cache_password, s.redis_cache.auth),
        nats_passwords=nats.passwords
        if nats
        else {user: _given(pw) for user, pw in secrets.nats_passwords.items()},
    )


def _backup_keys(s: StackSettings) -> tuple[SecretStr, SecretStr] | None:
    key_id, secret_key = s.secrets.backup_access_key_id, s.secrets.backup_secret_access_key
    return (key_id, secret_key) if key_id is not None and secret_key is not None else None
