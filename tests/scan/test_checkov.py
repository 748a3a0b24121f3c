"""checkov over the rendered dev and prod manifests: no failed check; a skip only as an annotation
on the object with a one-line reason, and every skip listed in docs/policy.md with that reason."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.scan.conftest import REPO, STACKS

CHECKOV = REPO / ".venv-scan" / "bin" / "checkov"
POLICY_DOC = REPO / "docs" / "policy.md"
SKIP_ROW = re.compile(r"^\| `(CKV2?_K8S_\d+)` \| [^|]* \| (.+?) \|$", re.MULTILINE)


def checkov_binary() -> Path:
    if not CHECKOV.exists():
        pytest.fail(
            f"{CHECKOV.relative_to(REPO)} is missing: run `bash scripts/setup.sh` (it installs the "
            "pinned checkov into .venv-scan)"
        )
    return CHECKOV


@pytest.fixture(scope="session")
def checkov_reports(rendered: dict[str, Path]) -> dict[str, dict[str, Any]]:
    binary = checkov_binary()
    runs = {
        stack: subprocess.Popen(
            [
                "nice",
                "-n",
                "10",
                str(binary),
                "-d",
                str(rendered[stack]),
                "--framework",
                "kubernetes",
                "-o",
                "json",
                "--skip-download",
                "--compact",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for stack in STACKS
    }
    reports = {}
    for stack, run in runs.items():
        out, err = run.communicate(timeout=900)
        # checkov exits 1 when a check fails; anything else (or no JSON) is a broken run.
        assert run.returncode in (0, 1), f"checkov {stack} exited {run.returncode}: {err[-2000:]}"
        report = json.loads(out)
        reports[stack] = report[0] if isinstance(report, list) else report
    return reports


def documented_skips() -> dict[str, str]:
    return dict(SKIP_ROW.findall(POLICY_DOC.read_text()))


@pytest.mark.scan
@pytest.mark.parametrize("stack", STACKS)
def test_no_failed_check(
    checkov_reports: dict[str, dict[str, Any]], rendered: dict[str, Path], stack: str
) -> None:
    report = checkov_reports[stack]
    summary = report["summary"]
    failed = [
        f"{c['check_id']} ({c['check_name']}) on {c['resource']}" for c in report["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    assert summary["parsing_errors"] == 0
    # Every rendered object was read and judged: an empty or unreadable directory must not pass.
    assert summary["resource_count"] >= len(list(rendered[stack].glob("*.yaml")))
    assert summary["passed"] > 20 * len(STACKS)


@pytest.mark.scan
@pytest.mark.parametrize("stack", STACKS)
def test_every_skip_has_a_reason_listed_in_the_docs(
    checkov_reports: dict[str, dict[str, Any]], stack: str
) -> None:
    documented = documented_skips()
    problems = []
    for skipped in checkov_reports[stack]["results"]["skipped_checks"]:
        check, reason = skipped["check_id"], (skipped["check_result"].get("suppress_comment") or "").strip()
        where = f"{check} on {skipped['resource']}"
        if len(reason) < 15 or "\n" in reason:
            problems.append(f"{where}: the annotation needs a one-line reason, got {reason!r}")
        elif documented.get(check) != reason:
            problems.append(
                f"{where}: docs/policy.md must list `{check}` with the reason {reason!r} "
                f"(it has {documented.get(check)!r})"
            )
    assert problems == [], "\n".join(problems)


@pytest.mark.scan
def test_docs_list_no_skip_that_is_not_used(checkov_reports: dict[str, dict[str, Any]]) -> None:
    used = {s["check_id"] for report in checkov_reports.values() for s in report["results"]["skipped_checks"]}
    assert set(documented_skips()) <= used, "docs/policy.md lists skips no object carries any more"
