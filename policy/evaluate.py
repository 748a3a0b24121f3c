"""Runs the pack in-process the way the engine does: per-stack config, enforcement levels, and the
pulumi_policy validation args built by hand. Used by the tests and by anyone checking captured
resources without the Pulumi CLI."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.model import Resource, as_map
from policy.pack import build_policies
from policy.registry import RULES_BY_NAME

CONFIG_DIR = Path(__file__).resolve().parent / "config"
LEVELS = ("advisory", "mandatory", "disabled")
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "integer": int,
    "number": (int, float),
    "string": str,
    "array": list,
    "object": dict,
    "boolean": bool,
}


class PolicyConfigError(ValueError):
    """A policy config file names an unknown rule, property or level, or gives a wrong type."""


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    message: str
    urn: str | None


def load_config(path: Path | str) -> dict[str, Any]:
    """Reads and checks a `--policy-pack-config` file; errors name the key and what is allowed."""
    config = json.loads(Path(path).read_text())
    if not isinstance(config, dict):
        raise PolicyConfigError(f"{path}: expected a JSON object of policy name -> settings")
    for name, value in config.items():
        _check_entry(str(path), name, value)
    return config


def _check_entry(path: str, name: str, value: Any) -> None:
    if name != "all" and name not in RULES_BY_NAME:
        raise PolicyConfigError(f"{path}: unknown policy '{name}'; allowed: all, {', '.join(RULES_BY_NAME)}")
    settings = value if isinstance(value, dict) else {"enforcementLevel": value}
    level = settings.get("enforcementLevel", "mandatory")
    if level not in LEVELS:
        raise PolicyConfigError(f"{path}: {name}.enforcementLevel is {level!r}; allowed: {', '.join(LEVELS)}")
    schema = RULES_BY_NAME[name].schema() if name != "all" else {}
    for key, given in settings.items():
        if key == "enforcementLevel":
            continue
        if key not in schema:
            raise PolicyConfigError(
                f"{path}: {name}.{key} is not a setting of this policy; allowed: "
                f"{', '.join(schema) or 'none'}"
            )
        expected = _JSON_TYPES[schema[key]["type"]]
        if not isinstance(given, expected) or isinstance(given, bool) != (schema[key]["type"] == "boolean"):
            raise PolicyConfigError(
                f"{path}: {name}.{key} must be a JSON {schema[key]['type']}, got {given!r}"
            )
    for target, reason in as_map(settings.get("exceptions")).items():
        if target.count("/") != 2 or not isinstance(reason, str) or len(reason.strip()) < 10:
            raise PolicyConfigError(
                f"{path}: {name}.exceptions[{target!r}] must map Kind/namespace/name "
                "to a reason of at least 10 characters"
            )


def stack_config(stack: str) -> dict[str, Any]:
    return load_config(CONFIG_DIR / f"{stack}.json")


def _level(policy: Policy, config: Mapping[str, Any]) -> str:
    entry = config.get(policy.name, config.get("all"))
    if isinstance(entry, dict):
        entry = entry.get("enforcementLevel")
    if entry is None:
        entry = policy.enforcement_level.value if policy.enforcement_level else "advisory"
    return str(entry)


def _settings(policy: Policy, config: Mapping[str, Any]) -> dict[str, Any]:
    entry = config.get(policy.name)
    return {k: v for k, v in entry.items() if k != "enforcementLevel"} if isinstance(entry, dict) else {}


def _options(ignore_changes: Sequence[str] = ()) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        False, list(ignore_changes), None, [], PolicyCustomTimeouts(0, 0, 0), [], None
    )


class _Reporter:
    """Collects what one policy reports, as the engine's report_violation callback would."""

    def __init__(self, findings: list[Finding], policy: str, level: str, urn: str | None = None) -> None:
        self.findings, self.policy, self.level, self.urn = findings, policy, level, urn

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.findings.append(Finding(self.policy, self.level, message, urn or self.urn))


def evaluate(resources: Sequence[Resource], config: Mapping[str, Any] | None = None) -> list[Finding]:
    """Every violation the pack reports over these resources, with the level the config gives it."""
    config = config or {}
    findings: list[Finding] = []
    stack = [
        PolicyResource(r.type, r.props, r.urn, r.name, _options(r.ignore_changes), None, None, [], {})
        for r in resources
    ]
    for policy in build_policies():
        level = _level(policy, config)
        if level == "disabled":
            continue
        settings = _settings(policy, config)
        if isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(stack, settings), _Reporter(findings, policy.name, level))
        elif isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(r.type, r.props, r.urn, r.name, _options(), None, settings)
                policy.validate(args, _Reporter(findings, policy.name, level, r.urn))
    return findings


def mandatory(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "mandatory"]
