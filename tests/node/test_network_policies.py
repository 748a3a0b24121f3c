"""The dev stack's NetworkPolicies enforced on the real node by kube-router.

A matrix for each data store and each service: the pods the catalog says use it are served, every
other pod is refused. Three kinds of outsider: the other services' own pods (held back by their
egress rules), a pod of the stack's namespace that no policy names (the namespace's default deny),
and a pod of a namespace without policies (held back only by the target's ingress rules). Expected
results come from the catalog (stacks/catalog.py), not from the policies under test. Meanwhile the
probes pass and DNS answers the pods allowed to ask it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from stacks.catalog import SERVICES, ServiceSpec
from tests.node import ingress
from tests.node.node import wait_until_filtered
from tests.node.pods import IDLE, connect_all, python_pod, run_python, wait_ready
from tests.node.stack import GATEWAY, NodeStack, node_image

pytestmark = pytest.mark.e2e

INTRUDER = "intruder"  # in the stack's namespace, named by no policy
OUTSIDER_NS = "outsider"  # a namespace without policies
OUTSIDER = "outsider"
USES = {"postgres": "database", "redis": "redis", "redisCache": "cache", "nats": "nats"}


def uses(spec: ServiceSpec, store: str) -> bool:
    return bool(getattr(spec, USES[store]))


@pytest.fixture(scope="module")
def strangers(node_stack: NodeStack) -> Iterator[dict[str, tuple[str, str]]]:
    """Caller name -> (namespace, pod) of the pods no policy admits, and of the ingress stand-in."""
    cluster, namespace = node_stack.node.cluster, node_stack.namespace
    image = node_image(GATEWAY)
    cluster.kubectl("create", "namespace", OUTSIDER_NS)
    cluster.apply(
        [
            python_pod(INTRUDER, namespace, image, {"app": INTRUDER}, IDLE),
            python_pod(OUTSIDER, OUTSIDER_NS, image, {"app": OUTSIDER}, IDLE),
        ]
    )
    addresses = {wait_ready(cluster, namespace, INTRUDER)["status"]["podIP"]}
    addresses.add(wait_ready(cluster, OUTSIDER_NS, OUTSIDER)["status"]["podIP"])
    # Judge nothing before kube-router filters every pod involved (the rollout made new ones too).
    addresses |= {pod["status"]["podIP"] for pod in node_stack.pods()}
    wait_until_filtered(node_stack.node, addresses)
    yield {
        INTRUDER: (namespace, INTRUDER),
        OUTSIDER: (OUTSIDER_NS, OUTSIDER),
        "ingress": (node_stack.settings.gateway.ingress_namespace, ingress.NAME),
    }
    cluster.kubectl("delete", "pod", INTRUDER, "-n", namespace, "--wait=false")
    cluster.kubectl("delete", "namespace", OUTSIDER_NS, "--wait=false")


def _callers(node_stack: NodeStack, strangers: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    pods = {service: (node_stack.namespace, pod) for service, pod in node_stack.service_pods().items()}
    return {**pods, **strangers}


def _table(results: dict[str, dict[tuple[str, int], str]], names: dict[tuple[str, int], str]) -> str:
    return "\n".join(
        f"  {caller:<18} -> {names[target]:<18} {outcome}"
        for caller, row in results.items()
        for target, outcome in row.items()
    )


def test_each_data_store_serves_its_services_and_refuses_every_other_pod(
    node_stack: NodeStack, strangers: dict[str, tuple[str, str]]
) -> None:
    stores = node_stack.stores
    targets = {(stores.host, port): store for store, port in stores.ports.items()}
    # Stores outside the cluster are held back by the callers' egress rules only.
    callers = {name: where for name, where in _callers(node_stack, strangers).items() if name != OUTSIDER}
    callers.pop("ingress")
    cluster = node_stack.node.cluster
    results = {name: connect_all(cluster, ns, pod, list(targets)) for name, (ns, pod) in callers.items()}
    wrong = []
    for spec in SERVICES:
        for target, store in targets.items():
            if (results[spec.name][target] == "connected") != uses(spec, store):
                wrong.append(f"{spec.name} -> {store}: {results[spec.name][target]}")
    wrong += [f"{INTRUDER} -> {targets[t]}: {r}" for t, r in results[INTRUDER].items() if r == "connected"]
    assert not wrong, "\n".join(wrong) + "\nall results:\n" + _table(results, targets)


def test_each_service_serves_its_callers_and_refuses_every_other_pod(
    node_stack: NodeStack, strangers: dict[str, tuple[str, str]]
) -> None:
    cluster, namespace = node_stack.node.cluster, node_stack.namespace
    listed = cluster.get_json("services", "-n", namespace)["items"]
    addresses = {
        s["metadata"]["name"]: (s["spec"]["clusterIP"], s["spec"]["ports"][0]["port"]) for s in listed
    }
    targets = {addresses[spec.name]: spec.name for spec in SERVICES}
    callers = _callers(node_stack, strangers)
    results = {name: connect_all(cluster, ns, pod, list(targets)) for name, (ns, pod) in callers.items()}

    def allowed(caller: str, target: str) -> bool:
        # The public entry from the ingress controller's namespace alone; every other service from
        # the entry alone (the catalog: the gateway calls every other service, nothing else does).
        return caller == ("ingress" if target == GATEWAY else GATEWAY)

    wrong = [
        f"{caller} -> {target}: {outcome}"
        for caller, row in results.items()
        for address, outcome in row.items()
        if (outcome == "connected") != allowed(caller, target := targets[address])
    ]
    assert not wrong, "\n".join(wrong) + "\nall results:\n" + _table(results, targets)


RESOLVE = """
import json, socket, sys
found = {}
for name in json.loads(sys.argv[1]):
    try:
        found[name] = socket.gethostbyname(name)
    except OSError as exc:
        found[name] = type(exc).__name__
