"""The sequence of stack operations each verb runs, with the Automation API replaced at its boundary."""

from pathlib import Path

import pytest

from tests.delivery.conftest import make_host
from tests.delivery.fakes import RecordingEngine, RecordingStack
from venta.cli import main
from venta.engine import Output
from venta.host import Host
from venta.project import PolicyPack
from venta.stack_config import IMAGE_BUILD, IMAGE_DIGESTS, IMAGE_TAG, RENDER_DIR
from venta.versions import Update


def test_up_without_a_cluster_renders_with_referenced_images(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "dev"], engine=engine, host=host) == 0
    assert engine.stack.operations() == [
        ("set", RENDER_DIR, "rendered/dev"),
        ("set", IMAGE_BUILD, "false"),  # no Docker daemon on this host
        ("up", "venta up dev v1.0.0"),
        ("outputs",),
    ]
    out = capsys.readouterr().out
    assert "no kube context configured: rendering the manifests into rendered/dev/" in out
    assert "rollout: nothing to wait for in render mode" in out


def test_up_uses_a_local_file_backend_and_an_empty_passphrase_by_default(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["up", "dev"], engine=engine, host=host)
    [(root, stack, env, secrets_provider)] = engine.opened
    assert (root, stack, secrets_provider) == (project, "dev", "passphrase")
    assert env["PULUMI_BACKEND_URL"] == f"file://{host.home}/.venta/state"
    assert env["PULUMI_CONFIG_PASSPHRASE"] == ""
    assert f"state: local files in {host.home}/.venta/state" in capsys.readouterr().out


