"""NetworkPolicy pieces: who may reach a workload and where it may connect."""

from __future__ import annotations

import pulumi_kubernetes as k8s

net = k8s.networking.v1
meta = k8s.meta.v1

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
# Webhook targets must be public: private, loopback and link-local ranges (incl. cloud metadata) stay closed.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")


def pods(selector: dict[str, str]) -> net.NetworkPolicyPeerArgs:
    return net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels=selector))


def namespace(name: str) -> net.NetworkPolicyPeerArgs:
    return net.NetworkPolicyPeerArgs(
        namespace_selector=meta.LabelSelectorArgs(match_labels={NAMESPACE_LABEL: name})
    )


def addresses(cidr: str) -> net.NetworkPolicyPeerArgs:
    """An address range outside the cluster (a policy can name nothing else out there)."""
    return net.NetworkPolicyPeerArgs(ip_block=net.IPBlockArgs(cidr=cidr))


def ports(*numbers: int | str) -> list[net.NetworkPolicyPortArgs]:
    return [net.NetworkPolicyPortArgs(port=n, protocol="TCP") for n in numbers]


def allow_from(
    peers: list[net.NetworkPolicyPeerArgs], *numbers: int | str
) -> net.NetworkPolicyIngressRuleArgs:
    return net.NetworkPolicyIngressRuleArgs(from_=peers, ports=ports(*numbers))


def allow_to(peers: list[net.NetworkPolicyPeerArgs], *numbers: int | str) -> net.NetworkPolicyEgressRuleArgs:
    return net.NetworkPolicyEgressRuleArgs(to=peers, ports=ports(*numbers))


def dns() -> net.NetworkPolicyEgressRuleArgs:
    """Cluster DNS in kube-system, UDP and TCP 53."""
    return net.NetworkPolicyEgressRuleArgs(
        to=[
            net.NetworkPolicyPeerArgs(
                namespace_selector=meta.LabelSelectorArgs(match_labels={NAMESPACE_LABEL: "kube-system"}),
                pod_selector=meta.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
            )
        ],
        ports=[net.NetworkPolicyPortArgs(port=53, protocol=p) for p in ("UDP", "TCP")],
    )


def public_internet(*numbers: int) -> net.NetworkPolicyEgressRuleArgs:
    return net.NetworkPolicyEgressRuleArgs(
        to=[
            net.NetworkPolicyPeerArgs(
                ip_block=net.IPBlockArgs(cidr="0.0.0.0/0", except_=list(PRIVATE_RANGES))
            )
        ],
        ports=ports(*numbers),
    )


def policy(
    selector: dict[str, str],
    ingress: list[net.NetworkPolicyIngressRuleArgs],
    egress: list[net.NetworkPolicyEgressRuleArgs],
) -> net.NetworkPolicySpecArgs:
    """Both directions are always listed, so an empty list denies rather than leaves traffic open."""
    return net.NetworkPolicySpecArgs(
        pod_selector=meta.LabelSelectorArgs(match_labels=selector),
        policy_types=["Ingress", "Egress"],
        ingress=ingress,
        egress=egress,
    )
