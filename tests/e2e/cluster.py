"""A real Kubernetes control plane on loopback with simulated nodes, for the e2e cluster tests.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real binaries (built by
``scripts/toolchain/build-cluster.sh``); kwok plays the kubelets, so pods scheduled onto its fake nodes
become Running and Ready without containers. Every process binds 127.0.0.1 on a free port, dies with
the test process (``PR_SET_PDEATHSIG``) and is stopped by PID.

What a real cluster has and this one adds by hand, because no cloud or node agent exists here:
- hostPath PersistentVolumes of the StorageClasses the stacks name, which the controller-manager's
  binder binds to claims (no dynamic provisioner runs; volumes are Retained: one claim uses up one);
- a kwok Stage that gives every Ingress a load-balancer address, as an ingress controller would;
- the Prometheus Operator's CRDs that prod's monitoring objects need (ServiceMonitor, PrometheusRule),
  as a cluster running the operator has them (no operator runs: nothing acts on those objects).
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localdev.servers import Server, free_port
from stacks.model import StackSettings
from tests.observability.crd_schemas import crd_objects
from tests.toolchain import checked_bin

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)
CONTEXT = "venta-e2e"
STORAGE_CLASS = "standard"
# Prod asks for these by name (stacks: storage.className, storage.filesClassName).
STORAGE_CLASSES = (STORAGE_CLASS, "shared-files")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
ZONES = ("zone-a", "zone-b", "zone-c")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ClusterNetwork:
    """Where the API server listens and what it advertises, and the cluster's address ranges.

    The default serves kwok's simulated nodes on loopback. A real node (tests/node) needs an address
    its network namespace can reach, which also becomes the endpoint of the ``kubernetes`` Service
    (a loopback endpoint is refused), and a pod range of its own from the controller-manager.
    """

    address: str = LOOPBACK
    service_cidr: str = SERVICE_CIDR
    pod_cidr: str = POD_CIDR

    @property
    def real_nodes(self) -> bool:
        return self.address != LOOPBACK


def cluster_bin() -> Path | None:
    """The built control plane's bin folder (``VENTA_CLUSTER_BIN`` overrides), or None when not built."""
    return checked_bin("build-cluster.sh", "VENTA_CLUSTER_BIN", BINARIES)


def wait_http(
    url: str,
    what: str,
    server: Server,
    *,
    context: ssl.SSLContext | None = None,
    token: str | None = None,
    timeout: float = 60.0,
) -> None:
    """Poll a health endpoint until it answers 200; fail early if the process died."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.proc is None or server.proc.poll() is not None:
            raise RuntimeError(f"{what} exited before it was healthy:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(0.1)
    raise RuntimeError(f"{what} not healthy at {url} within {timeout} s ({last}):\n{server.log_tail()}")


class Etcd(Server):
    name = "etcd"

    def __init__(self, bin_dir: Path) -> None:
        super().__init__()
        self.bin_dir = bin_dir
        self.peer_port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            str(self.bin_dir / "etcd"),
            "--name",
            "e2e",
            "--data-dir",
            str(self.dir / "data"),
            "--listen-client-urls",
            self.url,
            "--advertise-client-urls",
            self.url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"e2e={peer}",
            "--unsafe-no-fsync",
            "--log-level",
            "warn",
        ]

    def _ready(self) -> None:
        wait_http(f"{self.url}/health", "etcd", self)


class ApiServer(Server):
    """kube-apiserver with RBAC, static tokens (an admin's and those of ``users``: name -> token and
    groups) and its own self-signed serving certificate."""

    name = "kube-apiserver"

    def __init__(
        self,
        bin_dir: Path,
        etcd_url: str,
        token: str,
        sa_key: Path,
        network: ClusterNetwork,
        users: Mapping[str, tuple[str, tuple[str, ...]]],
        flags: Sequence[str] = (),
    ) -> None:
        super().__init__(network.address)
        self.bin_dir, self.etcd_url, self.token, self.sa_key = bin_dir, etcd_url, token, sa_key
        self.network, self.flags = network, list(flags)
        lines = [f"{token},venta-admin,venta-admin,system:masters"]
        lines += [f'{secret},{user},{user},"{",".join(groups)}"' for user, (secret, groups) in users.items()]
        (self.dir / "tokens.csv").write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"https://{self.network.address}:{self.port}"

    @property
    def ca_file(self) -> Path:
        # Written by the API server at start: its serving certificate followed by the CA that signed it.
        return self.dir / "certs" / "apiserver.crt"

    def _command(self) -> list[str]:
        return [
            str(self.bin_dir / "kube-apiserver"),
            "--etcd-servers",
            self.etcd_url,
            "--bind-address",
            self.network.address,
            "--advertise-address",
            self.network.address,
            "--secure-port",
            str(self.port),
            "--cert-dir",
            str(self.dir / "certs"),
            "--token-auth-file",
            str(self.dir / "tokens.csv"),
            "--authorization-mode",
            "Node,RBAC",
            "--service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file",
            str(self.sa_key),
            "--service-account-signing-key-file",
            str(self.sa_key),
            "--service-cluster-ip-range",
            self.network.service_cidr,
            "--allow-privileged=true",  # as kubeadm sets it
            # A node registers its name and its address; only the address leads anywhere here.
            "--kubelet-preferred-address-types",
            "InternalIP",
            # On loopback the "kubernetes" Service's endpoints would point at an address validation refuses.
            *([] if self.network.real_nodes else ["--endpoint-reconciler-type", "none"]),
            *self.flags,
        ]

    def _ready(self) -> None:
        deadline = time.monotonic() + 30
        while not self.ca_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        wait_http(f"{self.url}/readyz", "kube-apiserver", self, context=context, token=self.token)


class Component(Server):
    """A control-plane client (controller-manager, scheduler, kwok) serving health on its own port."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        super().__init__()
        self.command = [arg.replace("{port}", str(self.port)) for arg in command]

    def _command(self) -> list[str]:
        return self.command


