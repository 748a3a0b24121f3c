"""What the node leaves on the host and how it is taken away: one node per machine at a time (a
lock), mounts below the node's state, container shims, and the pods' cgroups.

A run that ends normally removes all of it; a run that was killed leaves container processes
(their shims outlive containerd by design), mounts and cgroups, which the next run removes before
it starts, identified by this node's own socket path and cgroup root, never by a process name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.locks import exclusive

CGROUP_ROOT = Path("/sys/fs/cgroup")


def machine_lock(path: Path, timeout: float = 1800) -> contextlib.AbstractContextManager[None]:
    """The node's network names and addresses are fixed: a second run on this machine waits."""
    return exclusive(path, timeout, lambda: RuntimeError(f"{path} stayed locked by another test run"))


def mounts_below(directory: Path) -> list[str]:
    with open("/proc/self/mountinfo") as mounts:
        points = [line.split()[4] for line in mounts]
    inside = str(directory)
    return [p for p in points if p == inside or p.startswith(f"{inside}/")]


def unmount_below(directory: Path) -> None:
    """Unmount everything at or below ``directory``, deepest first."""
    for point in sorted(mounts_below(directory), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)


def shared_mount(directory: Path) -> None:
    """Make ``directory`` a mount point of its own peer group, so mounts made below it in another
    mount namespace (the kubelet's) show here too (containerd mounts volumes from here)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    subprocess.run(["mount", "--make-shared", str(directory)], check=True)


def shims_of(socket: Path) -> list[int]:
    """Container shims started by the containerd listening on ``socket``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(socket).encode() in argv:
            found.append(int(entry.name))
    return found


def kill_shims(socket: Path) -> None:
    for pid in shims_of(socket):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def processes_in_cgroups(name: str) -> list[int]:
    pids: set[int] = set()
    for tasks in CGROUP_ROOT.glob(f"*/{name}/**/tasks"):
        with contextlib.suppress(OSError):
            pids.update(int(line) for line in tasks.read_text().split())
    return sorted(pids)


def remove_cgroups(name: str) -> None:
    """The pods' cgroups (v1: one tree per controller), once no process is left in them."""
    for controller in CGROUP_ROOT.iterdir():
        tree = controller / name
        if not tree.is_dir():
            continue
        for directory in sorted(
            (d for d in tree.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            tree.rmdir()


def make_cgroups(name: str) -> None:
    """The root of the pods' cgroups in every v1 hierarchy (the kubelet requires it to exist); a
    new cpuset starts with no CPUs or memory nodes, so it gets the machine's."""
    for controller in CGROUP_ROOT.iterdir():
        if controller.name == "unified" or not controller.is_dir():
            continue
        tree = controller / name
        tree.mkdir(exist_ok=True)
        if controller.name == "cpuset":
            for setting in ("cpuset.cpus", "cpuset.mems"):
                (tree / setting).write_text((controller / setting).read_text())


def clear(state: Path, socket: Path, cgroup_name: str) -> None:
    """Remove what a node left behind: its containers (in its cgroups; they outlive their shims),
    its mounts, its state, its cgroups."""
    kill_shims(socket)
    for pid in processes_in_cgroups(cgroup_name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes_in_cgroups(cgroup_name) and time.monotonic() < deadline:
        time.sleep(0.1)
    unmount_below(state)
    shutil.rmtree(state, ignore_errors=True)
    remove_cgroups(cgroup_name)
