"""A Docker daemon for the image tests: the one already running, else one started here as root.

A daemon started here keeps its images in ``~/.cache/venta-toolchain/docker`` (``VENTA_DOCKER_DATA_ROOT``
overrides it), so built layers and the base image survive between runs; its socket and runtime state
live in a temp dir. It dies with the test process (SIGTERM from the kernel if pytest dies), and it
changes nothing of the machine's network: no default bridge, no iptables rules, no IP forwarding
(the tests' containers sit on an internal network, builds use the host's network).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.locks import exclusive

DATA_ROOT = Path(
    os.environ.get("VENTA_DOCKER_DATA_ROOT", Path.home() / ".cache" / "venta-toolchain" / "docker")
)
_PR_SET_PDEATHSIG = 1


class DockerUnavailable(RuntimeError):
    """No daemon answers and none can be started here (what to do is in the message)."""


def _client() -> str | None:
    # Debian's client first: it is the one installed with the daemon by scripts/setup.sh, and a
    # different client sends the build context differently, which misses the layer cache.
    return shutil.which("docker", path=f"/usr/bin:{os.environ.get('PATH', '')}")


@dataclass(frozen=True)
class Docker:
    """The docker command bound to one daemon."""

    cli: str
    host: str  # the DOCKER_HOST the commands use
    started_here: bool

    def __call__(
        self, *args: str, timeout: float = 600, check: bool = True, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS``; ``env`` adds to the client's environment (``--env NAME`` reads it)."""
        done = subprocess.run(
            [self.cli, *args],
            env={**os.environ, **(env or {}), "DOCKER_HOST": self.host},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])} ... failed ({done.returncode}):\n{done.stderr}")
        return done

    def inspect(self, *names: str, kind: str = "container") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self(kind, "inspect", *names).stdout)
        return found

    def exists(self, kind: str, name: str) -> bool:
        return self(kind, "inspect", name, check=False).returncode == 0

    def answers(self) -> bool:
        try:
            return self("version", "--format", "{{.Server.Version}}", timeout=10, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def _term_with_parent() -> None:
    # SIGTERM, not SIGKILL: dockerd then stops its containers and its containerd before it exits.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _data_root_lock(timeout: float = 900) -> contextlib.AbstractContextManager[None]:
    """Two daemons on one data root would corrupt it: a second test run waits for the first."""
    lock = DATA_ROOT.parent / f"{DATA_ROOT.name}.lock"
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    return exclusive(
        lock, timeout, lambda: DockerUnavailable(f"{DATA_ROOT} stayed in use by another test run")
    )


@contextlib.contextmanager
def _started_daemon(cli: str) -> Iterator[Docker]:
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise DockerUnavailable(
            "no Docker daemon answers and none can be started here: dockerd runs as root and comes "
            "with Debian's docker.io (`bash scripts/setup.sh` installs it)"
        )
    with _data_root_lock(), tempfile.TemporaryDirectory(prefix="venta-dockerd-") as run_dir:
        docker = Docker(cli, f"unix://{run_dir}/docker.sock", started_here=True)
        with open(Path(run_dir) / "dockerd.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    dockerd,
                    f"--host={docker.host}",
                    f"--data-root={DATA_ROOT}",
                    f"--exec-root={run_dir}/exec",
                    f"--pidfile={run_dir}/dockerd.pid",
                    "--bridge=none",
                    "--iptables=false",
                    "--ip-forward=false",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_term_with_parent,
            )
            try:
                deadline = time.monotonic() + 60
                while not docker.answers():
                    if proc.poll() is not None or time.monotonic() > deadline:
                        tail = (Path(run_dir) / "dockerd.log").read_text(errors="replace")[-3000:]
                        raise DockerUnavailable(f"dockerd did not start (exit {proc.poll()}):\n{tail}")
                    time.sleep(0.2)
                yield docker
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                _unmount_below(run_dir)


def _unmount_below(directory: str) -> None:
    """dockerd leaves its default network namespace mounted in the exec root; the temp dir can only
    go once it is unmounted."""
    with open("/proc/self/mountinfo") as mounts:
        points = [line.split()[4] for line in mounts if line.split()[4].startswith(f"{directory}/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)


@contextlib.contextmanager
def docker_daemon() -> Iterator[Docker]:
    """The daemon of ``DOCKER_HOST`` or ``/var/run/docker.sock`` when one answers, else one started here
    (and stopped on exit)."""
    cli = _client()
    if cli is None:
        raise DockerUnavailable("no docker command: `bash scripts/setup.sh` installs Debian's docker.io")
    running = Docker(cli, os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), started_here=False)
    if running.answers():
        yield running
        return
    with _started_daemon(cli) as docker:
        yield docker
