"""The rule table of docs/policy.md, generated from the registry and the stack configs.

`python -m policy.doctable` prints it; a test keeps the doc in step.
"""

from __future__ import annotations

from policy.evaluate import stack_config
from policy.registry import RULES, Rule

BEGIN, END = "<!-- rules:begin (python -m policy.doctable) -->", "<!-- rules:end -->"


def _level(rule: Rule, stack: str) -> str:
    entry = stack_config(stack).get(rule.name, rule.level)
    return str(entry.get("enforcementLevel", rule.level) if isinstance(entry, dict) else entry)


def _settings(rule: Rule) -> str:
    return ", ".join(f"`{key}`" for key in rule.config) or ""


def _row(rule: Rule) -> str:
    cells = [
        f"`{rule.name}`",
        rule.category,
        rule.scope,
        rule.description,
        _settings(rule),
        _level(rule, "prod"),
        _level(rule, "dev"),
    ]
    return "| " + " | ".join(cells) + " |"


def rule_table() -> str:
    header = [
        "| rule | area | scope | what it checks | settings | prod | dev |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join([BEGIN, *header, *(_row(r) for r in RULES), END])


if __name__ == "__main__":
    print(rule_table())
