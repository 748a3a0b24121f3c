"""Bad arguments print the usage and a clear error before anything runs; delegated verbs pass through."""

import json
from pathlib import Path

import pytest

from tests.delivery.conftest import make_host
from tests.delivery.fakes import RecordingEngine
from tests.delivery.repo_files import CATALOG_SERVICES
from venta.cli import main
from venta.host import Host


def run_expecting_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str], **deps: object) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv, **deps)  # type: ignore[arg-type]
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: venta")
    return err


@pytest.mark.usefixtures("project")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: <command>"),
        (["launch", "dev"], "invalid choice: 'launch'"),
        (["up"], "the following arguments are required: stack"),
        (["up", "staging"], "unknown stack 'staging' (known: dev, prod)"),
        (["up", "dev", "--force"], "unrecognized arguments: --force"),
        (["deploy", "dev"], "the following arguments are required: version"),
        (["deploy", "dev", "1.2"], "malformed version '1.2'"),
        (["deploy", "dev", "latest"], "malformed version 'latest'"),
        (["deploy", "dev", "v1.2.3+build.5"], "malformed version 'v1.2.3+build.5'"),
        (["deploy", "qa", "v1.2.3"], "unknown stack 'qa'"),
        (["rollback", "prod", "ABCDEF1"], "malformed version 'ABCDEF1'"),
        (["render", "nope"], "unknown stack 'nope'"),
    ],
)
def test_bad_arguments_stop_before_the_engine_opens(
    argv: list[str], message: str, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_expecting_usage_error(argv, capsys, engine=engine, host=host)
    assert message in err
    assert engine.opened == []


def test_usage_names_the_verb_that_was_wrong(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    err = run_expecting_usage_error(["deploy", "dev", "v1"], capsys, engine=engine, host=host)
    usage = " ".join(line.strip() for line in err.splitlines()[:2])
    options = "[-h] [--digests FILE] [--policy] [--secrets-provider URL]"
    assert usage == f"usage: venta deploy {options} stack version"
    assert "venta deploy: error: malformed version 'v1'" in err


def every_digest(**changes: object) -> dict[str, object]:
    digests: dict[str, object] = {
        service: "sha256:" + f"{i:x}" * 64 for i, service in enumerate(CATALOG_SERVICES)
    }
    digests.update(changes)
    return {service: digest for service, digest in digests.items() if digest is not None}


@pytest.mark.parametrize(
    ("stack", "content", "message"),
    [
        (
            "dev",
            every_digest(billing="sha256:" + "a" * 64),
            "unknown services 'billing' (known: api-gateway,",
        ),
        ("dev", every_digest(webhooks="sha256:abc"), "malformed digests for 'webhooks': expected 'sha256:'"),
        ("dev", every_digest(geolocation="SHA256:" + "A" * 64), "malformed digests for 'geolocation'"),
        ("dev", every_digest(webhooks=7), "malformed digests for 'webhooks'"),
        ("prod", every_digest(webhooks=None, geolocation=None), "missing: 'geolocation', 'webhooks'"),
        ("dev", ["sha256:" + "a" * 64], "must be a JSON object of service name -> digest"),
        ("dev", {}, "must be a JSON object of service name -> digest"),
        ("dev", "{not json", "is not JSON"),
        ("dev", None, "cannot read the digests file"),
    ],
)
def test_a_bad_digests_file_stops_before_the_engine_opens(
    stack: str,
    content: object,
    message: str,
    project: Path,
    engine: RecordingEngine,
    host: Host,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = project / "digests.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    argv = ["deploy", stack, "v1.2.0", "--digests", str(path)]
    err = run_expecting_usage_error(argv, capsys, engine=engine, host=host)
    assert err.startswith("usage: venta deploy")
    assert message in err
    assert engine.opened == []


def test_a_digests_file_reports_every_problem_at_once(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "digests.json"
    path.write_text(
        json.dumps(every_digest(**{"shop": "sha256:" + "1" * 64, "webhooks": "latest", "real-time": None}))
    )
    err = run_expecting_usage_error(
        ["deploy", "prod", "v1.2.0", "--digests", str(path)], capsys, engine=engine, host=host
    )
    assert "unknown services 'shop'" in err
    assert "malformed digests for 'webhooks'" in err
    assert "missing: 'real-time'" in err


def test_missing_pulumi_cli_says_how_to_get_one_and_runs_nothing(
    project: Path, engine: RecordingEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["up", "dev"], engine=engine, host=make_host(tmp_path, pulumi=False))
    assert rc == 1
    err = capsys.readouterr().err
    assert "no usable Pulumi CLI" in err and "nothing was run" in err
    assert "bash scripts/setup.sh" in err
    assert engine.opened == []


def test_outside_a_venta_project_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: RecordingEngine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Pulumi.yaml").write_text("name: another-project\n")
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr("venta.project.__file__", str(elsewhere / "venta" / "project.py"))
    err = run_expecting_usage_error(["up", "dev"], capsys, engine=engine, host=make_host(tmp_path))
    assert "no Pulumi.yaml of project 'venta'" in err


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for verb in ("up", "deploy", "rollback", "render", "dev"):
        assert f"\n    {verb} " in out


class RecordingRunner:
    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.calls: list[tuple[str, list[str], Path]] = []

    def __call__(self, module: str, args: list[str], root: Path) -> int:
        self.calls.append((module, args, root))
        return self.code


def test_render_delegates_to_the_infra_render_command(project: Path, host: Host) -> None:
    (project / "infra").mkdir()
    (project / "infra" / "render.py").write_text("")
    runner = RecordingRunner(code=3)
    argv = ["render", "prod", "--out", "out/prod", "--set", "venta:namespace=shop"]
    rc = main(argv, host=host, run_module=runner)
    assert rc == 3  # the delegate's exit code is the command's
    # --out is made absolute: the delegate runs in the project folder, not the caller's.
    expected = ["prod", "--out", str(project / "out" / "prod"), "--set", "venta:namespace=shop"]
    assert runner.calls == [("infra.render", expected, project)]


def test_dev_passes_its_arguments_through_to_localdev(project: Path, host: Host) -> None:
    (project / "localdev").mkdir()
    (project / "localdev" / "__main__.py").write_text("")
    runner = RecordingRunner()
    assert main(["dev", "--only", "api-gateway"], host=host, run_module=runner) == 0
    assert runner.calls == [("localdev", ["--only", "api-gateway"], project)]


def test_a_delegate_missing_from_the_checkout_is_reported(
    project: Path, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = RecordingRunner()
    assert main(["dev"], host=host, run_module=runner) == 1
    assert "localdev is not available" in capsys.readouterr().err
    assert runner.calls == []
