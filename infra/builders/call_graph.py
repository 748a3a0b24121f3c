"""Who may talk to whom, derived from the catalog: each service's NetworkPolicy as a pure spec.

The public entry (the gateway) is reached from the ingress controller's namespace and calls every
other service; the others are reached only from the entry. Each service reaches the data stores its
catalog entry names, DNS, and the public internet when it delivers there (webhooks). Prometheus may
scrape every service.
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
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    def pods(service: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
        return network.pods(selector(service, instance))

    http = names.SERVICE_PORT_NAME
    if spec.public_entry:
        callers = [network.namespace(ingress_namespace)]
    else:
        callers = [pods(s.name) for s in services if s.public_entry]
    ingress = [
        network.allow_from(callers, http),
        network.allow_from([network.namespace(monitoring_namespace)], http),
    ]
    egress = [network.dns()]
    if spec.database:
        egress.append(network.allow_to([pods(names.POSTGRES)], names.POSTGRES_PORT))
    if spec.redis:
        egress.append(network.allow_to([pods(names.REDIS)], names.REDIS_PORT))
    if spec.nats:
        egress.append(network.allow_to([pods(names.NATS)], names.NATS_PORTS["client"]))
    if spec.public_entry:
        egress.append(network.allow_to([pods(s.name) for s in services if not s.public_entry], http))
    if spec.internet_egress:
        egress.append(network.public_internet(80, 443))
    return network.policy(selector(spec.name, instance), ingress, egress)