@dataclass
class LocalCluster:
    """A running cluster: the kubeconfig to hand to Pulumi and kubectl, and the processes behind it."""

    bin_dir: Path
    dir: Path
    kubeconfig: Path
    context: str = CONTEXT
    servers: list[Server] = field(default_factory=list)
    network: ClusterNetwork = field(default_factory=ClusterNetwork)
    api_url: str = ""
    ca_pem: bytes = b""
    tokens: dict[str, str] = field(default_factory=dict)  # user -> its static token (not the admin's)

    def kubectl(self, *args: str, input_text: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.kubectl(
            "apply", "-f", "-", input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        )

    def logs(self) -> str:
        return "\n".join(f"--- {server.name}\n{server.log_tail()}" for server in self.servers)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.cleanup()
        self.servers.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


def _write_service_account_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def kubeconfig_document(server: str, ca_pem: bytes, token: str, context: str = CONTEXT) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }


# kwok's own default capacity has no ephemeral-storage, so no pod that requests it (every pod of the
# stack) would fit; a node states its capacity at registration, as a kubelet does.
NODE_CAPACITY = {"cpu": "1k", "memory": "1Ti", "pods": "1M", "ephemeral-storage": "1Ti"}


def node_object(name: str, zone: str) -> dict[str, Any]:
    # kwok's node stage fills the rest of the status (Ready, addresses) for nodes it manages.
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
                "type": "kwok",
            },
        },
        "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY},
    }


VOLUMES_ROOT = Path("/tmp/venta-e2e-volumes")


def storage_objects(
    volumes_per_class: int, size: str = "500Gi", root: Path = VOLUMES_ROOT
) -> list[dict[str, Any]]:
    """StorageClasses without a provisioner, each with pre-created volumes the binder hands out
    (hostPath folders under ``root``).

    STORAGE_CLASS is the default (claims without a class land there); prod names it and its
    ReadWriteMany class for shared files explicitly.
    """
    objects: list[dict[str, Any]] = []
    for name in STORAGE_CLASSES:
        default = "true" if name == STORAGE_CLASS else "false"
        objects.append(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": name,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": default},
                },
                "provisioner": "kubernetes.io/no-provisioner",
                "volumeBindingMode": "Immediate",
            }
        )
        objects += [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"{name}-{index}"},
                "spec": {
                    "capacity": {"storage": size},
                    "storageClassName": name,
                    "accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": str(root / f"{name}-{index}")},
                },
            }
            for index in range(volumes_per_class)
        ]
    return objects


# An ingress controller would publish the address it serves an Ingress on; Pulumi waits for it.
INGRESS_STAGE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: ingress-address
spec:
  resourceRef:
    apiGroup: networking.k8s.io/v1
    kind: Ingress
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.loadBalancer.ingress'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      loadBalancer:
        ingress:
        - ip: 127.0.0.1
