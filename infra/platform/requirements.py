"""What the cluster must already offer before the stack changes anything in it.

With `monitoring.prometheusOperator` on, the stack creates ServiceMonitors and a PrometheusRule:
kinds that exist only where the Prometheus Operator's CRDs are installed. Each CRD is read from the
cluster first and the namespace (and so everything in it) waits for those reads, so a cluster
without them stops the update before any object is created, with the setting to turn off in the
reads' names. Render mode has no cluster to ask: it says which CRDs the manifests need instead.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.platform.guard_rails import ChildOptions
from stacks.model import StackSettings

OPERATOR_CRDS = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")
SETTING = "venta:monitoring.prometheusOperator"


def cluster_requirements(name: str, s: StackSettings, child: ChildOptions) -> list[pulumi.Resource]:
    """The reads every namespaced object waits for; none when nothing needs the CRDs."""
    if not s.monitoring.prometheus_operator:
        return []
    if s.kubernetes.render_dir:
        pulumi.log.info(
            f"render mode: the manifests hold ServiceMonitors and a PrometheusRule; the cluster they are "
            f"applied to needs the CRDs {', '.join(OPERATOR_CRDS)} (the Prometheus Operator), or set "
            f"{SETTING}: false"
        )
        return []
    return [
        # The logical name says what is missing when the read fails, and which setting turns it off.
        k8s.apiextensions.v1.CustomResourceDefinition.get(
            f"{name}-needs-crd-{crd}-or-set-monitoring.prometheusOperator-false",
            crd,
            opts=child(f"needs-crd-{crd}"),
        )
        for crd in OPERATOR_CRDS
    ]
