"""Redis: one server with its config (and password) in a Secret; AOF persistence in prod."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from infra.builders import datastore_config as conf
from infra.builders import network, pod
from infra.builders.labels import labels, selector
from infra.components import datastore
from infra.components.datastore import DATA_VOLUME, DataStoreCommon
from stacks.model import Redis as RedisSettings

apps, core, meta = k8s.apps.v1, k8s.core.v1, k8s.meta.v1

PORT = 6379
CONFIG = "redis-config"


@dataclass
class RedisArgs:
    settings: RedisSettings
    common: DataStoreCommon
    storage_size: str
    clients: list[dict[str, str]]
    password: SecretStr | None = None


class Redis(pulumi.ComponentResource):
    password: pulumi.Output[str] | None

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("venta:data:Redis", name, None, opts)
        s, common = args.settings, args.common
        self.labels = labels("redis", "cache", common.instance, s.image.split(":")[1].split("@")[0])
        self.selector = selector("redis", common.instance)
        self.password = datastore.password("redis-password", args.password, self) if s.auth else None
        config: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.from_input(self.password).apply(
                lambda pw: {"redis.conf": conf.redis_conf(pw, s.append_only), "password": pw or ""}
            )
        )
        datastore.secret(CONFIG, common, self.labels, config, self)
        datastore.services("redis", common, self.labels, self.selector, {"redis": PORT}, self)
        # The password is read from the mounted Secret inside the probe, never from argv or the environment.
        auth = 'REDISCLI_AUTH="$(cat /etc/redis/password)" ' if s.auth else ""
        ping = ["sh", "-c", f"{auth}redis-cli -h 127.0.0.1 -p {PORT} ping | grep -q PONG"]
        account = datastore.service_account("redis", common, self.labels, self)
        container = core.ContainerArgs(
            name="redis",
            image=s.image,
            image_pull_policy=common.pull_policy,
            command=["redis-server", "/etc/redis/redis.conf"],
            ports=[core.ContainerPortArgs(name="redis", container_port=PORT, protocol="TCP")],
            resources=pod.resources(s.resources),
            startup_probe=pod.exec_probe(ping, 2, 5, failures=30),
            liveness_probe=pod.tcp_probe("redis", 30, 10),
            readiness_probe=pod.exec_probe(ping, 5, 5),
            security_context=pod.container_security(pod.UID),
            volume_mounts=[
                pod.mount(DATA_VOLUME, "/data"),
                pod.mount("config", "/etc/redis", read_only=True),
                pod.mount(pod.TMP_VOLUME, "/tmp"),
            ],
        )
        self.statefulset = apps.StatefulSet(
            "redis",
            metadata=datastore.workload_metadata("redis", common, self.labels, s.image),
            spec=apps.StatefulSetSpecArgs(
                replicas=1,
                service_name="redis-headless",
                selector=meta.LabelSelectorArgs(match_labels=self.selector),
                template=core.PodTemplateSpecArgs(
                    # Redis reads its config only at start: a new password or persistence mode rolls it.
                    metadata=meta.ObjectMetaArgs(
                        labels=self.labels, annotations={"checksum/config": datastore.config_checksum(config)}
                    ),
                    spec=core.PodSpecArgs(
                        service_account_name=account,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        security_context=pod.pod_security(pod.UID),
                        containers=[container],
                        volumes=[
                            pod.scratch_volume(),
                            datastore.secret_files("config", CONFIG),
                        ],
                    ),
                ),
                volume_claim_templates=[datastore.volume_claim(args.storage_size, common.storage_class)],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        datastore.network_policy(
            "redis",
            common,
            self.labels,
            network.policy(self.selector, datastore.client_rule(args.clients, PORT), [network.dns()]),
            self,
        )
        self.register_outputs({"host": "redis", "auth": s.auth})
