"""NATS with JetStream: one server in dev, a cluster of three with route authentication in prod."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.builders import datastore_config as conf
from infra.builders import names, network, pod
from infra.components.datastore import DATA_VOLUME, DataStore, DataStoreArgs
from stacks.model import Nats as NatsSettings
from stacks.quantities import memory_bytes

core, meta = k8s.core.v1, k8s.meta.v1

PORTS = names.NATS_PORTS


@dataclass
class NatsArgs(DataStoreArgs[NatsSettings]):
    # One NATS user per service that publishes or subscribes, named after the service.
    users: list[str]
    # The Kubernetes name: the Service clients connect to, the StatefulSet and its pods.
    app: str = names.NATS


class Nats(DataStore):
    passwords: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: NatsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        s, common = args.settings, args.common
        super().__init__("venta:data:Nats", name, args.app, "message-bus", s.image, common, opts)
        self.passwords = {user: self.make_password(user) for user in args.users} if s.auth else {}
        cluster_password = self.make_password("cluster") if s.auth and s.replicas > 1 else None
        namespace = pulumi.Output.from_input(common.namespace)
        store_bytes = memory_bytes(args.storage_size)
        config = pulumi.Output.all(self.passwords, cluster_password, namespace).apply(
            lambda v: {"nats.conf": conf.nats_conf(v[0], v[2], s.replicas, store_bytes, v[1], self.app)}
        )
        # nats-server reads its config file at start: new users or routes make a new Secret under a new
        # name, and the changed pod template rolls the servers one by one.
        self.config = self.secret("config", pulumi.Output.secret(config))
        self.services(self.app, self.labels, self.selector, PORTS)
        self.statefulset(
            self.app,
            self.labels,
            self._template(s),
            s.resources,
            args.storage_size,
            replicas=s.replicas,
            # Servers must find each other to form the cluster, so they start together.
            pod_management_policy="Parallel",
        )
        if s.replicas > 1:
            self.disruption_budget(self.app, self.labels, self.selector)
        peers = [network.pods(self.selector)]
        ingress = [
            *self.client_rule(args.clients, PORTS["client"]),
            network.allow_from(peers, PORTS["cluster"]),
            network.allow_from([network.namespace(common.monitoring_namespace)], PORTS["monitor"]),
        ]
        egress = [network.allow_to(peers, PORTS["cluster"]), network.dns()]
        self.network_policy(self.app, self.labels, network.policy(self.selector, ingress, egress))
        self.register_outputs({"host": self.app, "replicas": s.replicas})

    def _template(self, s: NatsSettings) -> core.PodTemplateSpecArgs:
        ports = [core.ContainerPortArgs(name=n, container_port=p, protocol="TCP") for n, p in PORTS.items()]
        # Ready once it serves clients; alive (and started) once JetStream is up, which takes longer.
        jetstream = "/healthz?js-enabled-only=true"
        container = self.container(
            "nats",
            s.resources,
            [
                pod.mount(DATA_VOLUME, "/data"),
                pod.mount("config", "/etc/nats", read_only=True),
                pod.mount(pod.TMP_VOLUME, "/tmp"),
            ],
            command=["nats-server", "--config", "/etc/nats/nats.conf"],
            ports=ports,
            env=[pod.field_env("POD_NAME", "metadata.name")],
            startup_probe=pod.http_probe(jetstream, "monitor", 5, 5, failures=60),
            liveness_probe=pod.http_probe(jetstream, "monitor", 30, 10),
            readiness_probe=pod.http_probe("/healthz", "monitor", 5, 5),
        )
        spec = pod.restricted_pod(
            self.service_account(self.app, self.labels),
            [container],
            [pod.scratch_volume(), self.secret_files("config", self.config)],
            grace_seconds=60,
            spread=self.selector if self.common.spread_across_nodes else None,
        )
        return core.PodTemplateSpecArgs(metadata=meta.ObjectMetaArgs(labels=self.labels), spec=spec)
