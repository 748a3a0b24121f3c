"""A real node for the e2e control plane: containerd with runc and CNI, the kubelet, kube-proxy,
kube-router (NetworkPolicies) and CoreDNS, all inside the node's network namespace (netns.py).

The control plane is tests/e2e/cluster.py's, with the API server on the host's end of the node's
veth instead of loopback, node pod ranges from the controller-manager, and no simulated node.
Each daemon is a host process in the node's network namespace that dies with the test process
and is stopped by PID; ``running_node`` removes every container, mount and cgroup it made.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.builders.pod import UID
from localdev.servers import Server
from tests.e2e.cluster import (
    STORAGE_CLASSES,
    ClusterNetwork,
    LocalCluster,
    kubeconfig_document,
    start_cluster,
    wait_http,
)
from tests.images.daemon import Docker
from tests.node import configs, host
from tests.node.configs import NODE_NAME, NodePaths
from tests.node.images import PAUSE, Ctr, coredns_reference, import_images, scratch_image
from tests.node.manifests import KUBE_ROUTER_USER, api_server_to_kubelet, cluster_dns, kube_router_access
from tests.node.netns import NodeNetwork, node_network
from tests.node.pki import API_SERVER_CLIENT, KubeletClientPki, kubelet_client_pki
from tests.toolchain import checked_bin

BINARIES = ("kubelet", "kube-proxy", "kube-router", "coredns", "pause")
TOOLCHAIN_ROOT = Path(os.environ.get("VENTA_TOOLCHAIN_ROOT", Path.home() / ".cache" / "venta-toolchain"))
PATHS = NodePaths(
    state=Path("/run/venta-node"),
    images=Path(os.environ.get("VENTA_CONTAINERD_ROOT", TOOLCHAIN_ROOT / "containerd")),
)
LOCK = TOOLCHAIN_ROOT / "node.lock"
NODE_USER = f"system:node:{NODE_NAME}"
# Static identities of the node daemons: the kubelet as a node (the Node authorizer limits it to its
# own pods), kube-proxy as the user Kubernetes' default role bindings expect, kube-router with the
# read-only role in manifests.py.
NODE_USERS = {NODE_USER: ("system:nodes",), "system:kube-proxy": (), KUBE_ROUTER_USER: ()}
# What the kubelet requires of the kernel (pkg/kubelet/cm, setupKernelTunables), machine-wide
# settings it would otherwise change on this shared machine: it sees these values instead.
KUBELET_KERNEL_VIEW = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
VOLUMES_PER_CLASS = 4


def node_bin() -> Path | None:
    """The built node binaries' folder (``VENTA_NODE_BIN`` overrides), or None when not built."""
    return checked_bin("build-node.sh", "VENTA_NODE_BIN", BINARIES)


class NodeDaemon(Server):
    """A node daemon; ready once its health endpoint answers on the node's address (from the host,
    across the veth)."""

    def __init__(
        self, name: str, command: list[str], network: NodeNetwork, port: int, health: str | None
    ) -> None:
        self.name = name
        super().__init__()
        self.host, self.port = network.node_ip, port
        self.command, self.health = command, health

    def _command(self) -> list[str]:
        return self.command

    def _ready(self) -> None:
        if self.health:
            wait_http(f"http://{self.host}:{self.port}{self.health}", self.name, self)


@dataclass
class RealNode:
    cluster: LocalCluster
    network: NodeNetwork
    paths: NodePaths
    ctr: Ctr
    dns_image: str
    pki: KubeletClientPki
    daemons: list[NodeDaemon] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    imported: list[str] = field(default_factory=list)

    def logs(self, lines: int = 30) -> str:
        return (
            "\n".join(f"--- {d.name}\n{d.log_tail(lines)}" for d in self.daemons) + "\n" + self.cluster.logs()
        )

    def node(self) -> dict[str, Any]:
        found: dict[str, Any] = self.cluster.get_json("node", NODE_NAME)
        return found


def filtered_addresses(node: RealNode) -> set[str]:
    """Pod addresses kube-router has a firewall chain for (a pod without one is not filtered yet)."""
    rules = node.network.run("iptables-save", "-t", "filter").stdout
    return {
        line.split(" -d ")[1].split("/")[0]
        for line in rules.splitlines()
        if line.startswith("-A KUBE-ROUTER-FORWARD ") and " -d " in line
    }