"""


def _component_commands(
    bin_dir: Path, kubeconfig: Path, sa_key: Path, ca_file: Path, stage_file: Path, network: ClusterNetwork
) -> dict[str, list[str]]:
    common = ["--kubeconfig", str(kubeconfig), "--bind-address", "127.0.0.1", "--secure-port", "{port}"]
    # A real node's pods get addresses from a /24 of the pod range handed to it on registration.
    node_ranges = ["--allocate-node-cidrs=true", "--node-cidr-mask-size=24"] if network.real_nodes else []
    return {
        "kube-controller-manager": [
            str(bin_dir / "kube-controller-manager"),
            *common,
            "--leader-elect=false",
            "--service-account-private-key-file",
            str(sa_key),
            "--root-ca-file",
            str(ca_file),
            "--use-service-account-credentials=false",
            "--cluster-cidr",
            network.pod_cidr,
            "--service-cluster-ip-range",
            network.service_cidr,
            *node_ranges,
        ],
        "kube-scheduler": [str(bin_dir / "kube-scheduler"), *common, "--leader-elect=false"],
        "kwok": [
            str(bin_dir / "kwok"),
            "--kubeconfig",
            str(kubeconfig),
            "--config",
            str(stage_file),
            # Its own simulated nodes only (node_object's annotation): a real node runs a kubelet.
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr",
            "10.244.0.1/16",
            "--node-ip",
            "10.0.0.10",
            "--server-address",
            "127.0.0.1:{port}",
            # Without it kwok renews no node leases and heartbeats only every ~10 min, so the node
            # lifecycle controller marks the nodes NotReady after 40 s and evicts their pods.
            "--node-lease-duration-seconds",
            "40",
        ],
    }


def _wait_ready(cluster: LocalCluster, nodes: int, timeout: float = 60.0) -> None:
    """Nodes Ready (kwok works) and the default ServiceAccount made (the controller-manager works)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = cluster.get_json("nodes")["items"]
        ready = [
            n
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        accounts = cluster.kubectl("get", "serviceaccount", "default", "-n", "default", check=False)
        if len(ready) >= nodes and accounts:
            return
        time.sleep(0.2)
    raise RuntimeError(f"cluster not ready within {timeout} s:\n{cluster.logs()}")


# Volumes per class for the whole session: every deploy of every module uses up one per claim (they
# are Retained), and a full run deploys dev and prod about ten times (prod alone claims 7).
VOLUMES_PER_CLASS = 128


def start_cluster(
    bin_dir: Path,
    nodes: int = 3,
    volumes: int = VOLUMES_PER_CLASS,
    network: ClusterNetwork | None = None,
    users: Mapping[str, tuple[str, ...]] | None = None,
    volumes_root: Path = VOLUMES_ROOT,
    apiserver_flags: Sequence[str] = (),
) -> LocalCluster:
    """Start the control plane and kwok with ``nodes`` simulated nodes; return once they are Ready
    and controllers run. ``users`` (name -> groups) get static tokens, in ``cluster.tokens``."""
    network = network or ClusterNetwork()
    base = Path(tempfile.mkdtemp(prefix="venta-cluster-"))
    cluster = LocalCluster(bin_dir=bin_dir, dir=base, kubeconfig=base / "kubeconfig", network=network)
    try:
        token = secrets.token_hex(24)
        cluster.tokens = {user: secrets.token_hex(24) for user in users or {}}
        sa_key = base / "service-account.key"
        _write_service_account_key(sa_key)
        etcd = Etcd(bin_dir)
        cluster.servers.append(etcd)
        etcd.start()
        user_tokens = {user: (cluster.tokens[user], tuple(groups)) for user, groups in (users or {}).items()}
        apiserver = ApiServer(bin_dir, etcd.url, token, sa_key, network, user_tokens, apiserver_flags)
        cluster.servers.append(apiserver)
        apiserver.start()
        cluster.api_url, cluster.ca_pem = apiserver.url, apiserver.ca_file.read_bytes()
        document = kubeconfig_document(apiserver.url, cluster.ca_pem, token)
        cluster.kubeconfig.write_text(json.dumps(document, indent=2))
        stage_file = base / "kwok-stages.yaml"
        stage_file.write_text(INGRESS_STAGE)
        commands = _component_commands(
            bin_dir, cluster.kubeconfig, sa_key, apiserver.ca_file, stage_file, network
        )
        for name, command in commands.items():
            component = Component(name, command)
            cluster.servers.append(component)
            component.start()
        cluster.apply(
            [node_object(f"kwok-node-{i}", ZONES[i % len(ZONES)]) for i in range(nodes)]
            + storage_objects(volumes, root=volumes_root)
        )
        _wait_ready(cluster, nodes)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def workload_problems(cluster: LocalCluster, namespace: str, replicas: Mapping[str, int]) -> list[str]:
    """What keeps `namespace` from being fully rolled out; empty once it is.

    `replicas` gives the pod count some Deployments must reach (an HPA's minimum, say).
    """
    problems: list[str] = []
    for d in cluster.get_json("deployments", "-n", namespace)["items"]:
        name, want, status = d["metadata"]["name"], d["spec"].get("replicas"), d.get("status", {})
        if name in replicas and want != replicas[name]:
            problems.append(f"Deployment {name}: {want} replicas, expected {replicas[name]}")
        counts = [status.get(key, 0) for key in ("updatedReplicas", "readyReplicas", "availableReplicas")]
        if counts != [want] * 3 or status.get("observedGeneration") != d["metadata"]["generation"]:
            problems.append(f"Deployment {name}: updated/ready/available {counts} of {want}")
    for sts in cluster.get_json("statefulsets", "-n", namespace)["items"]:
        name, status = sts["metadata"]["name"], sts.get("status", {})
        if status.get("readyReplicas", 0) != sts["spec"]["replicas"]:
            problems.append(f"StatefulSet {name}: {status.get('readyReplicas', 0)} ready")
        if status.get("currentRevision") != status.get("updateRevision"):
            problems.append(f"StatefulSet {name}: revision {status.get('currentRevision')} is not the update")
    for claim in cluster.get_json("persistentvolumeclaims", "-n", namespace)["items"]:
        if claim.get("status", {}).get("phase") != "Bound":
            problems.append(f"PersistentVolumeClaim {claim['metadata']['name']} is not Bound")
    endpoints = {e["metadata"]["name"]: e for e in cluster.get_json("endpoints", "-n", namespace)["items"]}
    for service in cluster.get_json("services", "-n", namespace)["items"]:
        name = service["metadata"]["name"]
        subsets = endpoints.get(name, {}).get("subsets", [])
        if service["spec"].get("selector") and not any(subset.get("addresses") for subset in subsets):
            problems.append(f"Service {name} has no ready endpoints")
    return problems


def minimum_pods(settings: StackSettings) -> dict[str, int]:
    """Deployment -> pods it runs once settled: its HPA's minimum, or its fixed count."""
    return {name: service.min_pods for name, service in settings.services.items()}


def wait_until_rolled_out(
    cluster: LocalCluster, namespace: str, replicas: Mapping[str, int], timeout: float = 180.0
) -> None:
    """Controllers act after the API call returns (an HPA raises replicas to its minimum, say)."""
    deadline = time.monotonic() + timeout
    while problems := workload_problems(cluster, namespace, replicas):
        if time.monotonic() > deadline:
            raise AssertionError(f"{namespace} not rolled out after {timeout} s: " + "; ".join(problems))
        time.sleep(0.5)


EXPORTERS = ("nats-exporter", "postgres-exporter", "redis-exporter")


def operator_objects(cluster: LocalCluster, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """The namespace's ServiceMonitors and PrometheusRules, by kind."""
    return {
        kind: cluster.get_json(f"{plural}.monitoring.coreos.com", "-n", namespace)["items"]
        for kind, plural in (("ServiceMonitor", "servicemonitors"), ("PrometheusRule", "prometheusrules"))
    }


def expected_monitors(settings: StackSettings) -> list[str]:
    """The ServiceMonitors a stack deploys: one per service and per exporter, with the operator on."""
    if not settings.monitoring.prometheus_operator:
        return []
    return sorted([*settings.services, *EXPORTERS])


def install_operator_crds(cluster: LocalCluster) -> None:
    """The Prometheus Operator's CRDs the stacks create objects of; returns once the API serves them."""
    crds = crd_objects()
    cluster.apply(crds)
    names = [f"crd/{crd['metadata']['name']}" for crd in crds]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


def delete_operator_crds(cluster: LocalCluster) -> None:
    """Takes them away again (with every object of theirs), as on a cluster without the operator."""
    names = [f"crd/{crd['metadata']['name']}" for crd in crd_objects()]
    cluster.kubectl("delete", "--wait=true", "--timeout=120s", *names)


@contextmanager
def running_cluster(bin_dir: Path) -> Iterator[LocalCluster]:
    """Start a cluster, report how long it took, and stop every process of it on exit."""
    started = time.monotonic()
    cluster = start_cluster(bin_dir)
    try:
        install_operator_crds(cluster)
        print(f"\n[e2e cluster] started in {time.monotonic() - started:.1f}s")
        yield cluster
    finally:
        cluster.stop()
