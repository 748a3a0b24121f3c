"""`venta preview` and `venta drift`: what an update would change, for a person and for a PR comment.

A preview runs the program against the stack's committed settings (which hold the deployed
version: a release commits its tag and digests to the stack file), so an unchanged pull request
previews as no change and a one-setting change as exactly that. A drift check is the same preview
after a refresh from the cluster: anything it would change was changed behind Pulumi's back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from venta.engine import EngineError, Finding, PreviewReport, StackOps, Step
from venta.report import changes_line
from venta.target import Say

MANDATORY = "mandatory"


def preview(stack: StackOps, say: Say, *, summary: Path | None = None) -> bool:
    """Preview the stack; True when it passed (no mandatory policy violation)."""
    report = stack.preview()
    passed = report.error is None and not _mandatory(report.findings)
    for line in _change_lines(report.changed):
        say(line)
    say(f"preview: {changes_line(report.counts)}")
    say(f"policy: {_policy_line(report.findings)}")
    if report.error:
        say(f"preview failed:\n{report.error}")
    if summary is not None:
        summary.write_text(preview_markdown(stack.name, report))
        say(f"summary: {summary}")
    return passed


def drift(stack: StackOps, say: Say, *, report_path: Path | None = None) -> bool:
    """Refresh from the cluster, then preview; True when the program would change nothing."""
    report = stack.preview(refresh=True)
    conflicts = field_conflicts(report.error or "")
    if report.error and not conflicts:
        raise EngineError(report.error)
    drifted = report.changed + conflicts
    if drifted:
        say(f"drift: {len(drifted)} resource(s) differ from what the program declares:")
        for line in _change_lines(drifted):
            say(line)
    else:
        say(f"drift: none; {stack.name} is what the program declares")
    if report_path is not None:
        report_path.write_text(drift_markdown(stack.name, drifted))
    return not drifted


# The kubernetes provider applies server-side; a field someone else changed since (`kubectl scale`,
# say) makes its dry run fail with a conflict that names the object, the other manager and the field.
_CONFLICT = re.compile(
    r'"(?P<object>[^"\s]+)" failed to fully initialize.*?conflicts?: conflict with "(?P<manager>[^"]+)"'
    r'(?: with subresource "(?P<subresource>[^"]+)")? using [^:]+: (?P<field>\S+)',
    re.DOTALL,
)


def field_conflicts(error: str) -> tuple[Step, ...]:
    """Drift the engine reported as server-side apply conflicts, one step per object and field."""
    found = []
    for match in _CONFLICT.finditer(error):
        who = match["manager"] + (f" ({match['subresource']})" if match["subresource"] else "")
        found.append(Step("conflict", f"changed by {who}", match["object"], (match["field"].lstrip("."),)))
    return tuple(found)


def _mandatory(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == MANDATORY]


def _policy_line(findings: Sequence[Finding]) -> str:
    mandatory = _mandatory(findings)
    if mandatory:
        return f"{len(mandatory)} mandatory violation(s), the update would be refused"
    return f"passed ({len(findings)} advisory finding(s))" if findings else "passed"


def _change_lines(steps: Sequence[Step]) -> list[str]:
    return [f"  {step.op} {_kind(step.type)} {step.name}{_diffs(step)}" for step in steps]


def _kind(type_token: str) -> str:
    # "kubernetes:apps/v1:Deployment" -> "Deployment"; other types as they are.
    parts = type_token.split(":")
    return parts[2] if len(parts) == 3 and parts[0] == "kubernetes" else type_token


def _diffs(step: Step) -> str:
    return f": {', '.join(step.diffs)}" if step.diffs else ""


def preview_markdown(stack: str, report: PreviewReport) -> str:
    """The pull request comment: the change table and the policy pack's verdict."""
    changed = report.changed
    lines = [f"### `{stack}`: {changes_line(report.counts).removeprefix('resources: ')}", ""]
    if changed:
        lines += ["| change | kind | resource | properties |", "|---|---|---|---|"]
        lines += [
            f"| {s.op} | {_kind(s.type)} | `{s.name}` | {', '.join(f'`{d}`' for d in s.diffs)} |"
            for s in changed
        ]
    else:
        lines.append("No resource would change.")
    if report.error:
        lines += ["", "**The preview failed:**", "", "```", report.error, "```"]
    lines += ["", f"**Policy:** {_policy_line(report.findings)}"]
    lines += [
        f"- {f.level} `{f.policy}` {f'`{f.resource}` ' if f.resource else ''}{f.message}"
        for f in report.findings
    ]
    return "\n".join(lines) + "\n"


def drift_markdown(stack: str, drifted: Sequence[Step]) -> str:
    if not drifted:
        return f"### `{stack}`: no drift\n"
    lines = [f"### `{stack}`: {len(drifted)} resource(s) drifted", ""]
    lines += [f"- {s.op} {_kind(s.type)} `{s.name}`{_diffs(s)}" for s in drifted]
    return "\n".join(lines) + "\n"
