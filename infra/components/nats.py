"""NATS with JetStream: one server in dev, a cluster of three with route authentication in prod."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.builders import datastore_config as conf
from infra.builders import network, pod
from infra.builders.labels import labels, selector
from infra.components import datastore
from infra.components.datastore import DATA_VOLUME, DataStoreCommon
from stacks.model import Nats as NatsSettings
from stacks.quantities import memory_bytes

apps, core, meta = k8s.apps.v1, k8s.core.v1, k8s.meta.v1

PORTS = {"client": 4222, "cluster": 6222, "monitor": 8222}
CONFIG = "nats-config"


@dataclass
class NatsArgs:
    settings: NatsSettings
    common: DataStoreCommon
    storage_size: str
    # One NATS user per service that publishes or subscribes, named after the service.
    users: list[str]
    clients: list[dict[str, str]]


class Nats(pulumi.ComponentResource):
    passwords: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: NatsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("venta:data:Nats", name, None, opts)
        s, common = args.settings, args.common
        self.labels = labels("nats", "message-bus", common.instance, s.image.split(":")[1].split("@")[0])
        self.selector = selector("nats", common.instance)
        self.passwords = (
            {user: datastore.password(f"nats-{user}", None, self) for user in args.users} if s.auth else {}
        )
        cluster_password = (
            datastore.password("nats-cluster", None, self) if s.auth and s.replicas > 1 else None
        )
        namespace = pulumi.Output.from_input(common.namespace)
        config = pulumi.Output.all(self.passwords, cluster_password, namespace).apply(
            lambda v: {
                "nats.conf": conf.nats_conf(v[0], v[2], s.replicas, memory_bytes(args.storage_size), v[1])
            }
        )
        datastore.secret(CONFIG, common, self.labels, pulumi.Output.secret(config), self)
        self.config_hash = datastore.config_checksum(config)
        datastore.services("nats", common, self.labels, self.selector, PORTS, self)
        account = datastore.service_account("nats", common, self.labels, self)
        self.statefulset = apps.StatefulSet(
            "nats",
            metadata=datastore.workload_metadata("nats", common, self.labels, s.image),
            spec=apps.StatefulSetSpecArgs(
                replicas=s.replicas,
                service_name="nats-headless",
                # Servers must find each other to form the cluster, so they start together.
                pod_management_policy="Parallel",
                selector=meta.LabelSelectorArgs(match_labels=self.selector),
                template=self._template(s, common, account, self.config_hash),
                volume_claim_templates=[datastore.volume_claim(args.storage_size, common.storage_class)],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if s.replicas > 1:
            datastore.disruption_budget("nats", common, self.labels, self.selector, self)
        peers = [network.pods(self.selector)]
        ingress = [
            *datastore.client_rule(args.clients, PORTS["client"]),
            network.allow_from(peers, PORTS["cluster"]),
            network.allow_from([network.namespace(common.monitoring_namespace)], PORTS["monitor"]),
        ]
        egress = [network.allow_to(peers, PORTS["cluster"]), network.dns()]
        datastore.network_policy(
            "nats", common, self.labels, network.policy(self.selector, ingress, egress), self
        )
        self.register_outputs({"host": "nats", "replicas": s.replicas})

    def _template(
        self,
        s: NatsSettings,
        common: DataStoreCommon,
        account: pulumi.Output[str],
        config_hash: pulumi.Output[str],
    ) -> core.PodTemplateSpecArgs:
        container = core.ContainerArgs(
            name="nats",
            image=s.image,
            image_pull_policy=common.pull_policy,
            command=["nats-server", "--config", "/etc/nats/nats.conf"],
            ports=[
                core.ContainerPortArgs(name=n, container_port=p, protocol="TCP") for n, p in PORTS.items()
            ],
            env=[pod.field_env("POD_NAME", "metadata.name")],
            resources=pod.resources(s.resources),
            startup_probe=pod.http_probe("/healthz?js-enabled-only=true", "monitor", 5, 5, failures=60),
            liveness_probe=pod.http_probe("/healthz?js-enabled-only=true", "monitor", 30, 10),
            readiness_probe=pod.http_probe("/healthz", "monitor", 5, 5),
            security_context=pod.container_security(pod.UID),
            volume_mounts=[
                pod.mount(DATA_VOLUME, "/data"),
                pod.mount("config", "/etc/nats", read_only=True),
                pod.mount(pod.TMP_VOLUME, "/tmp"),
            ],
        )
        spread = common.spread_across_nodes
        return core.PodTemplateSpecArgs(
            # nats-server reads its config file at start: new users or routes roll the servers one by one.
            metadata=meta.ObjectMetaArgs(labels=self.labels, annotations={"checksum/config": config_hash}),
            spec=core.PodSpecArgs(
                service_account_name=account,
                automount_service_account_token=False,
                enable_service_links=False,
                security_context=pod.pod_security(pod.UID),
                termination_grace_period_seconds=60,
                containers=[container],
                volumes=[
                    pod.scratch_volume(),
                    core.VolumeArgs(
                        name="config",
                        secret=core.SecretVolumeSourceArgs(secret_name=CONFIG, default_mode=0o440),
                    ),
                ],
                topology_spread_constraints=pod.spread(self.selector) if spread else None,
                affinity=pod.anti_affinity(self.selector) if spread else None,
            ),
        )
