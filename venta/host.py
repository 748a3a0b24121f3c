"""What this machine offers: a state backend, a kube context, a Docker daemon.

Every check reads a `Host` snapshot instead of the process environment, so tests can describe a
machine without changing the real one.
"""

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# A stack with this profile is never run with secrets under an empty passphrase.
PROTECTED_PROFILES = frozenset({"prod"})
EMPTY_PASSPHRASE_REFUSED = """\
venta: refusing to run stack {stack!r} (profile {profile!r}) with an empty passphrase: whoever reads
its state (a file or a bucket) would read its secrets. Nothing was run. Either
  - set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the stack's passphrase, or
  - pass --secrets-provider with a key management URL (awskms://..., gcpkms://...,
    azurekeyvault://..., hashivault://...), or use the Pulumi Cloud backend (`pulumi login`).
"""


@dataclass(frozen=True)
class Host:
    """A snapshot of the environment and home folder that the checks read."""

    env: Mapping[str, str]
    home: Path
    docker_socket: Path = field(default=Path("/var/run/docker.sock"))

    @classmethod
    def current(cls) -> "Host":
        return cls(env=dict(os.environ), home=Path.home())


@dataclass(frozen=True)
class PulumiEnv:
    """Variables the Pulumi CLI runs with, and what they mean for the user."""

    variables: dict[str, str]
    backend: str  # a URL, or a description when the CLI's own login decides
    secrets_provider: str | None  # None: leave the choice to the backend
    notes: list[str]
    # Secrets would be encrypted with an empty passphrase: readable by whoever reads the state.
    empty_passphrase: bool = False
    # The provider the stack file records, when the run asks for another one (it is changed first).
    change_from: str | None = None


def _pulumi_login(host: Host) -> str | None:
    """The backend URL of an existing `pulumi login`, if there is one."""
    if host.env.get("PULUMI_ACCESS_TOKEN"):
        return "https://api.pulumi.com"
    pulumi_home = Path(host.env.get("PULUMI_HOME") or host.home / ".pulumi")
    try:
        credentials = json.loads((pulumi_home / "credentials.json").read_text())
    except (OSError, ValueError):
        return None
    current = credentials.get("current") if isinstance(credentials, dict) else None
    return current if isinstance(current, str) and current else None


def has_passphrase(host: Host) -> bool:
    """A non-empty passphrase, or a file Pulumi reads it from."""
    return bool(host.env.get("PULUMI_CONFIG_PASSPHRASE") or host.env.get("PULUMI_CONFIG_PASSPHRASE_FILE"))


def pulumi_env(host: Host, chosen: str | None = None, recorded: str | None = None) -> PulumiEnv:
    """State in a local folder unless the user chose a backend. Secrets: `chosen` (--secrets-provider),
    else what the stack file `recorded`, else the Pulumi Cloud's own key or a passphrase."""
    variables: dict[str, str] = {}
    notes: list[str] = []
    backend = host.env.get("PULUMI_BACKEND_URL") or _pulumi_login(host)
    if not backend:
        state_dir = host.home / ".venta" / "state"
        backend = f"file://{state_dir}"
        variables["PULUMI_BACKEND_URL"] = backend
        notes.append(f"state: local files in {state_dir} (PULUMI_BACKEND_URL or `pulumi login` changes it)")
    else:
        notes.append(f"state: {backend}")
    # The Pulumi Cloud keeps its own secrets key; every other backend uses a passphrase.
    default = None if backend.startswith("https://") else "passphrase"
    provider = chosen or recorded or default
    empty = provider == "passphrase" and not has_passphrase(host)
    # Changing away from a passphrase decrypts with it first, so the (empty) passphrase is passed then too.
    if (empty or recorded == "passphrase") and not has_passphrase(host):
        variables["PULUMI_CONFIG_PASSPHRASE"] = ""
    if empty:
        notes.append(
            "secrets: passphrase provider with an empty passphrase "
            "(set PULUMI_CONFIG_PASSPHRASE, or pass --secrets-provider)"
        )
    elif provider not in (None, "passphrase"):
        notes.append(f"secrets: {provider}")
    variables.setdefault("PULUMI_SKIP_UPDATE_CHECK", host.env.get("PULUMI_SKIP_UPDATE_CHECK", "true"))
    # The program is the source of truth: the kubernetes provider overrides fields someone else took
    # over (`kubectl scale`) instead of failing on the conflict. The provider option
    # `enablePatchForce` says the same; the variable also reaches provider builds that predate it.
    variables.setdefault("PULUMI_K8S_ENABLE_PATCH_FORCE", "true")
    change_from = recorded if chosen and recorded and chosen != recorded else None
    return PulumiEnv(
        variables=variables,
        backend=backend,
        secrets_provider=provider,
        notes=notes,
        empty_passphrase=empty,
        change_from=change_from,
    )


def _kubeconfig_paths(host: Host) -> list[Path]:
    listed = [Path(p) for p in host.env.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [host.home / ".kube" / "config"]


def kube_context(host: Host) -> str | None:
    """The current kube context, if the kubeconfig names one that it also defines.

    Files merge as kubectl merges them: the first `current-context` wins, contexts add up.
    """
    current: str | None = None
    contexts: set[str] = set()
    for path in _kubeconfig_paths(host):
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        current = current or doc.get("current-context") or None
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                contexts.add(entry["name"])
    return current if current in contexts else None


def docker_daemon(host: Host) -> bool:
    """Whether a Docker daemon answers, which building images needs even for a preview."""
    if host.env.get("DOCKER_HOST"):
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(str(host.docker_socket))
        except OSError:
            return False
    return True
