"""The images the node runs, all made on this machine (nothing can be pulled) and imported into its
containerd: the pod sandbox (pause), the cluster DNS (CoreDNS) and the service images.

pause and CoreDNS are static binaries from scripts/toolchain/build-node.sh, each alone in a
``FROM scratch`` image built by the tests' Docker daemon. Every image goes from Docker to containerd
as a ``docker save`` archive; containerd keeps it labelled with Docker's image id, so a later run
imports only what changed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.images.daemon import Docker

NAMESPACE = "k8s.io"  # the containerd namespace the CRI plugin (the kubelet's view) uses
ID_LABEL = "org.venta.docker-id"
PAUSE = "venta.local/pause:3.10"


@dataclass(frozen=True)
class Ctr:
    """containerd's own client, bound to the node's containerd and the CRI namespace."""

    socket: Path

    def __call__(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args[:3])} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def labels(self) -> dict[str, str]:
        """Image reference -> the Docker image id it was imported from (images this module imported)."""
        found = {}
        for line in self("images", "list").stdout.splitlines()[1:]:
            fields = line.split()
            for label in fields[-1].split(","):
                key, _, value = label.partition("=")
                if key == ID_LABEL:
                    found[fields[0]] = value
        return found

    def remove_containers(self) -> int:
        """Kill and delete every container (a stopped run's pods); returns how many there were."""
        names = self("containers", "list", "--quiet").stdout.split()
        for name in names:
            self("tasks", "kill", "--signal", "SIGKILL", name, check=False)
            self("tasks", "delete", "--force", name, check=False)
            self("containers", "delete", name, check=False)
        return len(names)


def scratch_image(docker: Docker, binary: Path, reference: str) -> None:
    """``binary`` as the only file and the entrypoint of an image without a base."""
    with tempfile.TemporaryDirectory(prefix="venta-scratch-") as context:
        shutil.copy2(binary, Path(context) / binary.name)
        (Path(context) / "Dockerfile").write_text(
            f'FROM scratch\nCOPY {binary.name} /{binary.name}\nENTRYPOINT ["/{binary.name}"]\n'
        )
        docker("build", "--quiet", "--tag", reference, context)


def coredns_reference(node_bin: Path) -> str:
    version = subprocess.run(
        [str(node_bin / "coredns"), "-version"], capture_output=True, text=True, check=True
    ).stdout.split()[0]  # "CoreDNS-1.14.7"
    return f"venta.local/coredns:{version.split('-', 1)[1]}"


def import_images(docker: Docker, ctr: Ctr, references: Mapping[str, str]) -> list[str]:
    """Make containerd hold every ``references`` image (reference -> the Docker image it is); returns
    the references imported now (the others were there already, with the same id)."""
    ids = {ref: docker.inspect(source, kind="image")[0]["Id"] for ref, source in references.items()}
    present = ctr.labels()
    missing = sorted(ref for ref, image_id in ids.items() if present.get(ref) != image_id)
    if not missing:
        return []
    for ref in missing:
        if ref != references[ref]:
            docker("tag", references[ref], ref)
    # The stale images go first, collected synchronously. containerd's unpack reuses a layer's snapshot
    # it finds without holding it; an orphan (left by images a run from another checkout replaced)
    # that the background collector takes meanwhile fails the import ("parent snapshot ... does not
    # exist"). After a synchronous collection the import meets only snapshots that images hold.
    ctr("images", "remove", "--sync", *missing)
    with tempfile.TemporaryDirectory(prefix="venta-images-") as scratch:
        archive = Path(scratch) / "images.tar"
        docker("save", "--output", str(archive), *missing, timeout=900)
        ctr("images", "import", str(archive), timeout=900)
    for ref in missing:
        ctr("images", "label", ref, f"{ID_LABEL}={ids[ref]}")
    return missing
