"""Per-stack policy config: prod is the pack's strict default, dev only relaxes, bad files fail loudly."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from policy.evaluate import CONFIG_DIR, PolicyConfigError, evaluate, load_config, stack_config
from policy.registry import RULES
from tests.policy import factories as f

RANK = {"disabled": 0, "advisory": 1, "mandatory": 2}
POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


def _level(config: dict[str, object], name: str, default: str) -> str:
    entry = config.get(name, default)
    return str(entry.get("enforcementLevel", default) if isinstance(entry, dict) else entry)


def test_prod_config_spells_out_the_pack_defaults() -> None:
    prod = stack_config("prod")
    assert set(prod) == {r.name for r in RULES}
    for rule in RULES:
        assert _level(prod, rule.name, "?") == rule.level, rule.name
        entry = prod[rule.name]
        for key, value in entry.items() if isinstance(entry, dict) else ():
            if key not in ("enforcementLevel", "exceptions"):
                assert value == rule.defaults()[key], (rule.name, key)


def test_dev_is_never_stricter_than_prod_and_prod_is_stricter_somewhere() -> None:
    dev, prod = stack_config("dev"), stack_config("prod")
    relaxed = []
    for rule in RULES:
        dev_rank, prod_rank = (RANK[_level(c, rule.name, rule.level)] for c in (dev, prod))
        assert dev_rank <= prod_rank, rule.name
        if dev_rank < prod_rank:
            relaxed.append(rule.name)
    assert {"image-pinned-by-digest", "spread-across-nodes", "scaling-table"} <= set(relaxed)
    assert dev["min-replicas"]["minReplicas"] < prod["min-replicas"]["minReplicas"]


def test_the_same_stack_passes_dev_and_fails_prod() -> None:
    def tag_only(props: dict[str, Any]) -> None:
        f.first_container(props)["image"] = "registry.example/venta/app:1.2.0"

    stack = [f.with_props(r, tag_only) if r.kind == "Deployment" else r for r in f.compliant_stack()]
    dev = evaluate(stack, stack_config("dev"))
    prod = evaluate(stack, {**stack_config("prod"), "scaling-table": "disabled"})
    assert [x.policy for x in dev if x.level == "mandatory"] == []
    assert {x.policy for x in prod if x.level == "mandatory"} == {"image-pinned-by-digest"}


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"no-such-rule": "mandatory"}, "unknown policy 'no-such-rule'"),
        ({"memory-limit": "loud"}, "memory-limit.enforcementLevel is 'loud'"),
        ({"min-replicas": {"minReplicas": "two"}}, "min-replicas.minReplicas must be a JSON integer"),
        ({"min-replicas": {"minReplica": 2}}, "min-replicas.minReplica is not a setting"),
        ({"memory-limit": {"exceptions": {"Deployment/venta/x": "ok"}}}, "reason of at least 10 characters"),
    ],
)
def test_bad_config_fails_naming_the_key(tmp_path: Path, content: dict[str, object], named: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(PolicyConfigError, match=named.replace(".", r"\.").replace("(", r"\(")):
        load_config(path)


def test_exception_in_config_silences_one_object_only() -> None:
    one = f.statefulset("postgres", 1.0)
    extra = [f.service("postgres"), f.network_policy("postgres"), f.secret("postgres")]
    stack = [*f.compliant_stack(), one, *extra]
    reason = "single-writer primary; reads go to the replica"
    config = {
        "min-replicas": {"exceptions": {"StatefulSet/venta/postgres": reason}},
        "scaling-table": "disabled",
    }
    assert [x for x in evaluate(stack, config) if x.level == "mandatory"] == []
    config["min-replicas"]["exceptions"] = {"StatefulSet/venta/redis": reason}  # type: ignore[index]
    assert {x.policy for x in evaluate(stack, config) if x.level == "mandatory"} == {"min-replicas"}


def test_config_files_are_valid() -> None:
    for path in sorted(CONFIG_DIR.glob("*.json")):
        load_config(path)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_policy_never_imports_what_it_judges() -> None:
    for path in POLICY_DIR.rglob("*.py"):
        judged = {m for m in _imports(path) if m.split(".")[0] in ("infra", "stacks", "services")}
        assert not judged, f"{path} imports {judged}"


def test_only_main_builds_the_pack() -> None:
    # Constructing a PolicyPack starts a server and never returns: nothing importable may do it.
    builders = [p.name for p in POLICY_DIR.rglob("*.py") if "PolicyPack(" in p.read_text()]
    assert builders == ["__main__.py"]
