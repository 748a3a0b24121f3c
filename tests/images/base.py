"""The base image the services are built on: the Dockerfile's official Python image when it can be
pulled, else a stand-in made here from Debian's own Python 3.11.

The stand-in is a Debian bookworm root filesystem from ``mmdebstrap`` with Python 3.11, venv and pip,
plus what the official image gives a build: ``python`` on PATH, and the machine's CA bundle so pip
inside the build reaches the package index (through whatever proxy this machine trusts). It is kept
in the daemon under a tag derived from its recipe and that bundle, so a second run reuses it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.images.daemon import Docker

DOCKERFILE = Path(__file__).resolve().parents[2] / "services" / "Dockerfile"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SUITE = "bookworm"
PACKAGES = ("python3.11", "python3.11-venv", "python3-pip", "ca-certificates")
# What the official image's configuration gives every build and container.
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
HOOKS = (
    'ln -s /usr/bin/python3.11 "$1/usr/local/bin/python"',
    f"copy-in {CA_BUNDLE} {CA_BUNDLE.parent}",
)
STAND_IN_REPO = "venta-stand-in/python"


@dataclass(frozen=True)
class BaseImage:
    reference: str
    official: bool

    def describe(self) -> str:
        if self.official:
            return f"the official {self.reference}"
        return f"a stand-in, {self.reference}: Debian {SUITE}'s Python 3.11 ({', '.join(PACKAGES)})"


def official_reference() -> str:
    """The default of the Dockerfile's PYTHON_IMAGE argument: the Dockerfile owns the choice."""
    found = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    if found is None:
        raise AssertionError(f"{DOCKERFILE} has no `ARG PYTHON_IMAGE=<default>` line")
    return found.group(1)


def stand_in_reference() -> str:
    recipe = "\n".join((SUITE, *PACKAGES, *IMPORT_CHANGES, *HOOKS)).encode()
    key = hashlib.sha256(recipe + CA_BUNDLE.read_bytes()).hexdigest()[:16]
    return f"{STAND_IN_REPO}:3.11-{SUITE}-{key}"


def python_base(docker: Docker) -> BaseImage:
    official = official_reference()
    if docker.exists("image", official):
        return BaseImage(official, official=True)
    if docker("pull", "--quiet", official, timeout=300, check=False).returncode == 0:
        return BaseImage(official, official=True)
    stand_in = stand_in_reference()
    if not docker.exists("image", stand_in):
        _make_stand_in(docker, stand_in)
    return BaseImage(stand_in, official=False)


def _make_stand_in(docker: Docker, reference: str) -> None:
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise RuntimeError(
            "the official base cannot be pulled and mmdebstrap is missing to make a stand-in: "
            "run `bash scripts/setup.sh`"
        )
    with tempfile.TemporaryDirectory(prefix="venta-base-") as scratch:
        tarball = Path(scratch) / "base.tar"
        options = ["--quiet", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        options += [f"--customize-hook={hook}" for hook in HOOKS]
        made = subprocess.run(
            [mmdebstrap, *options, SUITE, str(tarball)],
            stdin=subprocess.DEVNULL,  # mmdebstrap reads sources from a stdin that is not a tty
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if made.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed ({made.returncode}):\n{made.stderr[-3000:]}")
        changes = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
        docker("import", *changes, str(tarball), reference, timeout=600)
