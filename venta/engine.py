"""The one place that drives Pulumi: the Automation API on the repo's project, behind a small interface.

Everything else in the command talks to `Engine` and `StackOps`; tests replace them with a
recording fake, and the real engine is exercised by the end-to-end tests.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pulumi import automation as auto

from venta.project import PolicyPack
from venta.versions import Update

T = TypeVar("T")


class EngineError(Exception):
    """A Pulumi operation failed; the message is Pulumi's own."""


@dataclass(frozen=True)
class Output:
    value: object
    secret: bool


# Steps that change nothing in the cluster; a refresh step only updates the state.
UNCHANGED_OPS = frozenset({"same", "read", "refresh"})


@dataclass(frozen=True)
class Step:
    """One resource in a preview: what the engine would do to it and which properties differ."""

    op: str  # create, update, replace, delete, ... (pulumi's OpType values)
    type: str  # kubernetes:apps/v1:Deployment
    name: str  # the resource's logical name
    diffs: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return self.op not in UNCHANGED_OPS


@dataclass(frozen=True)
class Finding:
    """A policy violation reported during a preview."""

    policy: str
    level: str  # mandatory, advisory (reported as warning), ...
    message: str
    resource: str  # logical name, or "" for the stack


@dataclass(frozen=True)
class PreviewReport:
    counts: dict[str, int]
    steps: tuple[Step, ...]
    findings: tuple[Finding, ...]
    # Pulumi's message when the preview failed (a mandatory policy violation, say): what was
    # reported until then is kept, so a refused preview still says why in its summary.
    error: str | None = None

    @property
    def changed(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.changes)


class StackOps(Protocol):
    """The operations the command runs on one stack. Config keys are paths (`venta:images.tag`)."""

    name: str

    def get_config(self, key: str) -> str | None: ...

    def set_config(self, key: str, value: str | bool) -> None: ...

    def remove_config(self, key: str) -> None: ...

    def change_secrets_provider(self, provider: str) -> None: ...

    def preview(self, *, refresh: bool = False) -> PreviewReport: ...

    def up(self, message: str, *, refresh: bool = False) -> dict[str, int]: ...

    def history(self) -> list[Update]: ...

    def outputs(self) -> dict[str, Output]: ...


class Engine(Protocol):
    def open_stack(
        self,
        root: Path,
        stack: str,
        env: Mapping[str, str],
        secrets_provider: str | None,
        policy: PolicyPack | None = None,
    ) -> StackOps: ...


def pulumi_message(error: auto.CommandError) -> str:
    """Pulumi's own account of a failure: the Diagnostics it printed (stdout) and its stderr, without
    the warnings that accompany every run (plugins found on PATH, say)."""
    # CommandError keeps only its string form: "\n code: N\n stdout: ...\n stderr: ..."
    head, _, stderr = str(error).partition("\n stderr: ")
    errors = "\n".join(line for line in stderr.strip().splitlines() if not line.startswith("warning: "))
    diagnostics = _diagnostics(head.partition("\n stdout: ")[2])
    found = [text for text in (diagnostics, errors.strip()) if text]
    return "\n".join(dict.fromkeys(found)) or stderr.strip() or "pulumi failed without a message"


def _diagnostics(stdout: str) -> str:
    """The indented block under "Diagnostics:", or failing that every line that reports an error."""
    lines = stdout.splitlines()
    if "Diagnostics:" not in lines:
        return "\n".join(dict.fromkeys(line.strip() for line in lines if "error:" in line))
    block = []
    for line in lines[lines.index("Diagnostics:") + 1 :]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    return "\n".join(block).strip("\n")


def translate_errors(call: Callable[[], T]) -> T:
    try:
        return call()
    except auto.CommandError as error:
        raise EngineError(pulumi_message(error)) from error


def _stream(line: str) -> None:
    # The Automation API hands over each line with its newline stripped.
    print(line, flush=True)


def _logical_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _step(metadata: auto.events.StepEventMetadata) -> Step:
    op = getattr(metadata.op, "value", str(metadata.op))
    # The detailed diff names property paths (spec.replicas); `diffs` only the top-level keys.
    paths = tuple(metadata.detailed_diff or ()) or tuple(metadata.diffs or ())
    return Step(op, metadata.type, _logical_name(metadata.urn), paths)


def _finding(event: auto.events.PolicyEvent) -> Finding:
    resource = _logical_name(event.resource_urn) if event.resource_urn else ""
    return Finding(event.policy_name, event.enforcement_level, event.message.strip(), resource)


def change_counts(op_map: Mapping[Any, int] | None) -> dict[str, int]:
    return {getattr(op, "value", str(op)): count for op, count in (op_map or {}).items()}


