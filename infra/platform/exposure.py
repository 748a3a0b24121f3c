"""The one public address: an Ingress that sends everything to the catalog's public entry (the gateway)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.builders import names
from infra.builders.labels import labels
from infra.platform.guard_rails import ChildOptions
from stacks.catalog import SERVICES
from stacks.model import StackSettings

meta, net = k8s.meta.v1, k8s.networking.v1


def ingress(
    name: str, s: StackSettings, namespace: pulumi.Input[str], instance: str, child: ChildOptions
) -> pulumi.Output[str]:
    """Returns the public URL."""
    gw = s.gateway
    (entry,) = (spec for spec in SERVICES if spec.public_entry)
    net.Ingress(
        f"{name}-gateway",
        metadata=meta.ObjectMetaArgs(
            name=entry.name,
            namespace=namespace,
            labels=labels(entry.name, entry.area, instance, s.images.tag),
            # real-time's WebSockets stay open far longer than the controller's default 60 s.
            annotations={
                "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
                "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
            },
        ),
        spec=net.IngressSpecArgs(
            ingress_class_name=gw.ingress_class,
            tls=[net.IngressTLSArgs(hosts=[gw.host], secret_name=gw.tls_secret)] if gw.tls_secret else None,
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
        opts=child("gateway"),
    )
    scheme = "https" if gw.tls_secret else "http"
    return pulumi.Output.from_input(f"{scheme}://{gw.host}")
