"""docs/policy.md and the README stay in step with the pack."""

from __future__ import annotations

from pathlib import Path

from policy.doctable import rule_table
from policy.evaluate import CONFIG_DIR, load_config
from policy.registry import RULES

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "policy.md").read_text()


def test_rule_table_matches_the_rules() -> None:
    assert rule_table() in DOC, "docs/policy.md is stale: paste `.venv/bin/python -m policy.doctable` into it"
    assert len(RULES) >= 25


def test_every_exception_in_force_is_documented() -> None:
    rows = []
    for path in sorted(CONFIG_DIR.glob("*.json")):
        for rule, entry in load_config(path).items():
            for target, reason in (entry.get("exceptions", {}) if isinstance(entry, dict) else {}).items():
                rows.append(f"| {path.stem} | `{rule}` | `{target}` | {reason} |")
    for row in rows:
        assert row in DOC, f"docs/policy.md 'Exceptions in force' lacks: {row}"
    assert ("| none | | | |" in DOC) == (not rows)


def test_readme_explains_how_to_run_the_pack() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Policy", 1)[1].split("\n## ", 1)[0]
    assert "pulumi preview" in section and "--policy-pack policy" in section
    assert "policy/config/prod.json" in section and "docs/policy.md" in section
    assert f" {len(RULES)} rules " in section
