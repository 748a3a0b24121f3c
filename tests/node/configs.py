"""The node's configuration files as plain text: containerd's, the CNI template it fills with the
node's pod range, the kubelet's, kube-proxy's and a kubeconfig per node daemon. Pure functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.node.netns import NodeNetwork

NODE_NAME = "venta-node"
CLUSTER_DOMAIN = "cluster.local"
CNI_BIN = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
RUNC = Path("/usr/sbin/runc")  # Debian's runc

# Ports the node daemons serve their health on, at the node's address.
CONTAINERD_METRICS_PORT = 1338
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_ROUTER_HEALTH_PORT = 20244


@dataclass(frozen=True)
class NodePaths:
    """Where the node keeps its state: ``state`` goes with the run, ``images`` (containerd's root:
    its content store and snapshots) is kept so a second run imports nothing it already has."""

    state: Path
    images: Path

    @property
    def containerd_socket(self) -> Path:
        return self.state / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def cni_conf_dir(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def pod_logs(self) -> Path:
        return self.state / "pod-logs"

    @property
    def volumes(self) -> Path:
        return self.state / "volumes"


def containerd_config(paths: NodePaths, network: NodeNetwork, sandbox_image: str) -> str:
    """containerd 1.6 (config version 2) with its CRI plugin for the kubelet: runc with cgroupfs, the
    locally built pause image, and CNI from Debian's plugins with a config made from a template once
    the kubelet passes on the node's pod range. Nothing is ever pulled: every image is imported.

    Processes here lack CAP_SYS_RESOURCE, so no OOM score can go below the parent's (0): containerd
    raises the kubelet's negative scores (pause -998, Guaranteed pods -997) to 0 instead of failing
    every sandbox (``restrict_oom_score_adj``, made for containerd without that capability)."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = "{paths.images}"
state = "{paths.state / "containerd"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{paths.containerd_socket}"

[metrics]
  address = "{network.node_ip}:{CONTAINERD_METRICS_PORT}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.state / "opt"}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{RUNC}"
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{paths.cni_conf_dir}"
  conf_template = "{paths.state / "cni" / "template.conflist"}"
"""


def cni_template(paths: NodePaths) -> str:
    """A bridge with the node's pod range (``{{.PodCIDR}}``, filled in by containerd): pods reach
    each other across it, and anything beyond the range leaves masqueraded as the node (the host's
    data stores then see the node's address); portmap serves hostPorts."""
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": "{{.PodCIDR}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(paths.state / "cni" / "ipam"),
    }
    conf = {
        "cniVersion": "1.0.0",
        "name": "venta-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": ipam,
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(conf, indent=2)


def kubelet_config(paths: NodePaths, network: NodeNetwork, client_ca: Path) -> dict[str, Any]:
    """The kubelet's configuration.

    - Its API (exec, logs) listens on the node's address; callers prove who they are with a client
      certificate of ``client_ca`` (the API server's, pki.py) or a token, and the API server decides
      what they may do (webhook authentication and authorization, as kubeadm sets them).
    - protectKernelDefaults: it checks, not sets, the kernel settings it wants (``vm.overcommit_memory``,
      ``kernel.panic``, ...), which are machine-wide; the node is a guest on this machine and sees the
      values it expects (node.py).
    - Pod cgroups go under their own root, pod logs and volumes under the run's state.
    - No image garbage collection and only last-resort eviction: the machine's disk is shared with
      other work, and the imported images cannot be pulled again.
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": network.node_ip,
        "readOnlyPort": 0,
        "healthzBindAddress": network.node_ip,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{NODE_NAME}",
        "clusterDNS": [network.dns_ip],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": "",  # pods never see the host's resolvers
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "podLogsDir": str(paths.pod_logs),
        "protectKernelDefaults": True,
        "failSwapOn": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "maxPods": 60,
        "serializeImagePulls": False,
        "rotateCertificates": False,
        "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE here (containerd_config)
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
    }


def kube_proxy_config(kubeconfig: Path, network: NodeNetwork) -> dict[str, Any]:
    """kube-proxy in iptables mode, inside the node's namespace. It leaves the conntrack table size
    alone (a machine-wide setting a network namespace cannot change) and serves no NodePort on
    loopback (that would need route_localnet)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "healthzBindAddress": f"{network.node_ip}:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": "127.0.0.1:10249",
        "mode": "iptables",
        "clusterCIDR": str(network.pod_cidr),
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
        "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE here (containerd_config)
    }


def kube_router_args(kubeconfig: Path, network: NodeNetwork) -> list[str]:
    """kube-router as the NetworkPolicy enforcer only: no routing (one node), no service proxy
    (kube-proxy's job)."""
    return [
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--run-loadbalancer=false",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        f"--service-cluster-ip-range={network.service_cidr}",
        f"--health-port={KUBE_ROUTER_HEALTH_PORT}",
        "--metrics-port=0",
        "--enable-ipv4=true",
        "--enable-ipv6=false",
    ]
