"""The dev stack deployed by the real engine onto the real node: its data stores external (servers on
the host, stores.py), its images the ones imported into the node's containerd, its gateway reached
through the ingress stand-in (ingress.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from infra.render.capture import stack_config
from stacks import load
from stacks.catalog import SERVICES
from stacks.model import StackSettings
from tests.e2e.pulumi_cli import PulumiProject
from tests.node import ingress
from tests.node.node import RealNode
from tests.node.stores import ExternalStores
from tests.node.watch import PodWatch, Watching

STACK = "dev"
REGISTRY = "venta.local/venta"  # where the node's containerd holds the service images
TAG = "node"
NAME_LABEL = "app.kubernetes.io/name"
GATEWAY = next(spec.name for spec in SERVICES if spec.public_entry)

Config = dict[str, Any]


def node_image(service: str) -> str:
    return f"{REGISTRY}/{service}:{TAG}"


def stack_config_for(node: RealNode, stores: ExternalStores) -> tuple[Config, Config]:
    """What the test sets on the stack: plain settings, and secrets (top-level key -> object)."""
    plain: Config = {
        "venta:kubernetes": {"kubeconfig": str(node.cluster.kubeconfig), "context": node.cluster.context},
        "venta:images": {"registry": REGISTRY, "tag": TAG},
        # The files volume as a shared filesystem would offer it (the node's volumes allow every
        # mode): file-management then rolls like the others. dev's own ReadWriteOnce volume makes it
        # stop its one pod before starting the next (the Recreate strategy), a gap by design.
        "venta:storage": {"filesAccessMode": "ReadWriteMany", "filesClassName": "shared-files"},
    }
    for kind, port in stores.ports.items():
        plain[f"venta:{kind}"] = {
            "external": {"host": stores.host, "port": port, "cidr": f"{stores.host}/32"}
        }
    secret: Config = {
        "venta:secrets": {
            "redisPassword": stores.redis_password,
            "redisCachePassword": stores.cache_password,
            "postgresPasswords": stores.postgres_passwords,
            "natsPasswords": stores.nats_passwords,
        }
    }
    return plain, secret


def _paths(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """``config set --path`` keys of every leaf of ``value``."""
    if not isinstance(value, dict):
        return [(prefix, value)]
    found = []
    for key, inner in value.items():
        step = f'["{key}"]' if "-" in key else f".{key}"
        found += _paths(prefix + step, inner)
    return found


def _merged(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in extra.items()}}
    return extra


def settings_with(config: Config) -> StackSettings:
    """The stack's settings once ``config`` is set on top of its committed file."""
    base = stack_config(STACK)
    merged = {
        key: json.dumps(_merged(json.loads(base.get(key, "{}")), value)) for key, value in config.items()
    }
    return load(STACK, {**base, **merged})


def configure(project: PulumiProject, plain: Config, secret: Config) -> None:
    """One engine run for every setting (``config set-all``); secrets encrypted with the stack's key."""
    args = ["config", "set-all", "--stack", STACK, "--path"]
    for kind, config in (("--plaintext", plain), ("--secret", secret)):
        for key, value in config.items():
            for path, leaf in _paths(key, value):
                args += [kind, f"{path}={leaf if isinstance(leaf, str) else json.dumps(leaf)}"]
    project.run(*args)


@dataclass
class NodeStack:
    node: RealNode
    project: PulumiProject
    settings: StackSettings
    stores: ExternalStores
    # What the pods did during each rollout the tests made (the first deploy, a config change, ...).
    rollouts: dict[str, PodWatch] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @property
    def gateway_url(self) -> str:
        """The gateway as the public reaches it: the ingress stand-in's port on the node."""
        return f"http://{self.node.network.node_ip}:{ingress.HOST_PORT}"

    def up(self, label: str) -> None:
        self.project.run("up", "--stack", STACK, "--yes", "--skip-preview", label=label)

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.node.cluster.get_json("pods", "-n", self.namespace)["items"]
        return items

    def service_pods(self) -> dict[str, str]:
        """Service -> the name of one of its pods that is not being deleted."""
        found: dict[str, str] = {}
        for pod in self.pods():
            service = (pod["metadata"].get("labels") or {}).get(NAME_LABEL)
            if service and "deletionTimestamp" not in pod["metadata"]:
                found.setdefault(service, pod["metadata"]["name"])
        return found


def deploy(node: RealNode, stores: ExternalStores, project: PulumiProject) -> NodeStack:
    """The ingress stand-in first (the gateway admits only its namespace), then ``pulumi up``, which
    returns once every Deployment has rolled out, i.e. every pod passed its readiness probe."""
    plain, secret = stack_config_for(node, stores)
    settings = settings_with({**plain, **secret})
    project.run("stack", "select", "--create", STACK)
    configure(project, plain, secret)
    target = f"{GATEWAY}.{settings.namespace}.svc.cluster.local"
    node.cluster.apply(ingress.stand_in(settings.gateway.ingress_namespace, node_image(GATEWAY), target, 80))
    stack = NodeStack(node, project, settings, stores)
    watching = Watching(node.cluster, settings.namespace)
    began = time.monotonic()
    try:
        stack.up("up")
    finally:
        stack.rollouts["first deploy"] = watching.stop()
    stack.timings["pulumi up of dev"] = time.monotonic() - began
    return stack
