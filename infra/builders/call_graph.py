"""Who may talk to whom, derived from the catalog: each service's NetworkPolicy as a pure spec.

The public entry (the gateway) is reached from the ingress controller's namespace on its public port
only, and calls every other service on both ports (the API, and the internal port for its upstream
readiness view); the others are reached only from the entry. Prometheus' namespace reaches every
service on the internal port only (/metrics), never the API. Each service reaches the data stores its
catalog entry names (their pods, or the address range and port of a store the stack does not run),
DNS, and the public internet when it delivers there (webhooks).

The kubelet's probes are not subject to NetworkPolicy (they come from the node), so no rule admits
them: the internal port stays closed to every pod but the gateway and Prometheus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi_kubernetes as k8s

from infra.builders import names, network
from infra.builders.labels import selector
from stacks.catalog import ServiceSpec
from stacks.model import StackSettings


@dataclass(frozen=True)
class StoreRoute:
    """Where connections to one data store go: its pods, or an external store's address range."""

    port: int
    cidr: str | None = None


IN_CLUSTER = {
    names.POSTGRES: StoreRoute(names.POSTGRES_PORT),
    names.REDIS: StoreRoute(names.REDIS_PORT),
    names.REDIS_CACHE: StoreRoute(names.REDIS_PORT),
    names.NATS: StoreRoute(names.NATS_PORTS["client"]),
}


def store_routes(s: StackSettings) -> dict[str, StoreRoute]:
    """The stack's own stores by their pods, the external ones by their range and port."""
    external = {
        names.POSTGRES: s.postgres.external,
        names.REDIS: s.redis.external,
        names.REDIS_CACHE: s.redis_cache.external,
        names.NATS: s.nats.external,
    }
    return {
        store: StoreRoute(found.port, found.cidr) if found else IN_CLUSTER[store]
        for store, found in external.items()
    }


def service_policy(
    spec: ServiceSpec,
    services: Sequence[ServiceSpec],
    instance: str,
    ingress_namespace: str,
    monitoring_namespace: str,
    stores: Mapping[str, StoreRoute] = IN_CLUSTER,
    read_replica: bool = False,
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    def pods(service: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
        return network.pods(selector(service, instance))

    def to_store(store: str, replica: bool = False) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
        route = stores[store]
        if route.cidr:
            return network.allow_to([network.addresses(route.cidr)], route.port)
        served = [store, *([names.replica(store)] if replica else [])]
        return network.allow_to([pods(name) for name in served], route.port)

    http, internal = names.SERVICE_PORT_NAME, names.INTERNAL_PORT_NAME
    if spec.public_entry:
        callers = network.allow_from([network.namespace(ingress_namespace)], http)
    else:
        callers = network.allow_from([pods(s.name) for s in services if s.public_entry], http, internal)
    ingress = [callers, network.allow_from([network.namespace(monitoring_namespace)], internal)]
    egress = [network.dns()]
    if spec.database:
        egress.append(to_store(names.POSTGRES, replica=read_replica))
    if spec.redis:
        egress.append(to_store(names.REDIS))
    if spec.cache:
        egress.append(to_store(names.REDIS_CACHE))
    if spec.nats:
        egress.append(to_store(names.NATS))
    if spec.public_entry:
        upstreams = [pods(s.name) for s in services if not s.public_entry]
        egress.append(network.allow_to(upstreams, http, internal))
    if spec.internet_egress:
        egress.append(network.public_internet(80, 443))
    return network.policy(selector(spec.name, instance), ingress, egress)
