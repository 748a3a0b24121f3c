"""Every rule of the pack with its name, what it checks, its default enforcement and its config.

The defaults are the strict (prod) ones, so a run that forgets its config file errs on the safe
side; `policy/config/dev.json` relaxes what dev may relax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policy.constants import EXPOSED_SERVICES, MIN_PROD_REPLICAS, PROBE_PORT_NAME, PROD_SCALING_TABLE
from policy.model import Resource, Violation
from policy.rules import (
    availability,
    images,
    metadata,
    networking,
    references,
    scaling,
    secrets,
    security,
    workloads,
)

ResourceCheck = Callable[[Resource, Mapping[str, Any]], list[str]]
StackCheck = Callable[[Sequence[Resource], Mapping[str, Any]], list[Violation]]

MANDATORY = "mandatory"
ADVISORY = "advisory"


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    description: str
    level: str
    resource_check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    # JSON-schema properties of the rule's config, each with its default.
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        return "stack" if self.stack_check is not None else "resource"

    def defaults(self) -> dict[str, Any]:
        return {key: prop["default"] for key, prop in self.config.items() if "default" in prop}

    def schema(self) -> dict[str, Mapping[str, Any]]:
        """The config properties the engine is told about: the rule's own plus `exceptions`."""
        return {**self.config, "exceptions": EXCEPTIONS_SCHEMA}


# Every rule accepts exceptions in the stack's policy config: {"Kind/namespace/name": "reason"}.
EXCEPTIONS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string", "minLength": 10},
    "default": {},
}


