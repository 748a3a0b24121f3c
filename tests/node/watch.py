"""Every change to a namespace's pods as it happens (``kubectl get pods --watch``), kept to judge a
rollout afterwards: how long each pod took from creation to Ready, and whether a service ever had
fewer Ready pods than it should, or more pods than one surge allows."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.cluster import LocalCluster

NAME_LABEL = "app.kubernetes.io/name"


@dataclass
class PodState:
    service: str
    created: float  # monotonic, when the watch first saw it
    ready_when_seen: bool = False  # Ready already then: it started before the watch
    first_ready: float | None = None
    is_ready: bool = False
    terminating: bool = False
    gone: bool = False

    @property
    def serving(self) -> bool:
        return self.is_ready and not self.terminating and not self.gone


@dataclass
class Snapshot:
    at: float
    ready: dict[str, int]  # service -> Ready pods not being deleted
    live: dict[str, int]  # service -> pods not being deleted


@dataclass
class PodWatch:
    pods: dict[str, PodState] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, event: dict[str, Any], now: float) -> None:
        pod = event["object"]
        meta, status = pod["metadata"], pod.get("status", {})
        service = (meta.get("labels") or {}).get(NAME_LABEL)
        if service is None:
            return
        with self.lock:
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
            if meta["name"] not in self.pods:
                self.pods[meta["name"]] = PodState(service, now, ready_when_seen=ready)
            state = self.pods[meta["name"]]
            if ready and state.first_ready is None:
                state.first_ready = now
            state.is_ready = ready
            state.terminating = "deletionTimestamp" in meta
            state.gone = event["type"] == "DELETED"
            self.snapshots.append(self._snapshot(now))

    def _snapshot(self, now: float) -> Snapshot:
        ready: dict[str, int] = {}
        live: dict[str, int] = {}
        for state in self.pods.values():
            if state.gone or state.terminating:
                continue
            live[state.service] = live.get(state.service, 0) + 1
            if state.serving:
                ready[state.service] = ready.get(state.service, 0) + 1
        return Snapshot(now, ready, live)

    def since(self, began: float) -> list[Snapshot]:
        with self.lock:
            return [s for s in self.snapshots if s.at >= began]

    def created_since(self, began: float) -> dict[str, list[str]]:
        with self.lock:
            found: dict[str, list[str]] = {}
            for name, state in self.pods.items():
                if state.created >= began:
                    found.setdefault(state.service, []).append(name)
            return found

    def start_to_ready(self) -> dict[str, float]:
        """Pod name -> seconds from the watch first seeing it to its first Ready (pods that started
        during the watch)."""
        with self.lock:
            return {
                name: state.first_ready - state.created
                for name, state in self.pods.items()
                if state.first_ready is not None and not state.ready_when_seen
            }


def _events(stream: Any) -> Iterator[dict[str, Any]]:
    """kubectl writes one JSON document after another, each spread over many lines."""
    decoder, buffer = json.JSONDecoder(), ""
    for line in stream:
        buffer += line
        while buffer.strip():
            try:
                event, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                break
            buffer = buffer.lstrip()[end:]
            yield event


class Watching:
    """A background ``kubectl get pods --watch`` feeding a PodWatch until ``stop()``."""

    def __init__(self, cluster: LocalCluster, namespace: str) -> None:
        self.watch = PodWatch()
        self.proc = subprocess.Popen(
            [
                str(cluster.bin_dir / "kubectl"),
                "--kubeconfig",
                str(cluster.kubeconfig),
                "get",
                "pods",
                "--namespace",
                namespace,
                "--watch",
                "--output-watch-events",
                "--output",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for event in _events(self.proc.stdout):
            self.watch.apply(event, time.monotonic())

    def wait_until_seen(self, names: set[str], timeout: float = 30) -> None:
        """Until the watch's first listing has shown every pod of ``names`` (judge nothing before)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.watch.lock:
                if names <= set(self.watch.pods):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the pod watch did not list {sorted(names)} within {timeout} s")
            time.sleep(0.1)

    def stop(self) -> PodWatch:
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(10)
        return self.watch
