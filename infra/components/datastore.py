"""DataStore: the base of Postgres, Redis and Nats, with what every data store creates the same way.

A data store has a logical `name` (every child's Pulumi name derives from it, so two instances never
collide) and a Kubernetes name, `app`: its client Service's DNS name, its StatefulSet's and pods' names
and its `app.kubernetes.io/name` label, which clients and the other components refer to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import SecretStr

from infra.builders import images, names, network, pod, scanner
from infra.builders.labels import labels, selector
from infra.builders.quota import Workload
from stacks.model import Resources

apps, core, meta = k8s.apps.v1, k8s.core.v1, k8s.meta.v1
DATA_VOLUME = "data"


SettingsT = TypeVar("SettingsT")


@dataclass(frozen=True)
class DataStoreCommon:
    """What the Platform tells every data store: where it lives and who may talk to it."""

    namespace: pulumi.Input[str]
    instance: str
    storage_class: str | None
    monitoring_namespace: str
    spread_across_nodes: bool = False
    pull_policy: str = "Always"


@dataclass
class DataStoreArgs(Generic[SettingsT]):
    """What every store is given: its settings, where it lives, its volume's size, and its clients
    (the pods that may connect, by their selectors)."""

    settings: SettingsT
    common: DataStoreCommon
    storage_size: str
    clients: list[dict[str, str]]


class DataStore(pulumi.ComponentResource):
    """Children are created through the methods below; each returns what its callers refer to."""

    def __init__(
        self,
        type_: str,
        name: str,
        app: str,
        role: str,
        image: str,
        common: DataStoreCommon,
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        super().__init__(type_, name, None, opts)
        self.name, self.app, self.role, self.image, self.common = name, app, role, image, common
        self.version = images.tag_of(image)
        self.labels = self.labels_of(app)
        self.selector = selector(app, common.instance)
        # What the namespace quota must leave room for (infra/builders/quota.py).
        self.workloads: list[Workload] = []

    @property
    def child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def labels_of(self, app: str, role: str | None = None) -> dict[str, str]:
        return labels(app, role or self.role, self.common.instance, self.version)

    def logical(self, app: str, suffix: str = "") -> str:
        """A child's Pulumi name: the component's name in place of its own app name."""
        return self.name + app.removeprefix(self.app) + suffix

    def container(
        self, name: str, resources: Resources, mounts: list[core.VolumeMountArgs], **fields: Any
    ) -> core.ContainerArgs:
        """A container of the store's image under the restricted profile, with its resources."""
        return core.ContainerArgs(
            name=name,
            image=self.image,
            image_pull_policy=self.common.pull_policy,
            resources=pod.resources(resources),
            security_context=pod.container_security(pod.UID),
            volume_mounts=mounts,
            **fields,
        )

    def make_password(self, suffix: str, given: SecretStr | None = None) -> pulumi.Output[str]:
        """The operator's secret when the stack sets one, else a generated one (kept in state, encrypted)."""
        if given is not None:
            return pulumi.Output.secret(given.get_secret_value())
        # Letters and digits only: the value goes into URLs, SQL and config files without escaping.
        generated = random.RandomPassword(f"{self.name}-{suffix}", length=32, special=False, opts=self.child)
        return generated.result

    def secret(self, suffix: str, data: pulumi.Input[Mapping[str, pulumi.Input[str]]]) -> core.Secret:
        """Auto-named: a change creates a new Secret, rolls the pods that mount it, then deletes the old."""
        return core.Secret(
            f"{self.name}-{suffix}",
            metadata=meta.ObjectMetaArgs(namespace=self.common.namespace, labels=self.labels),
            type="Opaque",
            string_data=data,
            opts=self.child,
        )

    def services(
        self, app: str, app_labels: dict[str, str], app_selector: dict[str, str], ports: dict[str, int]
    ) -> None:
        """A headless Service for the StatefulSet's stable pod names and a client Service for connections."""
        service_ports = [
            core.ServicePortArgs(name=n, port=p, target_port=n, protocol="TCP") for n, p in ports.items()
        ]
        core.Service(
            self.logical(app, "-headless"),
            metadata=self._meta(names.headless(app), app_labels),
            spec=core.ServiceSpecArgs(
                cluster_ip="None",
                selector=app_selector,
                ports=service_ports,
                publish_not_ready_addresses=True,
            ),
            opts=self.child,
        )
        core.Service(
            self.logical(app),
            metadata=self._meta(app, app_labels),
            spec=core.ServiceSpecArgs(type="ClusterIP", selector=app_selector, ports=service_ports),
            opts=self.child,
        )

    def service_account(self, app: str, app_labels: dict[str, str]) -> pulumi.Output[str]:
        """Each workload runs under its own account, which never receives an API token."""
        account = core.ServiceAccount(
            self.logical(app, "-account"),
            metadata=self._meta(app, app_labels),
            automount_service_account_token=False,
            opts=self.child,
        )
        return account.metadata.name

    def network_policy(
        self, app: str, app_labels: dict[str, str], spec: k8s.networking.v1.NetworkPolicySpecArgs
    ) -> None:
        k8s.networking.v1.NetworkPolicy(
            self.logical(app, "-netpol"), metadata=self._meta(app, app_labels), spec=spec, opts=self.child
        )

    def disruption_budget(self, app: str, app_labels: dict[str, str], app_selector: dict[str, str]) -> None:
        """One pod of the set at a time may be evicted (drains, upgrades); quorum and a copy survive."""
        k8s.policy.v1.PodDisruptionBudget(
            self.logical(app, "-pdb"),
            metadata=self._meta(app, app_labels),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=app_selector)
            ),
            opts=self.child,
        )

    def workload_metadata(
        self, app: str, app_labels: dict[str, str], extra_images: list[str] | None = None
    ) -> meta.ObjectMetaArgs:
        """A StatefulSet's or CronJob's metadata, with the scanner skips that apply to its images."""
        pull = self.common.pull_policy
        skips = scanner.checkov_skips([self.image, *(extra_images or [])], pull)
        skips |= scanner.kube_score_skips(pull)
        return meta.ObjectMetaArgs(
            name=app, namespace=self.common.namespace, labels=app_labels, annotations=skips or None
        )

    def statefulset(
        self,
        app: str,
        app_labels: dict[str, str],
        template: core.PodTemplateSpecArgs,
        resources: Resources,
        storage_size: str | None,
        replicas: int = 1,
        pod_management_policy: str | None = None,
    ) -> apps.StatefulSet:
        """Pods `<app>-0..n` behind `<app>-headless`, each with its own data volume (none without a size)."""
        claims = [volume_claim(storage_size, self.common.storage_class)] if storage_size else None
        self.workloads.append(
            Workload(replicas, resources, (storage_size,) * replicas if storage_size else ())
        )
        return apps.StatefulSet(
            self.logical(app),
            metadata=self.workload_metadata(app, app_labels),
            spec=apps.StatefulSetSpecArgs(
                replicas=replicas,
                service_name=names.headless(app),
                pod_management_policy=pod_management_policy,
                selector=meta.LabelSelectorArgs(match_labels=selector(app, self.common.instance)),
                template=template,
                volume_claim_templates=claims,
            ),
            opts=self.child,
        )

    @staticmethod
    def secret_files(volume: str, secret: core.Secret) -> core.VolumeArgs:
        """One of the store's Secrets as read-only files for the pod's group, under its generated name:
        credentials are read from files, never from the environment."""
        return core.VolumeArgs(
            name=volume,
            secret=core.SecretVolumeSourceArgs(secret_name=secret.metadata.name, default_mode=0o440),
        )

    @staticmethod
    def client_rule(
        clients: list[dict[str, str]], port: int | str
    ) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
        """Admits the store's clients on `port`; no clients, no rule (so nothing is admitted)."""
        return [network.allow_from([network.pods(c) for c in clients], port)] if clients else []

    def _meta(self, name: str, app_labels: dict[str, str]) -> meta.ObjectMetaArgs:
        return meta.ObjectMetaArgs(name=name, namespace=self.common.namespace, labels=app_labels)


def volume_claim(
    size: str, storage_class: str | None, name: str = DATA_VOLUME
) -> core.PersistentVolumeClaimArgs:
    return core.PersistentVolumeClaimArgs(
        metadata=meta.ObjectMetaArgs(name=name),
        spec=core.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=storage_class,
            resources=core.VolumeResourceRequirementsArgs(requests={"storage": size}),
        ),
    )