print(json.dumps(found))
"""


def _resolve(node_stack: NodeStack, namespace: str, pod: str, names: list[str]) -> dict[str, str]:
    script = f"import sys; sys.argv = ['', {json.dumps(names)!r}]\n{RESOLVE}"
    done = run_python(node_stack.node.cluster, namespace, pod, script)
    assert done.returncode == 0, done.stderr
    found: dict[str, str] = json.loads(done.stdout)
    return found


def test_dns_answers_the_services_and_not_a_pod_without_egress(
    node_stack: NodeStack, strangers: dict[str, tuple[str, str]]
) -> None:
    cluster, namespace = node_stack.node.cluster, node_stack.namespace
    listed = cluster.get_json("services", "-n", namespace)["items"]
    services = {s["metadata"]["name"]: s["spec"]["clusterIP"] for s in listed}
    names = [spec.name for spec in SERVICES]
    for service, pod in node_stack.service_pods().items():
        answers = _resolve(node_stack, namespace, pod, names)
        assert answers == {name: services[name] for name in names}, service
    refused = _resolve(node_stack, *strangers[INTRUDER], names)
    assert not set(refused.values()) & set(services.values()), refused


def test_the_probes_pass_while_the_policies_are_enforced(node_stack: NodeStack) -> None:
    # The kubelet probes from the node's own address, which kube-router admits to every pod.
    rules = node_stack.node.network.run("iptables-save", "-t", "filter").stdout
    pod_chains = [line for line in rules.splitlines() if line.startswith(":KUBE-POD-FW-")]
    assert len(pod_chains) >= len(SERVICES), "kube-router filters every pod of the stack"
    for pod in node_stack.pods():
        name = pod["metadata"]["name"]
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions["Ready"] == "True", name
        assert all(s["restartCount"] == 0 for s in pod["status"]["containerStatuses"]), name
