"""Pieces every data store shares: credentials, its pair of Services, its NetworkPolicy, its volumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import SecretStr

from infra.builders import network, scanner
from infra.builders.checksum import checksum

core, meta = k8s.core.v1, k8s.meta.v1
DATA_VOLUME = "data"


@dataclass(frozen=True)
class DataStoreCommon:
    """What the Platform tells every data store: where it lives and who may talk to it."""

    namespace: pulumi.Input[str]
    instance: str
    storage_class: str | None
    monitoring_namespace: str
    spread_across_nodes: bool = False
    pull_policy: str = "Always"


def password(name: str, given: SecretStr | None, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The operator's secret when the stack sets one, else a generated one (kept in state, encrypted)."""
    if given is not None:
        return pulumi.Output.secret(given.get_secret_value())
    # Letters and digits only: the value goes into URLs, SQL and config files without escaping.
    generated = random.RandomPassword(
        name, length=32, special=False, opts=pulumi.ResourceOptions(parent=parent)
    )
    return generated.result


def services(
    name: str,
    common: DataStoreCommon,
    labels: dict[str, str],
    selector: dict[str, str],
    ports: dict[str, int],
    parent: pulumi.Resource,
) -> None:
    """A headless Service for the StatefulSet's stable pod names and a client Service for connections."""
    opts = pulumi.ResourceOptions(parent=parent)
    service_ports = [
        core.ServicePortArgs(name=n, port=p, target_port=n, protocol="TCP") for n, p in ports.items()
    ]
    core.Service(
        f"{name}-headless",
        metadata=meta.ObjectMetaArgs(name=f"{name}-headless", namespace=common.namespace, labels=labels),
        spec=core.ServiceSpecArgs(
            cluster_ip="None", selector=selector, ports=service_ports, publish_not_ready_addresses=True
        ),
        opts=opts,
    )
    core.Service(
        name,
        metadata=meta.ObjectMetaArgs(name=name, namespace=common.namespace, labels=labels),
        spec=core.ServiceSpecArgs(type="ClusterIP", selector=selector, ports=service_ports),
        opts=opts,
    )


def config_checksum(data: pulumi.Output[dict[str, str]]) -> pulumi.Output[str]:
    """A hash of a config Secret for the pod template: changing the file restarts the server."""
    return pulumi.Output.unsecret(data.apply(lambda values: checksum(values)))


def workload_metadata(
    name: str, common: DataStoreCommon, labels: dict[str, str], image: str
) -> meta.ObjectMetaArgs:
    """A StatefulSet's or CronJob's metadata, with the scanner skips that apply to its image."""
    skips = scanner.checkov_skips([image], common.pull_policy)
    return meta.ObjectMetaArgs(
        name=name, namespace=common.namespace, labels=labels, annotations=skips or None
    )


def service_account(
    name: str, common: DataStoreCommon, labels: dict[str, str], parent: pulumi.Resource
) -> pulumi.Output[str]:
    """Each data store runs under its own account, which never receives an API token."""
    account = core.ServiceAccount(
        f"{name}-account",
        metadata=meta.ObjectMetaArgs(name=name, namespace=common.namespace, labels=labels),
        automount_service_account_token=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return account.metadata.name


def secret_files(volume: str, secret_name: str) -> core.VolumeArgs:
    """A Secret as read-only files for the pod's group: credentials read from files, not the environment."""
    return core.VolumeArgs(
        name=volume, secret=core.SecretVolumeSourceArgs(secret_name=secret_name, default_mode=0o440)
    )


def network_policy(
    name: str,
    common: DataStoreCommon,
    labels: dict[str, str],
    spec: k8s.networking.v1.NetworkPolicySpecArgs,
    parent: pulumi.Resource,
) -> None:
    k8s.networking.v1.NetworkPolicy(
        f"{name}-netpol",
        metadata=meta.ObjectMetaArgs(name=name, namespace=common.namespace, labels=labels),
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent),
    )


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


def disruption_budget(
    name: str,
    common: DataStoreCommon,
    labels: dict[str, str],
    selector: dict[str, str],
    parent: pulumi.Resource,
) -> None:
    """One pod of the set at a time may be evicted (drains, upgrades); quorum and a copy survive."""
    k8s.policy.v1.PodDisruptionBudget(
        f"{name}-pdb",
        metadata=meta.ObjectMetaArgs(name=name, namespace=common.namespace, labels=labels),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=selector)
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def secret(
    name: str,
    common: DataStoreCommon,
    labels: dict[str, str],
    data: pulumi.Input[Mapping[str, pulumi.Input[str]]],
    parent: pulumi.Resource,
) -> core.Secret:
    return core.Secret(
        name,
        metadata=meta.ObjectMetaArgs(name=name, namespace=common.namespace, labels=labels),
        type="Opaque",
        string_data=data,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def client_rule(
    clients: list[dict[str, str]], port: int | str
) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
    return [network.allow_from([network.pods(c) for c in clients], port)] if clients else []