def _r(
    name: str,
    category: str,
    description: str,
    check: ResourceCheck,
    level: str = MANDATORY,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> Rule:
    return Rule(name, category, description, level, resource_check=check, config=config or {})


def _s(
    name: str,
    category: str,
    description: str,
    check: StackCheck,
    level: str = MANDATORY,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> Rule:
    return Rule(name, category, description, level, stack_check=check, config=config or {})


RULES: tuple[Rule, ...] = (
    _r(
        "run-as-non-root",
        "security",
        "Containers run as a non-root user (runAsNonRoot, uid not 0).",
        security.check_run_as_non_root,
    ),
    _r(
        "no-privilege-escalation",
        "security",
        "Containers set allowPrivilegeEscalation: false.",
        security.check_no_privilege_escalation,
    ),
    _r(
        "no-privileged-containers", "security", "No container runs privileged.", security.check_not_privileged
    ),
    _r(
        "read-only-root-filesystem",
        "security",
        "Containers mount their root filesystem read-only.",
        security.check_read_only_root_filesystem,
    ),
    _r(
        "drop-all-capabilities",
        "security",
        "Containers drop ALL Linux capabilities and add none.",
        security.check_drop_all_capabilities,
    ),
    _r(
        "seccomp-runtime-default",
        "security",
        "Pods or containers use the RuntimeDefault seccomp profile.",
        security.check_seccomp_runtime_default,
    ),
    _r(
        "no-host-namespaces",
        "security",
        "Pods share no host network, PID or IPC namespace.",
        security.check_no_host_namespaces,
    ),
    _r("no-host-ports", "security", "Containers bind no host ports.", security.check_no_host_ports),
    _r(
        "no-service-account-token",
        "security",
        "Pods do not mount a service-account token unless annotated as needing the Kubernetes API.",
        security.check_no_service_account_token,
    ),
    _r(
        "dedicated-service-account",
        "security",
        "Pods run under their own ServiceAccount, not `default`.",
        security.check_dedicated_service_account,
    ),
    _r(
        "resource-requests",
        "resources",
        "Containers request CPU and memory.",
        workloads.check_resource_requests,
    ),
    _r("memory-limit", "resources", "Containers set a memory limit.", workloads.check_memory_limit),
    _r(
        "probes-present",
        "probes",
        "Long-running containers have readiness and liveness probes.",
        workloads.check_probes_present,
    ),
    _r(
        "probes-distinct",
        "probes",
        "Liveness and readiness probes are not the same check.",
        workloads.check_probes_distinct,
    ),
    _r(
        "probes-on-declared-port",
        "probes",
        "Probes target a port the container declares: its `probePort` (`internal`) when it declares one.",
        workloads.check_probes_on_declared_port,
        config={"probePort": {"type": "string", "minLength": 1, "default": PROBE_PORT_NAME}},
    ),
    _r(
        "image-tag-explicit",
        "images",
        "Images carry an explicit tag or digest, never `latest`.",
        images.check_image_tag_explicit,
    ),
    _r(
        "image-pinned-by-digest",
        "images",
        "Images are pinned by sha256 digest.",
        images.check_image_pinned_by_digest,
    ),
    _s(
        "min-replicas",
        "availability",
        "Every Deployment/StatefulSet runs at least `minReplicas` pods (its HPA minimum, else replicas).",
        availability.check_min_replicas,
        config={"minReplicas": {"type": "integer", "minimum": 1, "default": MIN_PROD_REPLICAS}},
    ),
    _s(
        "pdb-per-workload",
        "availability",
        "Every workload that can run more than one pod is selected by a PodDisruptionBudget.",
        availability.check_pdb_per_workload,
    ),
    _r(
        "spread-across-nodes",
        "availability",
        "Multi-replica workloads spread over nodes (topology spread or anti-affinity on hostname).",
        availability.check_spread_across_nodes,
    ),
    _r(
        "pdb-valid",
        "availability",
        "A PodDisruptionBudget sets exactly one bound, selects pods and still allows node drains.",
        availability.check_pdb_valid,
    ),
    _r(
        "hpa-valid",
        "availability",
        "HPAs are autoscaling/v2 with 1 <= min <= max, a target, and utilization targets within 1-100.",
        availability.check_hpa_valid,
    ),
    _s(
        "hpa-target-exists",
        "availability",
        "Every HPA's scaleTargetRef names an object in the stack.",
        availability.check_hpa_target_exists,
    ),
    _s(
        "hpa-owns-replicas",
        "availability",
        "A Deployment scaled by an HPA starts at its minimum and leaves `replicas` to it.",
        availability.check_hpa_owns_replicas,
    ),
    _r(
        "zero-downtime-rollout",
        "availability",
        "Deployments roll with maxUnavailable 0 and a minReadySeconds.",
        availability.check_zero_downtime_rollout,
    ),
    _s(
        "network-policy-coverage",
        "networking",
        "Every pod is selected by a NetworkPolicy.",
        networking.check_network_policy_coverage,
    ),
    _r(
        "network-policy-types",
        "networking",
        "NetworkPolicies list their policyTypes (Ingress, and Egress when they have egress rules).",
        networking.check_network_policy_types,
        level=ADVISORY,
    ),
    _r(
        "service-type-restricted",
        "networking",
        "No NodePort or LoadBalancer Service except the gateway's exposure.",
        networking.check_service_type_restricted,
        config={
            "exposedServices": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(EXPOSED_SERVICES),
            }
        },
    ),
    _s(
        "service-selector-matches",
        "networking",
        "Every Service's selector matches a pod template.",
        networking.check_service_selector_matches,
    ),
    _r(
        "no-secret-env-literals",
        "secrets",
        "No secret-looking env values written as literals.",
        secrets.check_no_secret_env_literals,
    ),
    _r(
        "no-credentials-in-configmap",
        "secrets",
        "No credentials in ConfigMap data.",
        secrets.check_no_credentials_in_configmap,
    ),
    _s(
        "references-exist",
        "secrets",
        "Every Secret and ConfigMap a pod reads (env, envFrom, volumes), and each key, exists in the stack.",
        references.check_references_exist,
    ),
    _r(
        "recommended-labels",
        "metadata",
        "Objects carry the recommended app.kubernetes.io labels.",
        metadata.check_recommended_labels,
        level=ADVISORY,
    ),
    _s(
        "scaling-table",
        "venta",
        "HPAs carry the prod scaling table (replicas and CPU/memory targets) in policy/constants.py.",
        scaling.check_scaling_table,
        config={"table": {"type": "object", "default": PROD_SCALING_TABLE}},
    ),
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
