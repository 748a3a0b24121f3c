"""Pods the node tests start themselves, and what they run inside pods through ``kubectl exec``."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from infra.builders.pod import UID
from tests.e2e.cluster import LocalCluster

Manifest = dict[str, Any]


def restricted_container(name: str, image: str, command: list[str]) -> Manifest:
    """A container the Pod Security ``restricted`` level admits, as the services' are."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "200m", "memory": "128Mi"},
        },
    }


def python_pod(name: str, namespace: str, image: str, labels: dict[str, str], script: str) -> Manifest:
    """A pod running ``python -c script`` in one of the service images (the only Python here)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [restricted_container("main", image, ["python", "-c", script])],
        },
    }


# Sleeps until stopped, then exits at once.
IDLE = "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); signal.pause()"


def wait_ready(cluster: LocalCluster, namespace: str, name: str, timeout: float = 120) -> Manifest:
    deadline = time.monotonic() + timeout
    pod: Manifest = {}
    while time.monotonic() < deadline:
        pod = json.loads(cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json"))
        conditions = pod.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return pod
        time.sleep(0.5)
    raise AssertionError(
        f"pod {namespace}/{name} not Ready within {timeout} s: {json.dumps(pod.get('status'))}"
    )


def run_python(
    cluster: LocalCluster, namespace: str, pod: str, script: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -c script`` inside the pod's first container."""
    return subprocess.run(
        [
            str(cluster.bin_dir / "kubectl"),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "exec",
            "-n",
            namespace,
            pod,
            "--",
            "python",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


CONNECT = """
import concurrent.futures, json, socket, sys

targets, timeout = json.loads(sys.argv[1]), float(sys.argv[2])


def attempt(target):
    host, port = target
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return "connected"
    except OSError as exc:
        return f"{type(exc).__name__} {exc}"


with concurrent.futures.ThreadPoolExecutor(len(targets) or 1) as pool:
    print(json.dumps(list(pool.map(attempt, targets))))
"""


def connect_all(
    cluster: LocalCluster, namespace: str, pod: str, targets: list[tuple[str, int]], timeout: float = 3
) -> dict[tuple[str, int], str]:
    """Target -> ``connected``, or why a TCP connection to it from inside the pod failed (a policy
    rejects at once: kube-router answers with a reset or an ICMP error rather than dropping)."""
    script = f"import sys; sys.argv = ['', {json.dumps(targets)!r}, '{timeout}']\n{CONNECT}"
    done = run_python(cluster, namespace, pod, script, timeout=timeout + 60)
    if done.returncode != 0:
        raise AssertionError(f"exec in {namespace}/{pod} failed: {done.stderr.strip()}")
    results: list[str] = json.loads(done.stdout)
    return dict(zip(targets, results, strict=True))


def connect(cluster: LocalCluster, namespace: str, pod: str, host: str, port: int, timeout: float = 3) -> str:
    return connect_all(cluster, namespace, pod, [(host, port)], timeout)[(host, port)]