def test_up_with_a_kube_context_deploys_to_the_cluster(
    project: Path, tmp_path: Path, dev_stack: RecordingStack, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_stack.config[RENDER_DIR] = "rendered/dev"  # left from an earlier run without a cluster
    host = make_host(tmp_path, kube_context="kind-venta")
    host = Host(env={**host.env, "DOCKER_HOST": "tcp://127.0.0.1:2375"}, home=host.home)
    assert main(["up", "dev"], engine=RecordingEngine(dev_stack), host=host) == 0
    assert dev_stack.operations() == [("remove", RENDER_DIR), ("up", "venta up dev v1.0.0"), ("outputs",)]
    out = capsys.readouterr().out
    assert "deploying to the cluster of kube context 'kind-venta'" in out
    assert "rollout: complete" in out


def test_up_keeps_a_render_folder_the_stack_already_names(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.stack.config[RENDER_DIR] = "/tmp/e2e/dev"
    main(["up", "dev"], engine=engine, host=host)
    assert ("set", RENDER_DIR, "rendered/dev") not in engine.stack.calls
    assert "rendering the manifests into /tmp/e2e/dev/" in capsys.readouterr().out


def test_deploy_pins_the_version_then_previews_then_updates(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.stack.config[IMAGE_DIGESTS] = '{"api-gateway": "sha256:' + "a" * 64 + '"}'
    assert main(["deploy", "dev", "v1.1.0"], engine=engine, host=host) == 0
    ops = engine.stack.operations()
    assert ops[-5:] == [
        ("set", IMAGE_TAG, "v1.1.0"),
        ("remove", IMAGE_DIGESTS),  # digests belong to the previous tag
        ("preview",),
        ("up", "venta deploy dev v1.1.0"),
        ("outputs",),
    ]
    assert engine.stack.config[IMAGE_TAG] == "v1.1.0"
    out = capsys.readouterr().out
    assert "preview: resources: same 40, update 8" in out


def test_redeploying_the_same_tag_keeps_its_digests(
    project: Path, engine: RecordingEngine, host: Host
) -> None:
    engine.stack.config[IMAGE_DIGESTS] = '{"api-gateway": "sha256:' + "b" * 64 + '"}'
    assert main(["deploy", "dev", "v1.0.0"], engine=engine, host=host) == 0
    assert ("remove", IMAGE_DIGESTS) not in engine.stack.calls
    assert ("up", "venta deploy dev v1.0.0") in engine.stack.calls


def test_deploy_prints_outputs_with_secrets_masked(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.stack.output_values = {
        "gatewayUrl": Output("http://api.venta.local", secret=False),
        "postgresPassword": Output("hunter2-generated", secret=True),
        "services": Output(["api-gateway", "webhooks"], secret=False),
    }
    main(["deploy", "dev", "0a1b2c3"], engine=engine, host=host)
    out = capsys.readouterr().out
    assert "gatewayUrl        http://api.venta.local" in out
    assert "postgresPassword  [secret]" in out
    assert '["api-gateway", "webhooks"]' in out
    assert "hunter2" not in out


def test_a_failed_update_exits_non_zero_with_pulumis_message(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.stack.fail_up_with = "error: update failed\n  kubernetes:apps/v1:Deployment (api-gateway): timeout"
    assert main(["deploy", "dev", "v2.0.0"], engine=engine, host=host) == 1
    captured = capsys.readouterr()
    assert "venta: deploy dev failed:\nerror: update failed" in captured.err
    assert "Deployment (api-gateway): timeout" in captured.err
    assert "rollout: complete" not in captured.out
    assert ("outputs",) not in engine.stack.calls


def test_rollback_returns_to_the_previous_distinct_version_without_building(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three deploys through the command itself; the fake records each in the stack's history.
    for version in ("v1.0.0", "v1.1.0", "v1.1.0"):
        assert main(["deploy", "dev", version], engine=engine, host=host) == 0
    engine.stack.config[IMAGE_BUILD] = "true"
    engine.stack.calls.clear()
    assert main(["rollback", "dev"], engine=engine, host=host) == 0
    assert engine.stack.operations() == [
        ("history",),
        ("set", IMAGE_BUILD, "false"),
        ("set", IMAGE_TAG, "v1.0.0"),
        ("preview",),
        ("up", "venta rollback dev v1.0.0"),
        ("outputs",),
    ]
    assert "rolling dev back to v1.0.0" in capsys.readouterr().out


def test_rollback_never_builds_even_with_a_docker_daemon(
    project: Path, tmp_path: Path, dev_stack: RecordingStack, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_stack.history_entries = [
        Update("update", "succeeded", "venta deploy dev v1.1.0", {IMAGE_TAG: "v1.1.0"}),
        Update("update", "succeeded", "venta deploy dev v1.0.0", {IMAGE_TAG: "v1.0.0"}),
    ]
    base = make_host(tmp_path, kube_context="prod-cluster")
    host = Host(env={**base.env, "DOCKER_HOST": "unix:///run/docker.sock"}, home=base.home)
    assert main(["rollback", "dev", "v1.0.0"], engine=RecordingEngine(dev_stack), host=host) == 0
    assert ("set", IMAGE_BUILD, "false") in dev_stack.calls
    assert "a rollback never rebuilds images" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "history", "message"),
    [
        (["rollback", "dev", "v0.9.0"], ["v1.0.0", "v1.1.0"], "version 'v0.9.0' was never deployed to 'dev'"),
        (["rollback", "dev"], ["v1.0.0", "v1.0.0"], "has only ever run version 'v1.0.0'"),
        (["rollback", "dev"], [], "has no successful deploy in its history"),
    ],
)
def test_rollback_without_a_target_version_stops_before_updating(
    argv: list[str],
    history: list[str],
    message: str,
    project: Path,
    engine: RecordingEngine,
    host: Host,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine.stack.history_entries = [
        Update("update", "succeeded", f"venta deploy dev {v}", {IMAGE_TAG: v}) for v in reversed(history)
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv, engine=engine, host=host)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: venta rollback")
    assert message in err
    assert engine.stack.operations() == [("history",)]


def test_the_policy_pack_runs_only_when_asked_with_the_stacks_config(
    project: Path, engine: RecordingEngine, host: Host
) -> None:
    (project / "policy" / "config").mkdir(parents=True)
    (project / "policy" / "config" / "dev.json").write_text("{}")
    main(["deploy", "dev", "v1.1.0"], engine=engine, host=host)
    main(["deploy", "dev", "v1.2.0", "--policy"], engine=engine, host=host)
    assert engine.policies == [
        None,
        PolicyPack(str(project / "policy"), str(project / "policy" / "config" / "dev.json")),
    ]
    engine.stack.name = "prod"  # prod has no config file here: the pack runs with its defaults
    main(["up", "prod", "--policy"], engine=engine, host=host)
    assert engine.policies[-1] == PolicyPack(str(project / "policy"), None)
