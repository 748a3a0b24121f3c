"""Observability: what a cluster running the Prometheus Operator needs to watch one stack.

A ServiceMonitor per service and per data-store exporter, the exporters themselves, the stack's
PrometheusRules and its Grafana dashboards. The Platform creates it only when the stack says the
operator is there; without it the pods' prometheus.io annotations are all there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.builders.labels import labels, selector
from infra.observability import exporters as ex
from infra.observability.dashboards import SIDECAR_LABEL, configmap_data, load_dashboards
from infra.observability.monitors import API_VERSION, prometheus_rule_spec, service_monitor_spec
from infra.observability.rules import RuleScope, rule_groups
from stacks.model import Monitoring

core, meta = k8s.core.v1, k8s.meta.v1
SERVICE_PORT = "http"
RULE_NAME = "venta-alerts"


@dataclass
class ObservabilityArgs:
    settings: Monitoring
    namespace: pulumi.Input[str]
    # The namespace as the rules' PromQL names it: known when the program starts, unlike the Output.
    namespace_name: str
    instance: str
    version: str
    services: Sequence[str]
    nats_servers: int


class Observability(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("venta:observability:Observability", name, None, opts)
        self.args = args
        for service in args.services:
            self._service_monitor(service, "application", SERVICE_PORT)
        installed = ex.exporters(args.settings.exporters, args.nats_servers)
        for exporter in installed:
            self._exporter(exporter)
            self._service_monitor(exporter.name, "monitoring", ex.METRICS_PORT)
        scope = RuleScope(
            namespace=args.namespace_name,
            services=tuple(args.services),
            thresholds=args.settings.thresholds,
            runbook_base_url=args.settings.runbook_base_url,
            nats_servers=args.nats_servers,
        )
        k8s.apiextensions.CustomResource(
            "alert-rules",
            api_version=API_VERSION,
            kind="PrometheusRule",
            metadata=self._meta(RULE_NAME, "monitoring", args.settings.resource_labels),
            spec=prometheus_rule_spec(rule_groups(scope)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        boards = load_dashboards()
        for board in boards:
            core.ConfigMap(
                f"dashboard-{board.name}",
                metadata=self._meta(f"grafana-dashboard-{board.name}", "dashboard", SIDECAR_LABEL),
                data=configmap_data(board),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs(
            {
                "serviceMonitors": [*args.services, *(exporter.name for exporter in installed)],
                "prometheusRule": RULE_NAME,
                "exporters": [exporter.name for exporter in installed],
                "dashboards": [board.uid for board in boards],
            }
        )

    def _meta(self, name: str, component: str, extra: dict[str, str] | None = None) -> meta.ObjectMetaArgs:
        a = self.args
        return meta.ObjectMetaArgs(
            name=name,
            namespace=a.namespace,
            labels={**labels(name, component, a.instance, a.version), **(extra or {})},
        )

    def _service_monitor(self, name: str, component: str, port: str) -> None:
        a = self.args
        k8s.apiextensions.CustomResource(
            f"{name}-monitor",
            api_version=API_VERSION,
            kind="ServiceMonitor",
            metadata=self._meta(name, component, a.settings.resource_labels),
            spec=service_monitor_spec(selector(name, a.instance), a.namespace_name, port),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _exporter(self, exporter: ex.Exporter) -> None:
        a = self.args
        opts = pulumi.ResourceOptions(parent=self)
        own = ex.exporter_labels(exporter, a.instance)
        metadata = meta.ObjectMetaArgs(name=exporter.name, namespace=a.namespace, labels=own)
        replicas = a.settings.exporters.replicas
        core.ServiceAccount(
            f"{exporter.name}-sa", metadata=metadata, automount_service_account_token=False, opts=opts
        )
        spec = ex.deployment_spec(exporter, a.instance, replicas)
        k8s.apps.v1.Deployment(exporter.name, metadata=metadata, spec=spec, opts=opts)
        port = ex.METRICS_PORT
        metrics_port = core.ServicePortArgs(name=port, port=exporter.port, target_port=port)
        core.Service(
            f"{exporter.name}-svc",
            metadata=metadata,
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector(exporter.name, a.instance),
                ports=[metrics_port],
            ),
            opts=opts,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{exporter.name}-netpol",
            metadata=metadata,
            spec=ex.exporter_policy(exporter, a.instance, a.settings.namespace),
            opts=opts,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{exporter.store}-from-{exporter.name}",
            metadata=meta.ObjectMetaArgs(
                name=f"{exporter.store}-from-{exporter.name}", namespace=a.namespace, labels=own
            ),
            spec=ex.store_access_policy(exporter, a.instance),
            opts=opts,
        )
        if replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{exporter.name}-pdb",
                metadata=metadata,
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=meta.LabelSelectorArgs(match_labels=selector(exporter.name, a.instance)),
                ),
                opts=opts,
            )
