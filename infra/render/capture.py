"""Run the real `__main__.py` for one stack under Pulumi's mocks and keep every registration.

Random resources return known fake values, so tests can search any output for a generated secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings

PROJECT = "venta"
REPO_ROOT = Path(__file__).resolve().parents[2]
PROGRAM = REPO_ROOT / "__main__.py"
# The marker Pulumi wraps secret values in on the wire.
SECRET_SIG = "4dabf18193072939515e22adb298388d"


@dataclass(frozen=True)
class CapturedResource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    custom: bool
    options: dict[str, Any] = field(default_factory=dict)
    # What a component registered as its outputs (components only).
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def parent(self) -> str:
        return str(self.options.get("parent", ""))


@dataclass(frozen=True)
class CapturedStack:
    stack: str
    config: dict[str, str]
    resources: list[CapturedResource]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]
    # Every value the fake random resources handed out: what must never appear in plain text.
    generated_secrets: frozenset[str]
    # URNs of the objects the program only reads from the cluster (`Resource.get`), never creates.
    reads: tuple[str, ...] = ()

    def of_type(self, type_token: str) -> list[CapturedResource]:
        return [r for r in self.resources if r.type == type_token]

    def by_name(self, name: str) -> CapturedResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


def fake_password(name: str) -> str:
    return "FAKE" + hashlib.sha256(name.encode()).hexdigest()[:28]


def fake_bytes(name: str) -> bytes:
    return hashlib.sha256(b"seed:" + name.encode()).digest()


AUTONAMED = "pulumi.com/autonamed"
# The kubernetes provider replaces a ConfigMap or Secret whose data changes (it treats them as immutable
# unless told otherwise), and a replaced auto-named object gets a new name.
_REPLACED_ON_DATA = ("kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret")
_DATA_FIELDS = ("data", "stringData", "binaryData")


def autoname(logical_name: str, identity: str = "") -> str:
    """What the kubernetes provider names an object without metadata.name: its logical name, a dash and
    8 random hex digits. Here they are derived from the name (and `identity`), so renders diff cleanly."""
    return f"{logical_name}-{hashlib.sha256((logical_name + identity).encode()).hexdigest()[:8]}"


def _with_autoname(type_token: str, logical_name: str, state: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(state.get("metadata") or {})
    if metadata.get("name") or metadata.get("generateName"):
        return state
    identity = ""
    if type_token in _REPLACED_ON_DATA:
        identity = json.dumps({k: state.get(k) for k in _DATA_FIELDS}, sort_keys=True, default=str)
    annotations = {**(metadata.get("annotations") or {}), AUTONAMED: "true"}
    name = autoname(logical_name, identity)
    return {**state, "metadata": {**metadata, "name": name, "annotations": annotations}}


class _Mocks(mocks.Mocks):
    def __init__(self) -> None:
        self.generated: set[str] = set()

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = fake_password(args.name)
            self.generated.add(state["result"])
        elif args.typ == "random:index/randomBytes:RandomBytes":
            raw = fake_bytes(args.name)
            state |= {"base64": base64.b64encode(raw).decode(), "hex": raw.hex()}
            self.generated |= {state["base64"], state["hex"]}
        elif args.typ == "docker:index/image:Image":
            digest = hashlib.sha256(args.name.encode()).hexdigest()
            state["repoDigest"] = f"{args.inputs['imageName'].rsplit(':', 1)[0]}@sha256:{digest}"
        elif args.typ.startswith("kubernetes:") and not args.typ.startswith("pulumi:providers:"):
            state = _with_autoname(args.typ, args.name, state)
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    """Also keeps the resource options (parent, provider, dependsOn, protect, ...) that mocks never see."""

    def __init__(self, fakes: mocks.Mocks) -> None:
        super().__init__(fakes)
        self.options: dict[str, dict[str, Any]] = {}
        self.custom: dict[str, bool] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.registered: list[str] = []
        self.reads: list[str] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.registered.append(response.urn)
        self.options[response.urn] = {
            "parent": request.parent,
            "provider": request.provider,
            "dependsOn": sorted(request.dependencies),
            "protect": request.protect,
            "ignoreChanges": list(request.ignoreChanges),
            "deleteBeforeReplace": request.deleteBeforeReplace,
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
        }
        self.custom[response.urn] = bool(request.custom)
        return response

    def ReadResource(self, request: Any) -> Any:
        # A read (`Resource.get`) looks an existing object up; it creates nothing, so it is kept apart.
        response = super().ReadResource(request)
        self.reads.append(response.urn)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        # What each component passed to register_outputs (the stack's own outputs arrive separately).
        self.outputs[request.urn] = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)


def stack_config(
    stack: str, overrides: Mapping[str, str] | None = None, root: Path = REPO_ROOT
) -> dict[str, str]:
    """`Pulumi.<stack>.yaml` (in `root`, a project folder) as the engine passes it (strings; objects
    as JSON), then the overrides."""
    path = root / f"Pulumi.{stack}.yaml"
    values: dict[str, str] = {}
    if path.exists():
        document = yaml.safe_load(path.read_text()) or {}
        for key, value in (document.get("config") or {}).items():
            value = _stand_in_for_ciphertext(value)
            values[key] = value if isinstance(value, str) else json.dumps(value)
    values.update(overrides or {})
    return values


def _stand_in_for_ciphertext(value: Any) -> Any:
    """`{secure: v1:...}` needs the stack's key to decrypt; under mocks a stand-in takes its place:
    base64 of 32 bytes derived from the ciphertext, valid wherever a password or the seed is expected."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return base64.b64encode(hashlib.sha256(str(value["secure"]).encode()).digest()).decode()
    if isinstance(value, dict):
        return {k: _stand_in_for_ciphertext(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_in_for_ciphertext(v) for v in value]
    return value


def capture_stack(
    stack: str, config: Mapping[str, str] | None = None, root: Path = REPO_ROOT
) -> CapturedStack:
    """Evaluate the program for `stack`; `config` overrides single keys (`{"venta:images": "..."}`);
    `root`: the project folder whose stack file to read (a copy of the project, say)."""
    program = lambda: runpy.run_path(str(PROGRAM), run_name="__main__")  # noqa: E731
    return capture_program(program, stack, config, root)


def capture_program(
    program: Callable[[], object],
    stack: str,
    config: Mapping[str, str] | None = None,
    root: Path = REPO_ROOT,
) -> CapturedStack:
    """Evaluate any program (a component on its own, say) with the stack's config, under mocks."""
    values = stack_config(stack, config, root)
    fakes = _Mocks()
    monitor = _RecordingMonitor(fakes)
    # A fresh loop and root: an earlier asyncio.run() or capture must not leak into this one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(fakes, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(values)
    collected: dict[str, Any] = {}

    def run() -> pulumi.Output[Any]:
        program()
        root = settings.get_root_resource()
        exports = dict(getattr(root, "outputs", {}))
        return pulumi.Output.from_input(_collect(exports, collected))

    pulumi.runtime.test(run)()
    # The engine refuses a program that registers one URN twice; the mocks would silently keep one.
    twice = sorted({urn for urn in monitor.registered if monitor.registered.count(urn) > 1})
    if twice:
        raise ValueError(f"duplicate resource URNs: {twice}")
    resources = [
        CapturedResource(
            type=_type_of(urn),
            name=urn.rsplit("::", 1)[-1],
            urn=urn,
            inputs=dict(reg.state),
            custom=monitor.custom.get(urn, True),
            options=monitor.options.get(urn, {}),
            outputs=monitor.outputs.get(urn, {}),
        )
        for urn, reg in sorted(monitor.resources.items())
        if urn not in monitor.reads
    ]
    return CapturedStack(
        stack=stack,
        config=values,
        resources=resources,
        outputs=collected.get("values", {}),
        secret_outputs=frozenset(collected.get("secret", ())),
        generated_secrets=frozenset(fakes.generated),
        reads=tuple(sorted(monitor.reads)),
    )


async def _collect(exports: dict[str, Any], into: dict[str, Any]) -> None:
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for name, value in exports.items():
        output = pulumi.Output.from_input(value)
        values[name] = await output.future(with_unknowns=True)
        if await output.is_secret():
            secret.add(name)
    into["values"], into["secret"] = values, secret


def _type_of(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]
