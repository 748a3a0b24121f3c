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

from infra.builders import names, scanner
from infra.builders.labels import labels, selector
from infra.builders.quota import Workload
from infra.observability import exporters as ex
from infra.observability.dashboards import SIDECAR_LABEL, configmap_data, load_dashboards
from infra.observability.monitors import API_VERSION, prometheus_rule_spec, service_monitor_spec
from infra.observability.rules import RuleScope, rule_groups
from stacks.model import Monitoring

core, meta = k8s.core.v1, k8s.meta.v1
# Services are scraped on their internal port (/metrics is not on the public one).
SERVICE_METRICS_PORT = names.INTERNAL_PORT_NAME
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
    # What the exporters log in to the data stores with.
    store_secrets: ex.StoreSecrets
    # The stack's image pull policy (images.pullPolicy), as every other workload pulls.
    pull_policy: str = "Always"


class Observability(pulumi.ComponentResource):
    """Children are named `<name>-<what>`; their Kubernetes names are contracts (a ServiceMonitor's name
    is its scrape job; `venta-alerts` is what operators look up), except the dashboards' ConfigMaps,
    which Grafana's sidecar finds by label and the engine names."""

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("venta:observability:Observability", name, None, opts)
        self.name, self.args = name, args
        for service in args.services:
            self._service_monitor(service, "application", SERVICE_METRICS_PORT)
        secrets = args.store_secrets
        redis_passwords = (
            None if secrets.redis_password is None else self._redis_password_map(secrets.redis_password)
        )
        installed = ex.exporters(
            args.settings.exporters,
            args.nats_servers,
            secrets.postgres,
            redis_passwords,
            redis=secrets.redis,
            nats=secrets.nats,
        )
        for exporter in installed:
            self._exporter(exporter)
            self._service_monitor(exporter.name, "monitoring", ex.METRICS_PORT)
        # What the namespace quota must leave room for: each exporter with a surge pod.
        replicas = args.settings.exporters.replicas
        self.workloads = [Workload(replicas + 1, ex.RESOURCES) for _ in installed]
        scope = RuleScope(
            namespace=args.namespace_name,
            services=tuple(args.services),
            thresholds=args.settings.thresholds,
            runbook_base_url=args.settings.runbook_base_url,
            nats_servers=args.nats_servers,
            stores=tuple(exporter.store for exporter in installed),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-alert-rules",
            api_version=API_VERSION,
            kind="PrometheusRule",
            metadata=self._meta(RULE_NAME, "monitoring", args.settings.resource_labels),
            spec=prometheus_rule_spec(rule_groups(scope)),
            opts=self._child("alert-rules"),
        )
        boards = load_dashboards()
        for board in boards:
            core.ConfigMap(
                f"{name}-dashboard-{board.name}",
                metadata=self._meta(None, "dashboard", SIDECAR_LABEL, app=f"grafana-dashboard-{board.name}"),
                data=configmap_data(board),
                opts=self._child(f"dashboard-{board.name}"),
            )
        self.register_outputs(
            {
                "serviceMonitors": [*args.services, *(exporter.name for exporter in installed)],
                "prometheusRule": RULE_NAME,
                "exporters": [exporter.name for exporter in installed],
                "dashboards": [board.uid for board in boards],
            }
        )

    def _child(self, before: str) -> pulumi.ResourceOptions:
        """Options of a child; `before` is the name it had when children were not yet named after the
        component, so that a stack deployed then keeps its objects."""
        return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=before)])

    def _meta(
        self, name: str | None, component: str, extra: dict[str, str] | None = None, app: str | None = None
    ) -> meta.ObjectMetaArgs:
        a = self.args
        return meta.ObjectMetaArgs(
            name=name,
            namespace=a.namespace,
            labels={**labels(app or name or "", component, a.instance, a.version), **(extra or {})},
        )

    def _redis_password_map(self, password: pulumi.Input[str]) -> pulumi.Output[str]:
        """redis_exporter's password file in a Secret of its own, named by the engine (a new password
        makes a new Secret and rolls the exporter); the Redis component's Secrets stay as they are."""
        passwords: pulumi.Output[str] = pulumi.Output.secret(password).apply(ex.redis_password_map)
        secret = core.Secret(
            f"{self.name}-redis-exporter-credentials",
            metadata=self._meta(None, "monitoring", app="redis-exporter"),
            type="Opaque",
            string_data={ex.REDIS_PASSWORD_MAP_KEY: passwords},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return secret.metadata.name

    def _service_monitor(self, name: str, component: str, port: str) -> None:
        a = self.args
        k8s.apiextensions.CustomResource(
            f"{self.name}-{name}-monitor",
            api_version=API_VERSION,
            kind="ServiceMonitor",
            metadata=self._meta(name, component, a.settings.resource_labels),
            spec=service_monitor_spec(selector(name, a.instance), a.namespace_name, port),
            opts=self._child(f"{name}-monitor"),
        )

    def _exporter(self, exporter: ex.Exporter) -> None:
        a = self.args
        own = ex.exporter_labels(exporter, a.instance)
        metadata = meta.ObjectMetaArgs(name=exporter.name, namespace=a.namespace, labels=own)
        # The scanner skips that apply to its image (a tag, IfNotPresent), on the Deployment only.
        skips = scanner.checkov_skips([exporter.image], a.pull_policy)
        replicas = a.settings.exporters.replicas
        prefix = f"{self.name}-{exporter.name}"
        account = core.ServiceAccount(
            f"{prefix}-sa",
            metadata=metadata,
            automount_service_account_token=False,
            opts=self._child(f"{exporter.name}-sa"),
        )
        spec = ex.deployment_spec(exporter, a.instance, replicas, account.metadata.name, a.pull_policy)
        k8s.apps.v1.Deployment(
            prefix,
            metadata=meta.ObjectMetaArgs(
                name=exporter.name, namespace=a.namespace, labels=own, annotations=skips or None
            ),
            spec=spec,
            opts=self._child(exporter.name),
        )
        port = ex.METRICS_PORT
        metrics_port = core.ServicePortArgs(name=port, port=exporter.port, target_port=port)
        core.Service(
            f"{prefix}-svc",
            metadata=metadata,
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector(exporter.name, a.instance),
                ports=[metrics_port],
            ),
            opts=self._child(f"{exporter.name}-svc"),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{prefix}-netpol",
            metadata=metadata,
            spec=ex.exporter_policy(exporter, a.instance, a.settings.namespace),
            opts=self._child(f"{exporter.name}-netpol"),
        )
        admission = f"{exporter.store}-from-{exporter.name}"
        k8s.networking.v1.NetworkPolicy(
            f"{self.name}-{admission}",
            metadata=meta.ObjectMetaArgs(name=admission, namespace=a.namespace, labels=own),
            spec=ex.store_access_policy(exporter, a.instance),
            opts=self._child(admission),
        )
        if replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{prefix}-pdb",
                metadata=metadata,
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=meta.LabelSelectorArgs(match_labels=selector(exporter.name, a.instance)),
                ),
                opts=self._child(f"{exporter.name}-pdb"),
            )
