"""Fails unless pytest's JUnit report shows every test of the suites that need a built toolchain or
a daemon (tests/e2e: the engine and the control plane; tests/images: Docker; tests/node: the real
node) run, none skipped and none missing.

Those fixtures skip when what they need is absent; this reads the runner's own report instead of
trusting each fixture, so a suite that silently stopped running fails the test command.
Usage: python scripts/e2e_ran.py REPORT.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
REQUIRED_SUITES = ("e2e", "images", "node")


_OUTCOMES = (("error", "error"), ("failure", "failed"), ("skipped", "skipped"))


def e2e_outcomes(report: Path, suites: tuple[str, ...] = REQUIRED_SUITES) -> dict[str, str]:
    """Outcome per test id of the required suites: passed, failed, error or skipped."""
    prefixes = tuple(f"tests.{suite}." for suite in suites)
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        classname = case.get("classname", "")
        if not classname.startswith(prefixes):
            continue
        tags = {child.tag for child in case}
        outcome = next((name for tag, name in _OUTCOMES if tag in tags), "passed")
        outcomes[f"{classname}::{case.get('name')}"] = outcome
    return outcomes


def _in_module(test: str, module: str) -> bool:
    classname = test.split("::")[0]
    return classname == module or classname.startswith(f"{module}.")


def main(argv: list[str], tests: Path = TESTS) -> int:
    outcomes = e2e_outcomes(Path(argv[1]))
    skipped = sorted(test for test, outcome in outcomes.items() if outcome == "skipped")
    passed = sum(outcome == "passed" for outcome in outcomes.values())
    print(
        f"e2e: {passed} passed, {len(skipped)} skipped of {len(outcomes)} e2e and image tests in the report"
    )
    problems = [f"skipped (VENTA_E2E=required): {test}" for test in skipped]
    # Every test file of those suites must show up in the report: one not collected is missing.
    for suite in REQUIRED_SUITES:
        for module in sorted(path.stem for path in (tests / suite).glob("test_*.py")):
            if not any(_in_module(test, f"tests.{suite}.{module}") for test in outcomes):
                problems.append(f"missing from the report: tests/{suite}/{module}.py")
    for problem in problems:
        print(f"e2e: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
