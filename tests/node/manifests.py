"""Cluster objects the node brings with it: the cluster DNS (CoreDNS, as kubeadm deploys it) and the
access kube-router needs to read policies. Plain manifests, pure functions."""

from __future__ import annotations

from typing import Any

from tests.node.configs import CLUSTER_DOMAIN

Manifest = dict[str, Any]
DNS_LABELS = {"k8s-app": "kube-dns"}  # what the stacks' NetworkPolicies admit DNS traffic to
KUBE_ROUTER_USER = "kube-router"

COREFILE = f"""\
.:53 {{
    errors
    health {{
        lameduck 5s
    }}
    ready
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loadbalance
}}
"""


def _reader_role(name: str, rules: list[tuple[str, list[str]]]) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [
            {"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]}
            for group, resources in rules
        ],
    }


def _binding(name: str, subject: Manifest, role: str | None = None) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role or name},
        "subjects": [subject],
    }


def api_server_to_kubelet(user: str) -> list[Manifest]:
    """The API server's kubelet client may use every kubelet API (exec, logs, ...), as in kubeadm."""
    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
    return [_binding("venta:kubelet-api-admin", subject, role="system:kubelet-api-admin")]


def kube_router_access() -> list[Manifest]:
    """Everything kube-router's informers watch, read-only."""
    rules = [
        ("", ["pods", "namespaces", "nodes", "services", "endpoints"]),
        ("networking.k8s.io", ["networkpolicies"]),
        ("discovery.k8s.io", ["endpointslices"]),
    ]
    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KUBE_ROUTER_USER}
    return [_reader_role("venta:kube-router", rules), _binding("venta:kube-router", subject)]


def cluster_dns(image: str, cluster_ip: str) -> list[Manifest]:
    """CoreDNS in kube-system behind the ``kube-dns`` Service at the kubelet's clusterDNS address.

    It answers for cluster names only: no upstream is configured, since nothing beyond the machine
    may be asked. It listens on port 53 inside its pod (NetworkPolicies name the pod's port), which
    needs NET_BIND_SERVICE and nothing else.
    """
    meta = {"name": "coredns", "namespace": "kube-system", "labels": DNS_LABELS}
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
    }
    role = _reader_role(
        "venta:coredns",
        [("", ["endpoints", "services", "pods", "namespaces"]), ("discovery.k8s.io", ["endpointslices"])],
    )
    binding = _binding(
        "venta:coredns", {"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}
    )
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"Corefile": COREFILE}}
    ports = [
        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
        {"name": "health", "containerPort": 8080, "protocol": "TCP"},
        {"name": "ready", "containerPort": 8181, "protocol": "TCP"},
    ]
    container = {
        "name": "coredns",
        "image": image,
        "imagePullPolicy": "Never",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": ports,
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        },
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": DNS_LABELS},
            "template": {
                "metadata": {"labels": DNS_LABELS},
                "spec": {
                    "serviceAccountName": "coredns",
                    "dnsPolicy": "Default",
                    "priorityClassName": "system-cluster-critical",
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": DNS_LABELS},
        "spec": {
            "selector": DNS_LABELS,
            "clusterIP": cluster_ip,
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
        },
    }
    return [account, role, binding, config, deployment, service]
