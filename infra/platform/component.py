"""Platform: the component a stack builds; it wires the parts the files beside it create."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.observability.component import Observability, ObservabilityArgs
from infra.observability.exporters import StoreSecrets
from infra.platform.data_stores import data_stores
from infra.platform.exposure import ingress
from infra.platform.guard_rails import namespace, resource_quota
from infra.platform.requirements import cluster_requirements
from infra.platform.services import services
from stacks.catalog import SERVICE_NAMES
from stacks.model import StackSettings


@dataclass
class PlatformArgs:
    settings: StackSettings


class Platform(pulumi.ComponentResource):
    """Every child is named `<name>-<what>`, so two platforms never collide. Each also carries its
    earlier name (`namespace`, `postgres`, ...) as an alias, so a stack deployed before children were
    named after the platform keeps its objects; a component's own children follow its alias."""

    namespace: pulumi.Output[str]
    gateway_url: pulumi.Output[str]
    images: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("venta:platform:Platform", name, None, opts)
        s = args.settings
        instance = s.namespace
        kube = s.kubernetes
        self.kube_provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=kube.kubeconfig,
            context=kube.context,
            render_yaml_to_directory=kube.render_dir,
            # The program is the source of truth: a field changed behind its back (`kubectl scale`,
            # an edit) is taken back by the next update instead of stopping it with a server-side
            # apply conflict, and a drift check (venta drift) shows it as a change.
            enable_patch_force=True,
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name="kubernetes")]),
        )

        def child(before: str) -> pulumi.ResourceOptions:
            """The one set of options of the platform's children: the provider reaches every
            Kubernetes object below through its parent."""
            return pulumi.ResourceOptions(
                parent=self,
                providers={"kubernetes": self.kube_provider},
                aliases=[pulumi.Alias(name=before)],
            )

        ns = namespace(name, s, instance, child, after=cluster_requirements(name, s, child))
        self.namespace = ns.metadata.name
        stores = data_stores(name, s, self.namespace, instance, child)
        built = services(name, s, self.namespace, instance, stores, child)
        self.images = {service.service_name: service.image_ref for service in built}
        workloads = [w for store in stores.all() for w in store.workloads]
        workloads += [w for service in built for w in service.workloads]
        if s.monitoring.prometheus_operator:
            observability = Observability(
                f"{name}-observability",
                ObservabilityArgs(
                    settings=s.monitoring,
                    namespace=self.namespace,
                    namespace_name=s.namespace,
                    instance=instance,
                    version=s.images.tag,
                    services=list(SERVICE_NAMES),
                    nats_servers=s.nats.replicas,
                    store_secrets=StoreSecrets(
                        postgres=stores.postgres.credentials.metadata.name if stores.postgres else None,
                        redis_password=stores.redis.password if stores.redis else None,
                        redis=stores.redis is not None,
                        nats=stores.nats is not None,
                    ),
                    pull_policy=s.images.pull_policy,
                ),
                child("observability"),
            )
            workloads += observability.workloads
        resource_quota(name, s, instance, ns, workloads, child)
        self.gateway_url = ingress(name, s, self.namespace, instance, child)
        self.register_outputs(
            {"namespace": self.namespace, "gatewayUrl": self.gateway_url, "images": self.images}
        )