class AutomationStack:
    """StackOps on a real `pulumi.automation.Stack`."""

    def __init__(self, stack: auto.Stack, policy: PolicyPack | None = None) -> None:
        self._stack = stack
        # The Automation API's policy arguments: None runs no pack.
        self._packs = [policy.path] if policy else None
        self._pack_configs = [policy.config] if policy and policy.config else None
        self.name = stack.name

    def get_config(self, key: str) -> str | None:
        try:
            return self._stack.get_config(key, path=True).value
        except auto.CommandError:
            return None  # pulumi reports a missing key as an error

    def set_config(self, key: str, value: str | bool) -> None:
        # `config set --path` turns "true" and digit-only strings (a commit id can be one) into
        # booleans and numbers; `--type` keeps what the settings model expects.
        kind, text = ("bool", str(value).lower()) if isinstance(value, bool) else ("string", value)
        workspace = self._stack.workspace
        assert isinstance(workspace, auto.LocalWorkspace)
        args = ["config", "set", "--path", "--type", kind, key, "--stack", self.name]
        args += ["--", text]
        translate_errors(lambda: workspace.pulumi_command.run(args, workspace.work_dir, workspace.env_vars))

    def remove_config(self, key: str) -> None:
        translate_errors(lambda: self._stack.remove_config(key, path=True))

    def change_secrets_provider(self, provider: str) -> None:
        # Re-encrypts the stack's secrets with the new provider (the Automation API has no call for it).
        workspace = self._stack.workspace
        assert isinstance(workspace, auto.LocalWorkspace)
        args = ["stack", "change-secrets-provider", "--stack", self.name, provider]
        translate_errors(lambda: workspace.pulumi_command.run(args, workspace.work_dir, workspace.env_vars))

    def preview(self, *, refresh: bool = False) -> PreviewReport:
        steps: list[Step] = []
        findings: list[Finding] = []

        def collect(event: auto.EngineEvent) -> None:
            if event.resource_pre_event is not None:
                steps.append(_step(event.resource_pre_event.metadata))
            if event.policy_event is not None:
                findings.append(_finding(event.policy_event))

        try:
            result = self._stack.preview(
                on_output=_stream,
                on_event=collect,
                diff=True,
                refresh=refresh,
                policy_packs=self._packs,
                policy_pack_configs=self._pack_configs,
            )
        except auto.CommandError as error:
            return PreviewReport({}, tuple(steps), tuple(findings), error=pulumi_message(error))
        return PreviewReport(change_counts(result.change_summary), tuple(steps), tuple(findings))

    def up(self, message: str, *, refresh: bool = False) -> dict[str, int]:
        result = translate_errors(
            lambda: self._stack.up(
                on_output=_stream,
                message=message,
                refresh=refresh,
                policy_packs=self._packs,
                policy_pack_configs=self._pack_configs,
            )
        )
        return change_counts(result.summary.resource_changes)

    def history(self) -> list[Update]:
        # show_secrets=False: finding versions must not need the passphrase, nor reveal secrets.
        summaries = translate_errors(lambda: self._stack.history(show_secrets=False))
        return [
            Update(
                kind=s.kind,
                result=s.result,
                message=s.message or "",
                config={key: str(value.value) for key, value in s.config.items()},
            )
            for s in summaries
        ]

    def outputs(self) -> dict[str, Output]:
        values = translate_errors(self._stack.outputs)
        return {key: Output(value=v.value, secret=v.secret) for key, v in values.items()}


class AutomationEngine:
    """Opens stacks of the project in `root` with the `pulumi` CLI in `bin_dir` (venta.engine_location)."""

    def __init__(self, bin_dir: Path) -> None:
        # PulumiCommand wants the folder above `bin/pulumi`: every Pulumi install is laid out so.
        if bin_dir.name != "bin":
            raise EngineError(f"the Pulumi CLI must sit in a folder named bin, not {bin_dir}")
        self._root = bin_dir.parent

    def open_stack(
        self,
        root: Path,
        stack: str,
        env: Mapping[str, str],
        secrets_provider: str | None,
        policy: PolicyPack | None = None,
    ) -> StackOps:
        backend = env.get("PULUMI_BACKEND_URL", "")
        if backend.startswith("file://"):
            # The file backend does not create its folder.
            Path(backend.removeprefix("file://")).expanduser().mkdir(parents=True, exist_ok=True)
        try:
            workspace = auto.LocalWorkspace(
                work_dir=str(root),
                env_vars=dict(env),
                secrets_provider=secrets_provider,
                pulumi_command=auto.PulumiCommand(root=str(self._root)),
            )
        except auto.InvalidVersionError as error:
            raise EngineError(f"unsupported pulumi CLI: {error}") from error
        opened = translate_errors(lambda: auto.Stack.create_or_select(stack, workspace))
        return AutomationStack(opened, policy)