def wait_until_filtered(node: RealNode, addresses: set[str], timeout: float = 60) -> None:
    """kube-router writes a pod's rules after the pod gets its address: wait for ``addresses``."""
    _wait_for(
        f"kube-router's rules for {sorted(addresses)}",
        lambda: addresses <= filtered_addresses(node),
        node,
        timeout,
    )


def _kubeconfig(cluster: LocalCluster, user: str, path: Path) -> Path:
    path.write_text(
        json.dumps(kubeconfig_document(cluster.api_url, cluster.ca_pem, cluster.tokens[user], user))
    )
    path.chmod(0o600)
    return path


def _guest_kernel_view(directory: Path, command: list[str]) -> list[str]:
    """``command`` in a mount namespace of its own where KUBELET_KERNEL_VIEW's files read as it wants
    them; mounts below a shared mount (the kubelet's root) still show on the host."""
    directory.mkdir(parents=True, exist_ok=True)
    binds = []
    for key, value in KUBELET_KERNEL_VIEW.items():
        source = directory / key.replace("/", ".")
        source.write_text(f"{value}\n")
        binds.append(f"mount --bind {shlex.quote(str(source))} /proc/sys/{key}")
    script = " && ".join(binds) + ' && exec "$@"'
    return ["unshare", "--mount", "--propagation", "unchanged", "--", "sh", "-c", script, "sh", *command]


def _prepare_volumes(paths: NodePaths) -> None:
    """The hostPath volumes the control plane offers, as a provisioner honouring the pods' fsGroup
    leaves them: group-owned by it, setgid, group-writable (the kubelet applies no fsGroup to
    hostPath volumes)."""
    for name in STORAGE_CLASSES:
        for index in range(VOLUMES_PER_CLASS):
            volume = paths.volumes / f"{name}-{index}"
            volume.mkdir(parents=True)
            os.chown(volume, 0, UID)
            volume.chmod(0o2775)


def _wait_for(what: str, check: Any, node: RealNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout} s:\n{node.logs()}")
        time.sleep(0.5)


def _node_ready(node: RealNode) -> bool:
    found = node.cluster.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
    if not found:
        return False
    conditions = json.loads(found).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _start(node: RealNode, name: str, command: list[str], port: int, health: str | None) -> None:
    began = time.monotonic()
    daemon = NodeDaemon(name, command, node.network, port, health)
    node.daemons.append(daemon)
    try:
        daemon.start()
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{daemon.log_tail(40)}") from exc
    node.timings[f"{name} ready"] = time.monotonic() - began


def _start_containerd(node: RealNode, node_bin: Path) -> None:
    paths, network = node.paths, node.network
    config = paths.state / "containerd.toml"
    config.write_text(configs.containerd_config(paths, network, PAUSE))
    (paths.state / "cni").mkdir(parents=True, exist_ok=True)
    (paths.state / "cni" / "template.conflist").write_text(configs.cni_template(paths))
    command = network.enter(["containerd", "--config", str(config)])
    _start(node, "containerd", command, configs.CONTAINERD_METRICS_PORT, None)
    if node.ctr.remove_containers():  # a killed run's containers, still in containerd's records
        node.daemons.pop().cleanup()
        _start(node, "containerd", command, configs.CONTAINERD_METRICS_PORT, None)


def _start_kubelet(node: RealNode, node_bin: Path) -> None:
    paths, network = node.paths, node.network
    config = paths.state / "kubelet.yaml"
    config.write_text(yaml.safe_dump(configs.kubelet_config(paths, network, node.pki.ca)))
    node.cluster.apply(api_server_to_kubelet(API_SERVER_CLIENT))
    kubeconfig = _kubeconfig(node.cluster, NODE_USER, paths.state / "kubelet.kubeconfig")
    kubelet = [
        str(node_bin / "kubelet"),
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={paths.kubelet_root}",
        f"--cert-dir={paths.state / 'kubelet-pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={network.node_ip}",
    ]
    command = _guest_kernel_view(paths.state / "kernel-view", network.enter(kubelet))
    _start(node, "kubelet", command, configs.KUBELET_HEALTHZ_PORT, "/healthz")


