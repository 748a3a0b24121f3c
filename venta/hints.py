"""A next step beside Pulumi's own message, for the failures whose cause this project knows."""

from __future__ import annotations

# How the API server and the kubernetes provider say that a kind or a CRD is not there.
_ABSENT = ("does not exist", "not found", "no matches for kind", "could not find the requested resource")
_OPERATOR_GROUP = "monitoring.coreos.com"


def hint(message: str, stack: str) -> str | None:
    """What to do about `message`, the engine's error for a run on `stack`; None when nothing is known."""
    if _OPERATOR_GROUP in message and any(phrase in message for phrase in _ABSENT):
        return _missing_operator_crds(message, stack)
    return None


def _missing_operator_crds(message: str, stack: str) -> str:
    # Imported here: the setting and the CRDs have one owner, the check that reads them from the cluster.
    from infra.platform.requirements import OPERATOR_CRDS, SETTING

    named = [crd for crd in OPERATOR_CRDS if crd in message] or list(OPERATOR_CRDS)
    return (
        f"venta: the cluster has no {', '.join(named)} (the Prometheus Operator's CRDs), which {stack}'s "
        f"ServiceMonitors and PrometheusRule need: install the operator, or turn its objects off with "
        f"`pulumi config set --path {SETTING} false --stack {stack}`"
    )
