"""Who may talk to whom, derived from the catalog: each service's NetworkPolicy as a pure spec.

The public entry (the gateway) is reached from the ingress controller's namespace on its public port
only, and calls every other service on both ports (the API, and the internal port for its upstream
readiness view); the others are reached only from the entry. Prometheus' namespace reaches every
service on the internal port only (/metrics), never the API. Each service reaches the data stores its
catalog entry names, DNS, and the public internet when it delivers there (webhooks).

The kubelet's probes are not subject to NetworkPolicy (they come from the node), so no rule admits
them: the internal port stays closed to every pod but the gateway and Prometheus.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi_kubernetes as k8s

from infra.builders import names, network
from infra.builders.labels import selector
from stacks.catalog import ServiceSpec


def service_policy(
    spec: ServiceSpec,
    services: Sequence[ServiceSpec],
    instance: str,
    ingress_namespace: str,
    monitoring_namespace: str,
    read_replica: bool = False,
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    def pods(service: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
        return network.pods(selector(service, instance))

    http, internal = names.SERVICE_PORT_NAME, names.INTERNAL_PORT_NAME
    if spec.public_entry:
        callers = network.allow_from([network.namespace(ingress_namespace)], http)
    else:
        callers = network.allow_from([pods(s.name) for s in services if s.public_entry], http, internal)
    ingress = [callers, network.allow_from([network.namespace(monitoring_namespace)], internal)]
    egress = [network.dns()]
    if spec.database:
        databases = [names.POSTGRES, *([names.replica(names.POSTGRES)] if read_replica else [])]
        egress.append(network.allow_to([pods(name) for name in databases], names.POSTGRES_PORT))
    if spec.redis:
        egress.append(network.allow_to([pods(names.REDIS)], names.REDIS_PORT))
    if spec.cache:
        egress.append(network.allow_to([pods(names.REDIS_CACHE)], names.REDIS_PORT))
    if spec.nats:
        egress.append(network.allow_to([pods(names.NATS)], names.NATS_PORTS["client"]))
    if spec.public_entry:
        upstreams = [pods(s.name) for s in services if not s.public_entry]
        egress.append(network.allow_to(upstreams, http, internal))
    if spec.internet_egress:
        egress.append(network.public_internet(80, 443))
    return network.policy(selector(spec.name, instance), ingress, egress)
