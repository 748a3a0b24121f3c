"""Load one stack's settings: profile defaults, then the stack's config on top, validated once.

Only this module reads Pulumi config; everything below receives the resulting `StackSettings`.
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from stacks.model import StackSettings
from stacks.profiles import PROFILES

NAMESPACE = "venta"
# Top-level settings that are plain strings; every other value in the config is read as JSON.
_STRING_KEYS = {"namespace", "profile"}
_SECRET_ROOT = "secrets"
_RESERVED = {"stack"}
# Set (to a folder): the kubernetes provider writes manifests there instead of talking to a cluster.
RENDER_DIR_VARIABLE = "VENTA_RENDER_DIR"


@dataclass(frozen=True)
class Problem:
    path: str
    given: str
    allowed: str

    def __str__(self) -> str:
        return f"{self.path}: given {self.given}; allowed {self.allowed}"


class SettingsError(ValueError):
    """Every problem of one stack's settings, each as `key.path: given <value>; allowed <what>`."""

    def __init__(self, stack: str, problems: list[Problem]) -> None:
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"stack {stack!r} has {len(problems)} invalid setting(s):\n{lines}")


def load(
    stack: str, config: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> StackSettings:
    """Validate `stack`'s settings. `config` maps `venta:<key>` to the string values Pulumi passes;
    None reads the running program's config. `environ` (default: the process's) may hold
    RENDER_DIR_VARIABLE, which `venta` sets to render instead of deploying."""
    raw = _read_pulumi_config() if config is None else dict(config)
    values, problems = _parse(raw)
    _apply_render_dir(values, os.environ if environ is None else environ)
    profile_name = values.get("profile", stack)
    if not isinstance(profile_name, str) or profile_name not in PROFILES:
        path = "profile" if "profile" in values else "stack"
        allowed = f"a stack named after a profile or venta:profile set to one of {', '.join(PROFILES)}"
        raise SettingsError(stack, [*problems, Problem(path, _show(profile_name), allowed)])
    merged = _deep_merge(PROFILES[profile_name], values)
    merged.update(stack=stack, profile=profile_name)
    merged.setdefault("namespace", f"venta-{stack}")
    try:
        settings = StackSettings.model_validate(merged)
    except ValidationError as error:
        problems += [_problem(detail, merged) for detail in error.errors(include_url=False)]
    if problems:
        raise SettingsError(stack, problems)
    return settings


def _apply_render_dir(values: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Render mode for one run: set by `venta` through the environment, so choosing it never
    writes into the committed Pulumi.<stack>.yaml. A renderDir the stack's config names wins."""
    folder = environ.get(RENDER_DIR_VARIABLE, "").strip()
    kubernetes = values.get("kubernetes")
    if folder and (kubernetes is None or isinstance(kubernetes, dict)):
        values["kubernetes"] = {"renderDir": folder, **(kubernetes or {})}


def _read_pulumi_config() -> dict[str, str]:
    import pulumi
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    project_config = pulumi.Config(NAMESPACE)
    found: dict[str, str] = {}
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        value = project_config.get(name) if namespace == NAMESPACE else None
        if value is not None:
            found[key] = value
    return found


def _parse(raw: Mapping[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, text in raw.items():
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue  # other namespaces (kubernetes:, pulumi:) belong to their providers
        if name in _RESERVED:
            problems.append(Problem(name, _show(text), "nothing: it is the stack's name"))
        elif name in _STRING_KEYS:
            values[name] = text
        else:
            try:
                values[name] = json.loads(text)
            except (json.JSONDecodeError, TypeError):
                values[name] = text  # validation reports it with the type that was expected
    return values, problems


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "an object",
    "list_type": "a list",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _problem(detail: Mapping[str, Any], merged: Mapping[str, Any]) -> Problem:
    loc = [str(part) for part in detail["loc"] if part != "[key]"]
    ctx = detail.get("ctx") or {}
    kind = detail["type"]
    given = _show(detail.get("input"))
    if "field" in ctx:
        loc += ctx["field"].split(".")
        given = _show(_lookup(merged, loc))
    path = ".".join(loc) or "(root)"
    if kind == "venta_allowed":
        allowed = ctx["allowed"]
    elif kind == "extra_forbidden":
        allowed = f"no such key; known keys: {', '.join(_known_keys(loc[:-1]))}"
    elif kind == "missing":
        given, allowed = "nothing", "a value: this setting is required"
    elif kind == "literal_error":
        allowed = f"one of {ctx['expected']}"
    elif kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        allowed = f"{'at least' if kind == 'greater_than_equal' else 'at most'} {bound}"
    elif kind == "string_type" and isinstance(detail.get("input"), int | float):
        # YAML reads `tag: 1.10` as the number 1.1: the value must be quoted to stay a string.
        allowed = "a string (quote it in YAML: '1.10', not 1.10)"
    else:
        allowed = _TYPE_WORDS.get(kind, str(detail["msg"]))
    if loc and loc[0] == _SECRET_ROOT:
        given = "<secret>"  # never echo a secret, even a malformed one
    return Problem(path, given, allowed)


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _lookup(tree: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(part)
    return tree


def _known_keys(loc: list[str]) -> list[str]:
    """Accepted keys of the object at `loc`, so a misspelt key gets the right spelling beside it."""
    model: type[BaseModel] | None = StackSettings
    keyed = False  # the previous part was a dict of models: this part is a key (a service name)
    for part in loc:
        if model is None:
            break
        if keyed:
            keyed = False
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        annotation = field.annotation if field else None
        model = _model_in(annotation)
        if model is None and field is not None:
            model = _dict_value_model(annotation)
            keyed = model is not None
    if model is None:
        return []
    return sorted((f.alias or n) for n, f in model.model_fields.items() if n not in _RESERVED | {"profile"})


def _model_in(annotation: Any) -> type[BaseModel] | None:
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is dict:
        return _model_in(typing.get_args(annotation)[1])
    return None
