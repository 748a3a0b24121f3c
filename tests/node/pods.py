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
import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    socket.create_connection((host, port), timeout=timeout).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__, exc)
"""


def connect(cluster: LocalCluster, namespace: str, pod: str, host: str, port: int, timeout: float = 3) -> str:
    """``connected``, or why a TCP connection from inside the pod failed (a refused policy drops
    packets, so that is a timeout)."""
    script = f"import sys; sys.argv = ['', {host!r}, '{port}', '{timeout}']\n{CONNECT}"
    done = run_python(cluster, namespace, pod, script, timeout=timeout + 30)
    if done.returncode != 0:
        raise AssertionError(f"exec in {namespace}/{pod} failed: {done.stderr.strip()}")
    return done.stdout.strip()