def _start_proxy_and_enforcer(node: RealNode, node_bin: Path) -> None:
    paths, network, cluster = node.paths, node.network, node.cluster
    proxy_config = paths.state / "kube-proxy.yaml"
    proxy_kubeconfig = _kubeconfig(cluster, "system:kube-proxy", paths.state / "kube-proxy.kubeconfig")
    proxy_config.write_text(yaml.safe_dump(configs.kube_proxy_config(proxy_kubeconfig, network)))
    proxy = network.enter([str(node_bin / "kube-proxy"), f"--config={proxy_config}"])
    _start(node, "kube-proxy", proxy, configs.KUBE_PROXY_HEALTHZ_PORT, "/healthz")
    cluster.apply(kube_router_access())
    router_kubeconfig = _kubeconfig(cluster, KUBE_ROUTER_USER, paths.state / "kube-router.kubeconfig")
    router = network.enter(
        [str(node_bin / "kube-router"), *configs.kube_router_args(router_kubeconfig, network)]
    )
    _start(node, "kube-router", router, configs.KUBE_ROUTER_HEALTH_PORT, "/healthz")


def _start_dns(node: RealNode) -> None:
    began = time.monotonic()
    node.cluster.apply(cluster_dns(node.dns_image, node.network.dns_ip))
    node.cluster.kubectl("rollout", "status", "deployment/coredns", "-n", "kube-system", "--timeout=180s")
    node.timings["cluster DNS ready"] = time.monotonic() - began


def _images(docker: Docker, node_bin: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """containerd reference -> Docker image: pause, CoreDNS and ``extra``."""
    dns = coredns_reference(node_bin)
    scratch_image(docker, node_bin / "pause", PAUSE)
    scratch_image(docker, node_bin / "coredns", dns)
    return {PAUSE: PAUSE, dns: dns, **extra}


def _start_node(node: RealNode, node_bin: Path, docker: Docker, images: Mapping[str, str]) -> None:
    paths = node.paths
    host.shared_mount(paths.kubelet_root)
    host.make_cgroups(NODE_NAME)
    _start_containerd(node, node_bin)
    began = time.monotonic()
    node.imported = import_images(docker, node.ctr, _images(docker, node_bin, images))
    node.timings["images imported"] = time.monotonic() - began
    _start_kubelet(node, node_bin)
    _wait_for(
        "node registered", lambda: node.cluster.kubectl("get", "node", NODE_NAME, check=False), node, 60
    )
    _start_proxy_and_enforcer(node, node_bin)
    began = time.monotonic()
    _wait_for("node Ready", lambda: _node_ready(node), node, 120)
    node.timings["node Ready after the daemons"] = time.monotonic() - began
    _start_dns(node)


@contextlib.contextmanager
def running_node(
    cluster_bin: Path, node_bin: Path, docker: Docker, images: Mapping[str, str]
) -> Iterator[RealNode]:
    """A control plane and one real node (no simulated ones); ``images`` (containerd reference ->
    Docker image) are imported besides pause and CoreDNS. Stops and removes everything on exit."""
    paths = PATHS
    with host.machine_lock(LOCK):
        host.clear(paths.state, paths.containerd_socket, NODE_NAME)
        with node_network() as network:
            began = time.monotonic()
            paths.state.mkdir(parents=True)
            _prepare_volumes(paths)
            pki = kubelet_client_pki(paths.state / "kubelet-client-pki")
            cluster = start_cluster(
                cluster_bin,
                nodes=0,
                volumes=VOLUMES_PER_CLASS,
                network=ClusterNetwork(
                    address=network.host_ip,
                    service_cidr=str(network.service_cidr),
                    pod_cidr=str(network.pod_cidr),
                ),
                users=NODE_USERS,
                volumes_root=paths.volumes,
                apiserver_flags=[
                    f"--kubelet-client-certificate={pki.certificate}",
                    f"--kubelet-client-key={pki.key}",
                ],
            )
            ctr, dns = Ctr(paths.containerd_socket), coredns_reference(node_bin)
            node = RealNode(cluster, network, paths, ctr, dns, pki)
            node.timings["control plane ready"] = time.monotonic() - began
            try:
                _start_node(node, node_bin, docker, images)
                yield node
            finally:
                for daemon in reversed(node.daemons):
                    daemon.cleanup()
                host.clear(paths.state, paths.containerd_socket, NODE_NAME)
                cluster.stop()
