"""Fails unless pytest's JUnit report shows every e2e test run and passed (none skipped, none missing).

The e2e fixtures skip when a toolchain is absent; this reads the runner's own report instead of
trusting each fixture, so an e2e suite that silently stopped running fails the test command.
Usage: python scripts/e2e_ran.py REPORT.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

E2E_PREFIX = "tests.e2e."
E2E_DIR = Path(__file__).resolve().parents[1] / "tests" / "e2e"


_OUTCOMES = (("error", "error"), ("failure", "failed"), ("skipped", "skipped"))


def e2e_outcomes(report: Path) -> dict[str, str]:
    """Outcome per e2e test id: passed, failed, error or skipped."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        classname = case.get("classname", "")
        if not classname.startswith(E2E_PREFIX):
            continue
        tags = {child.tag for child in case}
        outcome = next((name for tag, name in _OUTCOMES if tag in tags), "passed")
        outcomes[f"{classname}::{case.get('name')}"] = outcome
    return outcomes


def _in_module(test: str, module: str) -> bool:
    classname = test.split("::")[0]
    return classname == module or classname.startswith(f"{module}.")


def main(argv: list[str], e2e_dir: Path = E2E_DIR) -> int:
    outcomes = e2e_outcomes(Path(argv[1]))
    skipped = sorted(test for test, outcome in outcomes.items() if outcome == "skipped")
    passed = sum(outcome == "passed" for outcome in outcomes.values())
    print(f"e2e: {passed} passed, {len(skipped)} skipped of {len(outcomes)} e2e tests in the report")
    problems = [f"skipped (VENTA_E2E=required): {test}" for test in skipped]
    # Every e2e test file must show up in the report: a suite that was not collected is missing.
    for module in sorted(path.stem for path in e2e_dir.glob("test_*.py")):
        if not any(_in_module(test, f"{E2E_PREFIX}{module}") for test in outcomes):
            problems.append(f"missing from the report: tests/e2e/{module}.py")
    for problem in problems:
        print(f"e2e: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
