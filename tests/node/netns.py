"""The node's network: one network namespace made by the tests, joined to the host by one veth pair.

Everything the node runs that touches a network (containerd and the pods' bridge, the kubelet,
kube-proxy, kube-router) lives in that namespace, so their routes, bridge and iptables rules never
touch the host's. The namespace has no default route: it reaches the host's end of the veth (where
the API server and the test's data stores listen) and nothing else, and the host reaches the node's
address only. The host's forwarding, routes and firewall stay as they were.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path


@dataclass(frozen=True)
class NodeNetwork:
    namespace: str
    host_interface: str
    link: IPv4Network  # the veth pair's subnet: host end first address, node end second
    pod_cidr: IPv4Network  # split into a /24 per node by the controller-manager
    service_cidr: IPv4Network

    @property
    def host_ip(self) -> str:
        return str(self.link[1])

    @property
    def node_ip(self) -> str:
        return str(self.link[2])

    @property
    def dns_ip(self) -> str:
        """The cluster DNS Service's address (the tenth of the range, as kubeadm picks it)."""
        return str(self.service_cidr[10])

    @property
    def path(self) -> Path:
        return Path("/run/netns") / self.namespace

    def enter(self, command: Sequence[str]) -> list[str]:
        """``command`` run in the node's network namespace, in this mount namespace (``ip netns exec``
        would give it its own, and the kubelet and containerd must see each other's mounts)."""
        return ["nsenter", f"--net={self.path}", "--", *command]

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return ip_run(*self.enter(command), check=check)


# Private ranges nothing on these machines uses (the host sits on 192.0.2.0/24, Docker's networks on
# 172.16.0.0/12): they exist only inside the namespace and on the veth pair.
NODE_NETWORK = NodeNetwork(
    namespace="venta-node",
    host_interface="venta-node0",
    link=IPv4Network("10.250.250.0/30"),
    pod_cidr=IPv4Network("10.251.0.0/16"),
    service_cidr=IPv4Network("10.252.0.0/16"),
)


def ip_run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def remove(network: NodeNetwork) -> None:
    """Delete the namespace (its end of the veth goes with it) and the host's end, if present."""
    if network.path.exists():
        ip_run("ip", "netns", "delete", network.namespace, check=False)
    if Path("/sys/class/net", network.host_interface).exists():
        ip_run("ip", "link", "delete", network.host_interface, check=False)


def create(network: NodeNetwork) -> None:
    host = IPv4Interface(f"{network.host_ip}/{network.link.prefixlen}")
    node = IPv4Interface(f"{network.node_ip}/{network.link.prefixlen}")
    ip_run("ip", "netns", "add", network.namespace)
    veth = ["type", "veth", "peer", "name", "eth0", "netns", network.namespace]
    ip_run("ip", "link", "add", network.host_interface, *veth)
    ip_run("ip", "address", "add", str(host), "dev", network.host_interface)
    ip_run("ip", "link", "set", network.host_interface, "up")
    inside = ["ip", "-n", network.namespace]
    ip_run(*inside, "link", "set", "lo", "up")
    ip_run(*inside, "address", "add", str(node), "dev", "eth0")
    ip_run(*inside, "link", "set", "eth0", "up")
    # Pods reach each other across the node's bridge and Services through kube-proxy's rules, both
    # of which need forwarding and bridged traffic seen by iptables (kube-router filters it there).
    for setting in ("net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"):
        network.run("sysctl", "-q", "-w", setting)


@contextlib.contextmanager
def node_network(network: NodeNetwork = NODE_NETWORK) -> Iterator[NodeNetwork]:
    remove(network)  # what an interrupted run left behind
    try:
        create(network)
        yield network
    finally:
        remove(network)
