"""Service pods as Docker containers on one internal network, and the probes the kubelet would send.

Secret values reach ``docker run`` through the client's environment (``-e NAME`` without a value),
never its argument list; nothing here prints a container's configuration.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.images.daemon import Docker
from tests.images.pods import ContainerRun, HttpProbe

LABEL = "org.venta.image-test"


@dataclass(frozen=True)
class Network:
    name: str
    gateway: str  # the host's address on it: where the containers reach the data stores
    subnet: str


@dataclass
class Pod:
    """One started container of a service pod."""

    service: str
    name: str
    run: ContainerRun
    image: str
    serving_port: int  # the container port its Service targets
    ip: str = ""
    started_at: float = 0.0  # monotonic, just before `docker run`
    ready_after_s: float | None = None

    def url(self, probe: HttpProbe) -> str:
        return f"{probe.scheme}://{self.ip}:{probe.port}{probe.path}"


def create_network(docker: Docker, name: str) -> Network:
    # Internal: the containers reach each other and the host's address on the bridge, nothing beyond.
    docker("network", "create", "--internal", "--label", LABEL, name)
    ipam = docker.inspect(name, kind="network")[0]["IPAM"]["Config"][0]
    return Network(name, ipam["Gateway"], ipam["Subnet"])


def prepare_volumes(pod: Pod, root: Path) -> dict[str, str]:
    """A host directory per persistent volume, as the kubelet leaves it with ``fsGroup``: owned by
    root, group ``fsGroup`` with setgid and group write (without ``fsGroup``: root's alone)."""
    dirs = {}
    for volume in pod.run.host_volumes:
        path = root / pod.name / volume.name
        path.mkdir(parents=True)
        if volume.group is not None:
            os.chown(path, 0, volume.group)
            path.chmod(0o2775)
        dirs[volume.name] = str(path)
    return dirs


def start(docker: Docker, pod: Pod, network: Network, aliases: list[str], volumes_root: Path) -> None:
    run = pod.run
    options = list(run.options)
    for name, path in prepare_volumes(pod, volumes_root).items():
        options = [option.replace(f"{{volume:{name}}}", path) for option in options]
    entrypoint = ["--entrypoint", run.command[0]] if run.command else []
    pod.started_at = time.monotonic()
    docker(
        "run",
        "--detach",
        "--name",
        pod.name,
        "--hostname",
        run.pod,
        "--label",
        LABEL,
        "--network",
        network.name,
        *(arg for alias in aliases for arg in ("--network-alias", alias)),
        *(arg for key in sorted(run.env) for arg in ("--env", key)),
        "--stop-timeout",
        str(run.stop_timeout_s),
        *options,
        *entrypoint,
        pod.image,
        *run.command[1:],
        env=run.env,
    )
    pod.ip = docker.inspect(pod.name)[0]["NetworkSettings"]["Networks"][network.name]["IPAddress"]


def probe_passes(pod: Pod, probe: HttpProbe) -> tuple[bool, str]:
    """The kubelet's HTTP probe: healthy on a status from 200 to 399 within the probe's timeout."""
    try:
        response = httpx.get(pod.url(probe), timeout=probe.timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return 200 <= response.status_code < 400, f"{response.status_code} {response.text[:300]}"


def state(docker: Docker, pod: Pod) -> dict[str, object]:
    found: dict[str, object] = docker.inspect(pod.name)[0]["State"]
    return found


def logs(docker: Docker, pod: Pod, lines: int = 40) -> str:
    """The container's last log lines, without the access log of the tests' own probing."""
    done = docker("logs", pod.name, check=False)
    kept = [line for line in (done.stdout + done.stderr).splitlines() if '"venta.access"' not in line]
    return "\n".join(kept[-lines:])


def wait_ready(docker: Docker, pods: list[Pod], timeout_s: float) -> None:
    """Poll each pod's readiness probe (every 0.1 s, finer than the kubelet's period, to time it)
    until it passes; a container that exits or a pod not ready in ``timeout_s`` fails with its log."""
    deadline = time.monotonic() + timeout_s
    waiting = [pod for pod in pods if pod.ready_after_s is None]
    while waiting:
        for pod in list(waiting):
            ready, answer = probe_passes(pod, pod.run.probes["readinessProbe"])
            if ready:
                pod.ready_after_s = time.monotonic() - pod.started_at
                waiting.remove(pod)
            elif not state(docker, pod)["Running"] or time.monotonic() > deadline:
                raise AssertionError(f"{pod.service} never became ready ({answer}):\n{logs(docker, pod)}")
        time.sleep(0.1)


def wait_healthy(docker: Docker, pods: list[Pod], timeout_s: float) -> dict[str, str]:
    """Each container's Docker health status once it leaves ``starting`` (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    status: dict[str, str] = {}
    while len(status) < len(pods) and time.monotonic() < deadline:
        for pod in pods:
            health = state(docker, pod).get("Health") or {}
            current = str(health.get("Status", "none")) if isinstance(health, dict) else "none"
            if current != "starting":
                status[pod.service] = current
        time.sleep(0.5)
    return {pod.service: status.get(pod.service, "starting") for pod in pods}
