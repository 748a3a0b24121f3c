"""Redis: one server with its config (and password) in a Secret, its memory bounded by `maxmemory`.

The main Redis (locations, vendor ownership, rate-limit counters) refuses writes when full and keeps
its data on a volume (AOF in prod); the cache instance (`RedisCache` settings) evicts the least
recently used keys when full and keeps nothing, so no flood of cache entries reaches the main one."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from infra.builders import datastore_config as conf
from infra.builders import names, network, pod
from infra.components.datastore import DATA_VOLUME, DataStore, DataStoreArgs
from stacks.model import Redis as RedisSettings
from stacks.model import RedisCache as RedisCacheSettings

core, meta = k8s.core.v1, k8s.meta.v1

PORT = names.REDIS_PORT


@dataclass
class RedisArgs(DataStoreArgs[RedisSettings | RedisCacheSettings]):
    password: SecretStr | None = None
    # The Kubernetes name: the Service clients connect to, the StatefulSet and its pod.
    app: str = names.REDIS


class Redis(DataStore):
    password: pulumi.Output[str] | None
    config: core.Secret  # redis.conf and the password (key `password`)

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        s = args.settings
        super().__init__("venta:data:Redis", name, args.app, "cache", s.image, args.common, opts)
        self.password = self.make_password("password", args.password) if s.auth else None
        cache = isinstance(s, RedisCacheSettings)
        append_only = isinstance(s, RedisSettings) and s.append_only
        eviction = "allkeys-lru" if cache else "noeviction"

        def files(pw: str | None) -> dict[str, str]:
            text = conf.redis_conf(pw, append_only, s.max_memory_bytes, eviction, persistent=not cache)
            return {"redis.conf": text, "password": pw or ""}

        config = pulumi.Output.from_input(self.password).apply(files)
        # Redis reads its config only at start: a new password or persistence mode makes a new Secret
        # under a new name, and the changed pod template rolls the server.
        self.config = self.secret("config", pulumi.Output.secret(config))
        self.services(self.app, self.labels, self.selector, {"redis": PORT})
        # The password is read from the mounted Secret inside the probe, never from argv or the environment.
        auth = 'REDISCLI_AUTH="$(cat /etc/redis/password)" ' if s.auth else ""
        ping = ["sh", "-c", f"{auth}redis-cli -h 127.0.0.1 -p {PORT} ping | grep -q PONG"]
        mounts = [
            *([] if cache else [pod.mount(DATA_VOLUME, "/data")]),
            pod.mount("config", "/etc/redis", read_only=True),
            pod.mount(pod.TMP_VOLUME, "/tmp"),
        ]
        container = self.container(
            "redis",
            s.resources,
            mounts,
            command=["redis-server", "/etc/redis/redis.conf"],
            ports=[core.ContainerPortArgs(name="redis", container_port=PORT, protocol="TCP")],
            startup_probe=pod.exec_probe(ping, 2, 5, failures=30),
            liveness_probe=pod.tcp_probe("redis", 30, 10),
            readiness_probe=pod.exec_probe(ping, 5, 5),
        )
        spec = pod.restricted_pod(
            self.service_account(self.app, self.labels),
            [container],
            [pod.scratch_volume(), self.secret_files("config", self.config)],
        )
        template = core.PodTemplateSpecArgs(metadata=meta.ObjectMetaArgs(labels=self.labels), spec=spec)
        # The cache has no volume: what it holds is rebuilt from search-discovery's own database.
        self.statefulset(self.app, self.labels, template, s.resources, None if cache else args.storage_size)
        self.network_policy(
            self.app,
            self.labels,
            network.policy(self.selector, self.client_rule(args.clients, PORT), [network.dns()]),
        )
        self.register_outputs({"host": self.app, "auth": s.auth, "eviction": eviction})
