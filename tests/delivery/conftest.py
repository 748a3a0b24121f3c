"""A throwaway Venta project folder and a described machine for the `venta` command's tests."""

from pathlib import Path

import pytest

from tests.delivery.fakes import RecordingEngine, RecordingStack
from venta.host import Host


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with stacks dev and prod, as the working directory."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "Pulumi.yaml").write_text("name: venta\nruntime: python\n")
    for stack in ("dev", "prod"):
        (root / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    monkeypatch.chdir(root)
    return root


def make_host(
    tmp_path: Path, *, pulumi: bool = True, kube_context: str | None = None, passphrase: str = ""
) -> Host:
    """A machine with (or without) a `pulumi` on PATH, a kubeconfig naming `kube_context`, and
    `PULUMI_CONFIG_PASSPHRASE` when `passphrase` is given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if pulumi:
        cli = bin_dir / "pulumi"
        # Answers `pulumi version` only: every other operation goes to the replaced engine.
        cli.write_text('#!/bin/sh\n[ "$1" = version ] && echo v3.274.1 && exit 0\nexit 99\n')
        cli.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    if kube_context:
        (home / ".kube").mkdir()
        (home / ".kube" / "config").write_text(
            f"current-context: {kube_context}\ncontexts:\n- name: {kube_context}\n  context: {{cluster: c}}\n"
        )
    env = {"PATH": str(bin_dir)} | ({"PULUMI_CONFIG_PASSPHRASE": passphrase} if passphrase else {})
    return Host(env=env, home=home, docker_socket=tmp_path / "no-docker.sock")


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return make_host(tmp_path)


@pytest.fixture
def ci_host(tmp_path: Path) -> Host:
    """A machine as CI is: with the stacks' passphrase (prod refuses to run without one)."""
    return make_host(tmp_path, passphrase="from-the-repository-secrets")


@pytest.fixture
def dev_stack() -> RecordingStack:
    return RecordingStack("dev", config={"venta:images.tag": "v1.0.0", "venta:images.build": "true"})


@pytest.fixture
def engine(dev_stack: RecordingStack) -> RecordingEngine:
    return RecordingEngine(dev_stack)
