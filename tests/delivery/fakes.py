"""A recording stand-in for `venta.engine`: the Automation API boundary, replaced for fast tests.

It keeps the stack's config in memory and logs every operation in order, so tests can assert the
sequence of stack operations a command runs. Config keys are paths, as with `pulumi config --path`:
reading or removing `venta:images.digests` covers `venta:images.digests["api-gateway"]`, and an update
records the config in Pulumi's history shape (one JSON object per top-level key). The real engine
runs in the end-to-end tests.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from venta.engine import EngineError, Output, PreviewReport
from venta.project import PolicyPack
from venta.versions import Update

# One step of a config path: `.name` or `["quoted name"]`.
_PATH_STEP = re.compile(r'\.?([^.\["]+)|\["([^"]+)"\]')


def _path(key: str) -> list[str]:
    return [plain or quoted for plain, quoted in _PATH_STEP.findall(key)]


def _is_under(key: str, parent: str) -> bool:
    return key.startswith((f"{parent}.", f"{parent}["))


def history_snapshot(config: Mapping[str, str]) -> dict[str, str]:
    """The config as Pulumi's update history keeps it: nested settings as one JSON object per key."""
    nested: dict[str, object] = {}
    for key, value in config.items():
        *parents, leaf = _path(key)
        node = nested
        for step in parents:
            child = node.setdefault(step, {})
            assert isinstance(child, dict), f"{key} under a plain value"
            node = child
        node[leaf] = value
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in nested.items()}


@dataclass
class RecordingStack:
    name: str
    config: dict[str, str] = field(default_factory=dict)
    history_entries: list[Update] = field(default_factory=list)
    output_values: dict[str, Output] = field(default_factory=dict)
    fail_up_with: str | None = None
    calls: list[tuple[str, ...]] = field(default_factory=list)
    # What the next preview reports (steps, policy findings); by default 8 updates of 48.
    next_preview: PreviewReport = field(
        default_factory=lambda: PreviewReport({"same": 40, "update": 8}, (), ())
    )

    def get_config(self, key: str) -> str | None:
        self.calls.append(("get", key))
        if key in self.config:
            return self.config[key]
        children = {k: v for k, v in self.config.items() if _is_under(k, key)}
        return json.dumps(children) if children else None

    def set_config(self, key: str, value: str | bool) -> None:
        text = str(value).lower() if isinstance(value, bool) else value
        self.calls.append(("set", key, text))
        self.config[key] = text

    def remove_config(self, key: str) -> None:
        self.calls.append(("remove", key))
        for stored in [k for k in self.config if k == key or _is_under(k, key)]:
            del self.config[stored]

    def change_secrets_provider(self, provider: str) -> None:
        self.calls.append(("change-secrets-provider", provider))

    def preview(self, *, refresh: bool = False) -> PreviewReport:
        self.calls.append(("preview", "refresh") if refresh else ("preview",))
        return self.next_preview

    def up(self, message: str, *, refresh: bool = False) -> dict[str, int]:
        self.calls.append(("up", message, "refresh") if refresh else ("up", message))
        if self.fail_up_with:
            raise EngineError(self.fail_up_with)
        self.history_entries.insert(0, Update("update", "succeeded", message, history_snapshot(self.config)))
        return {"same": 40, "update": 8}

    def history(self) -> list[Update]:
        self.calls.append(("history",))
        return list(self.history_entries)

    def outputs(self) -> dict[str, Output]:
        self.calls.append(("outputs",))
        return dict(self.output_values)

    def operations(self) -> list[tuple[str, ...]]:
        """The calls that change or run something (reads left out)."""
        return [call for call in self.calls if call[0] != "get"]


@dataclass
class RecordingEngine:
    stack: RecordingStack
    opened: list[tuple[Path, str, dict[str, str], str | None]] = field(default_factory=list)
    policies: list[PolicyPack | None] = field(default_factory=list)

    def open_stack(
        self,
        root: Path,
        stack: str,
        env: Mapping[str, str],
        secrets_provider: str | None,
        policy: PolicyPack | None = None,
    ) -> RecordingStack:
        self.opened.append((root, stack, dict(env), secrets_provider))
        self.policies.append(policy)
        assert stack == self.stack.name, f"opened {stack}, the test prepared {self.stack.name}"
        return self.stack
