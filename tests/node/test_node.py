"""The real node itself: pods run in containerd on the locally built sandbox, get an address from the
node's pod range, answer their probes, resolve names through the cluster DNS, and their network
stays inside the node's namespace."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.node.images import PAUSE
from tests.node.node import RealNode
from tests.node.pods import connect, python_pod, run_python, wait_ready
from tests.node.stack import node_image

pytestmark = pytest.mark.e2e

NS = "node-smoke"
SERVER = """
import http.server, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
http.server.ThreadingHTTPServer(("", 8080), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


@pytest.fixture(scope="module")
def web_pod(real_node: RealNode) -> Iterator[dict[str, object]]:
    cluster = real_node.cluster
    cluster.kubectl("create", "namespace", NS)
    pod = python_pod("smoke", NS, node_image("api-gateway"), {"app": "web"}, SERVER)
    container = pod["spec"]["containers"][0]
    container["workingDir"] = "/tmp"
    container["ports"] = [{"name": "http", "containerPort": 8080}]
    container["readinessProbe"] = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}
    pod["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    cluster.apply([pod, service])
    yield wait_ready(cluster, NS, "smoke")
    cluster.kubectl("delete", "namespace", NS, "--wait=false")


def test_a_pod_runs_in_containerd_on_the_local_sandbox_with_an_address_of_the_node(
    real_node: RealNode, web_pod: dict[str, object]
) -> None:
    status = web_pod["status"]
    assert isinstance(status, dict)
    assert status["containerStatuses"][0]["containerID"].startswith("containerd://")
    node_range = ipaddress.IPv4Network(real_node.node()["spec"]["podCIDR"])
    assert node_range.subnet_of(real_node.network.pod_cidr)
    assert ipaddress.ip_address(status["podIP"]) in node_range
    sandboxes = real_node.ctr("containers", "list").stdout
    assert PAUSE in sandboxes, sandboxes


def test_cluster_dns_answers_for_services(real_node: RealNode, web_pod: dict[str, object]) -> None:
    script = (
        "import socket\n"
        "for name in ('web', 'web.node-smoke.svc.cluster.local', 'kubernetes.default'):\n"
        "    print(socket.gethostbyname(name))\n"
    )
    done = run_python(real_node.cluster, NS, "smoke", script)
    assert done.returncode == 0, done.stderr
    web_ip = real_node.cluster.get_json("service", "web", "-n", NS)["spec"]["clusterIP"]
    api_ip = str(real_node.network.service_cidr[1])
    assert done.stdout.split() == [web_ip, web_ip, api_ip]


def test_a_service_address_reaches_its_pod(real_node: RealNode, web_pod: dict[str, object]) -> None:
    # kube-proxy's rules send the Service's address to the pod (itself, here: hairpin traffic). It
    # writes them a moment after the Service appears; until then the node has no route there at all.
    deadline, outcome = time.monotonic() + 30, ""
    while time.monotonic() < deadline and outcome != "connected":
        outcome = connect(real_node.cluster, NS, "smoke", "web", 80)
    assert outcome == "connected"


def test_pods_reach_the_host_end_of_the_node_link_and_nothing_beyond(
    real_node: RealNode, web_pod: dict[str, object]
) -> None:
    cluster, network = real_node.cluster, real_node.network
    api_port = int(cluster.api_url.rsplit(":", 1)[1])
    assert connect(cluster, NS, "smoke", network.host_ip, api_port) == "connected"
    # The host's own network (its default gateway) is not routed from the node at all.
    gateway = _host_default_gateway()
    assert connect(cluster, NS, "smoke", gateway, 53, timeout=2).startswith("OSError [Errno 101]")


def test_the_node_changes_nothing_of_the_host_network(real_node: RealNode) -> None:
    network = real_node.network
    node_routes = network.run("ip", "-4", "route").stdout
    assert "default" not in node_routes, node_routes
    host_routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    for rng in (network.pod_cidr, network.service_cidr):
        assert not any(_overlaps(line, rng) for line in host_routes.splitlines()), host_routes
    host_rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert not {"KUBE-", "CNI-", "KUBE-ROUTER"} & _chains(host_rules)
    node_rules = network.run("iptables-save").stdout
    assert {"KUBE-", "CNI-", "KUBE-ROUTER"} <= _chains(node_rules), "the node's rules are in its namespace"


def _chains(rules: str) -> set[str]:
    found = set()
    for line in rules.splitlines():
        if line.startswith(":"):
            name = line[1:].split()[0]
            found |= {prefix for prefix in ("KUBE-", "CNI-", "KUBE-ROUTER") if name.startswith(prefix)}
    return found


def _overlaps(route: str, rng: ipaddress.IPv4Network) -> bool:
    target = route.split()[0]
    if target == "default":
        return False
    return ipaddress.ip_network(target, strict=False).overlaps(rng)


def _host_default_gateway() -> str:
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route"], capture_output=True, text=True).stdout)
    return next(r["gateway"] for r in routes if r["dst"] == "default")
