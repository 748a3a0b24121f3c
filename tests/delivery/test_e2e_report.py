"""The test command's e2e check reads pytest's JUnit report: skipped or missing e2e tests fail it."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("e2e_ran", REPO / "scripts" / "e2e_ran.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def junit(tmp_path: Path, *cases: str) -> Path:
    path = tmp_path / "report.xml"
    path.write_text(f'<testsuites><testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>')
    return path


def case(classname: str, name: str, outcome: str = "") -> str:
    inner = {"skipped": '<skipped message="not built"/>', "failed": '<failure message="x"/>'}.get(outcome, "")
    return f'<testcase classname="{classname}" name="{name}">{inner}</testcase>'


@pytest.fixture
def e2e_dir(tmp_path: Path) -> Path:
    """A tests folder whose required suites hold tests/e2e/test_engine.py, test_cluster.py,
    tests/images/test_images.py and tests/node/test_node.py."""
    tests = tmp_path / "tests"
    suites = {"e2e": ("test_engine", "test_cluster"), "images": ("test_images",), "node": ("test_node",)}
    for suite, modules in suites.items():
        (tests / suite).mkdir(parents=True)
        for module in modules:
            (tests / suite / f"{module}.py").write_text("")
    return tests


def test_every_e2e_file_run_and_passed_is_accepted(
    tmp_path: Path, e2e_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = junit(
        tmp_path,
        case("tests.e2e.test_engine", "test_up[dev]"),
        case("tests.e2e.test_cluster", "test_rollout"),
        case("tests.images.test_images", "test_probes_pass"),
        case("tests.node.test_node", "test_pods_run"),
        case("tests.services.test_x", "test_skipped_elsewhere", "skipped"),  # not a required suite
    )
    assert load_checker().main(["e2e_ran.py", str(report)], e2e_dir) == 0
    assert "e2e: 4 passed, 0 skipped of 4 e2e and image tests" in capsys.readouterr().out


def test_a_skipped_e2e_test_fails_the_run(
    tmp_path: Path, e2e_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = junit(
        tmp_path,
        case("tests.e2e.test_engine", "test_up[dev]", "skipped"),
        case("tests.e2e.test_cluster", "test_rollout"),
        case("tests.images.test_images", "test_probes_pass"),
        case("tests.node.test_node", "test_pods_run"),
    )
    assert load_checker().main(["e2e_ran.py", str(report)], e2e_dir) == 1
    assert "skipped (VENTA_E2E=required): tests.e2e.test_engine::test_up[dev]" in capsys.readouterr().err


def test_an_e2e_file_absent_from_the_report_fails_the_run(
    tmp_path: Path, e2e_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = junit(tmp_path, case("tests.e2e.test_engine", "test_up[dev]"))
    assert load_checker().main(["e2e_ran.py", str(report)], e2e_dir) == 1
    err = capsys.readouterr().err
    assert "missing from the report: tests/e2e/test_cluster.py" in err
    assert "missing from the report: tests/images/test_images.py" in err
    assert "missing from the report: tests/node/test_node.py" in err
