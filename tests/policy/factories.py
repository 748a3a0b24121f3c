"""Hand-written compliant Kubernetes props (camelCase, as the provider sees them) for the rule tests.

Written out by hand on purpose: the rules must be judged against what a correct object looks like,
not against what the builders in infra/ happen to produce.
"""

from __future__ import annotations

import copy
from typing import Any

from policy.model import Resource

NS = "venta"
DIGEST = "sha256:" + "ab" * 32


def labels(name: str, component: str = "api") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": f"{name}-prod",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "venta",
        "app.kubernetes.io/version": "1.0.0",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": f"{name}-prod"}


def meta(name: str, component: str = "api") -> dict[str, Any]:
    return {"name": name, "namespace": NS, "labels": labels(name, component)}


def container(name: str = "app", secret: str = "user-management") -> dict[str, Any]:
    return {
        "name": name,
        "image": f"registry.example/venta/{name}:1.0.0@{DIGEST}",
        "ports": [{"name": "http", "containerPort": 8000.0}, {"name": "internal", "containerPort": 9090.0}],
        "env": [
            {"name": "PORT", "value": "8000"},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": secret, "key": "DATABASE_URL"}}},
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "internal"}, "periodSeconds": 5.0},
        "livenessProbe": {"httpGet": {"path": "/health/live", "port": "internal"}, "periodSeconds": 10.0},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def pod_template(name: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels(name)},
        "spec": {
            "serviceAccountName": name,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001.0,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1.0,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": selector(name)},
                }
            ],
            "containers": [container(secret=name)],
        },
    }


def deployment(name: str = "user-management", **spec: Any) -> Resource:
    props = {
        "metadata": meta(name),
        "spec": {
            "selector": {"matchLabels": selector(name)},
            "minReadySeconds": 10.0,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1.0, "maxUnavailable": 0.0}},
            "template": pod_template(name),
            **spec,
        },
    }
    return Resource("kubernetes:apps/v1:Deployment", name, props, urn(name, "apps/v1:Deployment"))


def statefulset(name: str = "postgres", replicas: float = 1.0) -> Resource:
    props = {
        "metadata": meta(name, "database"),
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "selector": {"matchLabels": selector(name)},
            "template": pod_template(name),
        },
    }
    return Resource("kubernetes:apps/v1:StatefulSet", name, props, urn(name, "apps/v1:StatefulSet"))


def cronjob(name: str = "backup") -> Resource:
    template = pod_template(name)
    template["spec"]["restartPolicy"] = "OnFailure"
    props = {
        "metadata": meta(name, "backup"),
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
    }
    return Resource("kubernetes:batch/v1:CronJob", name, props, urn(name, "batch/v1:CronJob"))


def hpa(
    name: str = "user-management",
    low: float = 2.0,
    high: float = 5.0,
    cpu: float = 70.0,
    memory: float = 80.0,
) -> Resource:
    props = {
        "metadata": meta(name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [utilization("cpu", cpu), utilization("memory", memory)],
        },
    }
    kind = "autoscaling/v2:HorizontalPodAutoscaler"
    return Resource(f"kubernetes:{kind}", name, props, urn(name, kind))


def utilization(resource: str, percent: float) -> dict[str, Any]:
    target = {"type": "Utilization", "averageUtilization": percent}
    return {"type": "Resource", "resource": {"name": resource, "target": target}}


def pdb(name: str = "user-management") -> Resource:
    spec = {"maxUnavailable": 1.0, "selector": {"matchLabels": selector(name)}}
    props = {"metadata": meta(name), "spec": spec}
    return Resource("kubernetes:policy/v1:PodDisruptionBudget", name, props, urn(name, "policy/v1:PDB"))


def service(name: str = "user-management", type_: str = "ClusterIP") -> Resource:
    props = {
        "metadata": meta(name),
        "spec": {
            "type": type_,
            "selector": selector(name),
            "ports": [{"name": "http", "port": 80.0, "targetPort": "http"}],
        },
    }
    return Resource("kubernetes:core/v1:Service", name, props, urn(name, "core/v1:Service"))


def network_policy(name: str = "user-management", pod_selector: dict[str, Any] | None = None) -> Resource:
    chosen = {"matchLabels": selector(name)} if pod_selector is None else pod_selector
    props = {
        "metadata": meta(name),
        "spec": {
            "podSelector": chosen,
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": "http"}]}],
        },
    }
    return Resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", name, props, urn(name, "NetworkPolicy"))


def config_map(name: str = "user-management", **data: str) -> Resource:
    base = {
        "SERVICE_NAME": name,
        "PORT": "8000",
        "NATS_SERVERS": "nats://nats:4222",
        "JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
    }
    props = {"metadata": meta(name), "data": {**base, **data}}
    return Resource("kubernetes:core/v1:ConfigMap", name, props, urn(name, "core/v1:ConfigMap"))


def secret(name: str = "user-management") -> Resource:
    props = {
        "metadata": meta(name),
        "type": "Opaque",
        "stringData": {"DATABASE_URL": "postgresql://um:s3cr3t@postgres:5432/um"},
    }
    return Resource("kubernetes:core/v1:Secret", name, props, urn(name, "core/v1:Secret"))


def urn(name: str, kind: str) -> str:
    return f"urn:pulumi:test::venta::kubernetes:{kind}::{name}"


def compliant_stack() -> list[Resource]:
    """A small stack that every rule accepts: one HPA-scaled service, its data store and a backup job."""
    return [
        deployment(),
        hpa(),
        pdb(),
        service(),
        network_policy(),
        config_map(),
        secret(),
        statefulset("nats", 3.0),
        service("nats"),
        network_policy("nats"),
        pdb("nats"),
        secret("nats"),
        cronjob(),
        network_policy("backup"),
        secret("backup"),
    ]


def with_props(resource: Resource, edit: Any) -> Resource:
    """A copy of the resource whose props were changed by `edit(props)`."""
    props = copy.deepcopy(dict(resource.props))
    edit(props)
    return Resource(resource.type, resource.name, props, resource.urn)


def first_container(props: dict[str, Any]) -> dict[str, Any]:
    template = props["spec"].get("template") or props["spec"]["jobTemplate"]["spec"]["template"]
    result: dict[str, Any] = template["spec"]["containers"][0]
    return result


def pod(props: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = props["spec"]["template"]["spec"]
    return result
