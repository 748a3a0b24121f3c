"""Platform: the namespace and its guard rails, the data stores, the eight services, the gateway's Ingress."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.builders import call_graph, keys, names, quota
from infra.builders.labels import labels, selector
from infra.builders.service_env import Credentials, Endpoints, config_data, endpoints, secret_data
from infra.components.datastore import DataStoreCommon
from infra.components.nats import Nats, NatsArgs
from infra.components.postgres import Postgres, PostgresArgs
from infra.components.redis import Redis, RedisArgs
from infra.components.service import FileStorage, VentaService, VentaServiceArgs
from infra.observability.component import Observability, ObservabilityArgs
from stacks.catalog import SERVICES, ServiceSpec
from stacks.model import StackSettings

core, meta = k8s.core.v1, k8s.meta.v1


@dataclass
class PlatformArgs:
    settings: StackSettings


class Platform(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    gateway_url: pulumi.Output[str]
    images: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("venta:platform:Platform", name, None, opts)
        s = args.settings
        self.instance = s.namespace
        self.kube_provider = self._make_provider(s)
        kube = pulumi.ResourceOptions(parent=self, provider=self.kube_provider)
        ns = self._namespace(s, kube)
        self.namespace = ns.metadata.name
        under_ns = pulumi.ResourceOptions(
            parent=self, providers={"kubernetes": self.kube_provider}, depends_on=[ns]
        )
        postgres, redis, nats = self._data_stores(s, under_ns)
        wired = pulumi.ResourceOptions(
            parent=self,
            providers={"kubernetes": self.kube_provider},
            depends_on=[ns, postgres, redis, nats],
        )
        self.images = self._services(s, postgres, redis, nats, wired)
        if s.monitoring.prometheus_operator:
            self._observability(s, wired)
        self.gateway_url = self._ingress(s, under_ns)
        self.register_outputs(
            {"namespace": self.namespace, "gatewayUrl": self.gateway_url, "images": self.images}
        )

    def _data_stores(self, s: StackSettings, opts: pulumi.ResourceOptions) -> tuple[Postgres, Redis, Nats]:
        """Each store admits exactly the services the catalog says use it."""
        common = DataStoreCommon(
            namespace=self.namespace,
            instance=self.instance,
            storage_class=s.storage.class_name,
            monitoring_namespace=s.monitoring.namespace,
            spread_across_nodes=s.spread_across_nodes,
            pull_policy=s.images.pull_policy,
        )
        db_users = [spec for spec in SERVICES if spec.database]
        postgres = Postgres(
            "postgres",
            PostgresArgs(
                settings=s.postgres,
                common=common,
                storage_size=s.storage.postgres,
                backup_size=s.storage.backups,
                databases=[spec.database_name for spec in db_users],
                clients=[self._selector(spec) for spec in db_users],
                superuser_password=s.secrets.postgres_password,
            ),
            opts,
        )
        redis = Redis(
            "redis",
            RedisArgs(
                settings=s.redis,
                common=common,
                storage_size=s.storage.redis,
                clients=[self._selector(spec) for spec in SERVICES if spec.redis],
                password=s.secrets.redis_password,
            ),
            opts,
        )
        nats_users = [spec for spec in SERVICES if spec.nats]
        nats = Nats(
            "nats",
            NatsArgs(
                settings=s.nats,
                common=common,
                storage_size=s.storage.nats,
                users=[spec.name for spec in nats_users],
                clients=[self._selector(spec) for spec in nats_users],
            ),
            opts,
        )
        return postgres, redis, nats

    def _services(
        self, s: StackSettings, postgres: Postgres, redis: Redis, nats: Nats, opts: pulumi.ResourceOptions
    ) -> dict[str, pulumi.Output[str]]:
        """The eight services, each given only its own credentials; returns their image references."""
        seed = self._signing_seed(s)
        public_key = pulumi.Output.unsecret(seed.apply(keys.public_key_pem))
        where = endpoints(s.namespace)
        refs: dict[str, pulumi.Output[str]] = {}
        for spec in SERVICES:
            creds = pulumi.Output.all(
                postgres.passwords.get(spec.database_name),
                redis.password if spec.redis else None,
                nats.passwords.get(spec.name),
                seed if spec.signs_tokens else None,
            ).apply(lambda v: Credentials(*v))
            service = VentaService(spec.name, self._service_args(s, spec, where, public_key, creds), opts)
            refs[spec.name] = service.image_ref
        return refs

    def _observability(self, s: StackSettings, opts: pulumi.ResourceOptions) -> None:
        Observability(
            "observability",
            ObservabilityArgs(
                settings=s.monitoring,
                namespace=self.namespace,
                namespace_name=s.namespace,
                instance=self.instance,
                version=s.images.tag,
                services=[spec.name for spec in SERVICES],
                nats_servers=s.nats.replicas,
            ),
            opts,
        )

    def _selector(self, spec: ServiceSpec) -> dict[str, str]:
        return selector(spec.name, self.instance)

    def _make_provider(self, s: StackSettings) -> k8s.Provider:
        kube = s.kubernetes
        return k8s.Provider(
            "kubernetes",
            kubeconfig=kube.kubeconfig,
            context=kube.context,
            render_yaml_to_directory=kube.render_dir,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _namespace(self, s: StackSettings, kube: pulumi.ResourceOptions) -> core.Namespace:
        ns_labels = {
            **labels(s.namespace, "namespace", self.instance, s.images.tag),
            # Pod Security Admission refuses any pod that breaks the restricted profile.
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
        ns = core.Namespace(
            "namespace", metadata=meta.ObjectMetaArgs(name=s.namespace, labels=ns_labels), opts=kube
        )
        guard = pulumi.ResourceOptions(parent=self, provider=self.kube_provider, depends_on=[ns])
        base = meta.ObjectMetaArgs(name=s.namespace, namespace=ns.metadata.name, labels=ns_labels)
        core.ResourceQuota(
            "quota", metadata=base, spec=core.ResourceQuotaSpecArgs(hard=quota.hard_limits(s)), opts=guard
        )
        core.LimitRange(
            "limits",
            metadata=base,
            spec=core.LimitRangeSpecArgs(
                limits=[
                    # Only for containers that forget their own; every container here sets both.
                    core.LimitRangeItemArgs(
                        type="Container",
                        default={"cpu": "500m", "memory": "256Mi"},
                        default_request={"cpu": "50m", "memory": "64Mi"},
                    )
                ]
            ),
            opts=guard,
        )
        k8s.networking.v1.NetworkPolicy(
            "default-deny",
            metadata=meta.ObjectMetaArgs(name="default-deny", namespace=ns.metadata.name, labels=ns_labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=meta.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
            ),
            opts=guard,
        )
        return ns

    def _signing_seed(self, s: StackSettings) -> pulumi.Output[str]:
        given = s.secrets.jwt_signing_seed
        if given is not None:
            return pulumi.Output.secret(given.get_secret_value())
        generated = random.RandomBytes(
            "jwt-signing-seed", length=32, opts=pulumi.ResourceOptions(parent=self)
        )
        return pulumi.Output.secret(generated.base64)

    def _service_args(
        self,
        s: StackSettings,
        spec: ServiceSpec,
        where: Endpoints,
        public_key: pulumi.Output[str],
        creds: pulumi.Output[Credentials],
    ) -> VentaServiceArgs:
        files = None
        if spec.file_storage:
            files = FileStorage(
                size=s.storage.files,
                access_mode=s.storage.files_access_mode,
                class_name=s.storage.files_class_name or s.storage.class_name,
            )
        return VentaServiceArgs(
            spec=spec,
            settings=s.services[spec.name],
            namespace=self.namespace,
            instance=self.instance,
            images=s.images,
            config=public_key.apply(lambda pem: config_data(spec, s, where, pem)),
            secrets=pulumi.Output.secret(creds.apply(lambda c: secret_data(spec, where, c))),
            network=call_graph.service_policy(
                spec, SERVICES, self.instance, s.gateway.ingress_namespace, s.monitoring.namespace
            ),
            spread_across_nodes=s.spread_across_nodes,
            file_storage=files,
        )

    def _ingress(self, s: StackSettings, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        gw = s.gateway
        net = k8s.networking.v1
        (entry,) = (spec for spec in SERVICES if spec.public_entry)
        k8s.networking.v1.Ingress(
            "gateway",
            metadata=meta.ObjectMetaArgs(
                name=entry.name,
                namespace=self.namespace,
                labels=labels(entry.name, entry.area, self.instance, s.images.tag),
                # real-time's WebSockets stay open far longer than the controller's default 60 s.
                annotations={
                    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
                    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
                },
            ),
            spec=net.IngressSpecArgs(
                ingress_class_name=gw.ingress_class,
                tls=[net.IngressTLSArgs(hosts=[gw.host], secret_name=gw.tls_secret)]
                if gw.tls_secret
                else None,
                rules=[
                    net.IngressRuleArgs(
                        host=gw.host,
                        http=net.HTTPIngressRuleValueArgs(
                            paths=[
                                net.HTTPIngressPathArgs(
                                    path="/",
                                    path_type="Prefix",
                                    backend=net.IngressBackendArgs(
                                        service=net.IngressServiceBackendArgs(
                                            name=entry.name,
                                            port=net.ServiceBackendPortArgs(name=names.SERVICE_PORT_NAME),
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ],
            ),
            opts=opts,
        )
        scheme = "https" if gw.tls_secret else "http"
        return pulumi.Output.from_input(f"{scheme}://{gw.host}")
