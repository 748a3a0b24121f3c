"""How a service pod stops without losing a request: its preStop hook and termination grace period.

When a pod is deleted (rollout, scale-down, node drain) Kubernetes marks it terminating and starts
removing it from the Service's endpoints; kube-proxy, the Ingress and the gateway learn of it a few
seconds later. The preStop hook sleeps through that while the container keeps serving; only then does
the kubelet send SIGTERM, on which the service drains its keep-alive connections and finishes what is
in flight (services/common/drain.py). The grace period covers every step, so SIGKILL never cuts one
short. The numbers live in ``services.catalog.SHUTDOWN``, which the services' settings read too.
"""

from __future__ import annotations

import copy
from typing import Any

import pulumi_kubernetes as k8s

from services.catalog import SHUTDOWN, ShutdownTimes

core = k8s.core.v1


def pre_stop(times: ShutdownTimes = SHUTDOWN) -> core.LifecycleArgs:
    """Sleep (Kubernetes' own sleep action: nothing to run in the container) while endpoints update."""
    return core.LifecycleArgs(
        pre_stop=core.LifecycleHandlerArgs(sleep=core.SleepActionArgs(seconds=times.endpoint_propagation))
    )


def drained_pod(container: core.ContainerArgs, times: ShutdownTimes = SHUTDOWN) -> dict[str, Any]:
    """Pod spec fields running ``container`` with the preStop hook, and the grace period to match:
    ``core.PodSpecArgs(**drained_pod(container), ...)``. The caller's container is left unchanged."""
    drained = copy.copy(container)
    drained.lifecycle = pre_stop(times)
    return {"containers": [drained], "termination_grace_period_seconds": times.grace_period}
