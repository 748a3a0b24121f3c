"""The sequence of stack operations each verb runs, with the Automation API replaced at its boundary."""

import json
from pathlib import Path

import pytest

from tests.delivery.conftest import make_host
from tests.delivery.fakes import RecordingEngine, RecordingStack
from tests.delivery.repo_files import CATALOG_SERVICES
from venta.cli import main
from venta.engine import Output
from venta.host import Host
from venta.project import PolicyPack
from venta.stack_config import IMAGE_BUILD, IMAGE_DIGESTS, IMAGE_TAG, RENDER_DIR, digest_key
from venta.versions import Update


def test_up_without_a_cluster_renders_with_referenced_images(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "dev"], engine=engine, host=host) == 0
    assert engine.stack.operations() == [
        ("set", IMAGE_BUILD, "false"),  # no Docker daemon on this host
        ("up", "venta up dev v1.0.0"),
        ("outputs",),
    ]
    # The render folder reaches the program through the environment, not the stack's file.
    [(_, _, env, _)] = engine.opened
    assert env["VENTA_RENDER_DIR"] == "rendered/dev"
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
    host = make_host(tmp_path, kube_context="kind-venta")
    host = Host(env={**host.env, "DOCKER_HOST": "tcp://127.0.0.1:2375"}, home=host.home)
    engine = RecordingEngine(dev_stack)
    assert main(["up", "dev"], engine=engine, host=host) == 0
    # Against a cluster the update refreshes first, so objects changed behind its back are repaired.
    assert dev_stack.operations() == [("up", "venta up dev v1.0.0", "refresh"), ("outputs",)]
    [(_, _, env, _)] = engine.opened
    assert "VENTA_RENDER_DIR" not in env
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
    project: Path, engine: RecordingEngine, ci_host: Host
) -> None:
    (project / "policy" / "config").mkdir(parents=True)
    (project / "policy" / "config" / "dev.json").write_text("{}")
    main(["deploy", "dev", "v1.1.0"], engine=engine, host=ci_host)
    main(["deploy", "dev", "v1.2.0", "--policy"], engine=engine, host=ci_host)
    assert engine.policies == [
        None,
        PolicyPack(str(project / "policy"), str(project / "policy" / "config" / "dev.json")),
    ]
    engine.stack.name = "prod"  # prod has no config file here: the pack runs with its defaults
    main(["up", "prod", "--policy"], engine=engine, host=ci_host)
    assert engine.policies[-1] == PolicyPack(str(project / "policy"), None)


def write_digests(
    folder: Path, fill: str, services: list[str] = CATALOG_SERVICES
) -> tuple[Path, dict[str, str]]:
    digests = {service: "sha256:" + fill * 64 for service in services}
    path = folder / f"digests-{fill}.json"
    path.write_text(json.dumps(digests))
    return path, digests


def pinning_run(version: str, digests: dict[str, str], message: str) -> list[tuple[str, ...]]:
    """The operations that end a deploy or rollback pinning `digests` with the tag `version`."""
    # The digests set before go first, whatever the new ones name: none may pin another version.
    pins = [("set", digest_key(service), digest) for service, digest in sorted(digests.items())]
    return [
        ("set", IMAGE_TAG, version),
        ("remove", IMAGE_DIGESTS),
        *pins,
        ("preview",),
        ("up", message),
        ("outputs",),
    ]


def test_deploy_with_digests_pins_every_service_with_the_tag(
    project: Path, ci_host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = RecordingStack("prod", config={IMAGE_TAG: "v1.0.0", digest_key("webhooks"): "sha256:" + "0" * 64})
    path, digests = write_digests(project, "c")
    argv = ["deploy", "prod", "v1.1.0", "--digests", str(path)]
    assert main(argv, engine=RecordingEngine(stack), host=ci_host) == 0
    expected = pinning_run("v1.1.0", digests, "venta deploy prod v1.1.0")
    assert stack.operations()[-len(expected) :] == expected
    # What the update ran with, in the shape Pulumi's history keeps (`venta:images` as one object).
    images = json.loads(stack.history_entries[0].config["venta:images"])
    assert (images["tag"], images["digests"]) == ("v1.1.0", digests)
    assert f"images: pinned {len(CATALOG_SERVICES)} digests for v1.1.0" in capsys.readouterr().out


def test_dev_may_pin_some_services_only(project: Path, engine: RecordingEngine, host: Host) -> None:
    path, _ = write_digests(project, "d", ["api-gateway"])
    assert main(["deploy", "dev", "v1.1.0", "--digests", str(path)], engine=engine, host=host) == 0
    pinned = {key: value for key, value in engine.stack.config.items() if key.startswith(IMAGE_DIGESTS)}
    assert pinned == {digest_key("api-gateway"): "sha256:" + "d" * 64}


def test_rollback_restores_the_digests_deployed_with_that_version(
    project: Path, ci_host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = RecordingEngine(RecordingStack("prod", config={IMAGE_TAG: "v0.9.0"}))
    stack = engine.stack
    deployed = {version: write_digests(project, fill) for version, fill in (("v1.0.0", "1"), ("v1.1.0", "2"))}
    for version, (path, _) in deployed.items():
        assert main(["deploy", "prod", version, "--digests", str(path)], engine=engine, host=ci_host) == 0
    first_digests = deployed["v1.0.0"][1]
    stack.calls.clear()
    assert main(["rollback", "prod"], engine=engine, host=ci_host) == 0
    expected = pinning_run("v1.0.0", first_digests, "venta rollback prod v1.0.0")
    assert stack.operations()[-len(expected) :] == expected
    assert json.loads(stack.history_entries[0].config["venta:images"])["digests"] == first_digests
    assert f"images: pinned {len(CATALOG_SERVICES)} digests for v1.0.0" in capsys.readouterr().out


def test_rollback_to_a_version_deployed_without_digests_says_so(
    project: Path, ci_host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = RecordingEngine(RecordingStack("prod", config={IMAGE_TAG: "v0.9.0"}))
    stack = engine.stack
    path, _ = write_digests(project, "3")
    assert main(["deploy", "prod", "v1.0.0"], engine=engine, host=ci_host) == 0
    assert main(["deploy", "prod", "v1.1.0", "--digests", str(path)], engine=engine, host=ci_host) == 0
    assert main(["rollback", "prod", "v1.0.0"], engine=engine, host=ci_host) == 0
    out = capsys.readouterr().out
    assert "images: the history records no digests for v1.0.0; they are referenced by tag only" in out
    assert "images: dropped the digests pinned for v1.1.0" in out
    assert not any(key.startswith(IMAGE_DIGESTS) for key in stack.config)


def test_deploy_merges_a_folder_of_digest_files_one_per_image_job(
    project: Path, engine: RecordingEngine, host: Host
) -> None:
    folder = project / "digests"
    folder.mkdir()
    pins = {"api-gateway": "sha256:" + "a" * 64, "webhooks": "sha256:" + "b" * 64}
    for service, digest in pins.items():
        (folder / f"digest-{service}.json").write_text(json.dumps({service: digest}))
    assert main(["deploy", "dev", "v1.1.0", "--digests", str(folder)], engine=engine, host=host) == 0
    pinned = {key: value for key, value in engine.stack.config.items() if key.startswith(IMAGE_DIGESTS)}
    assert pinned == {digest_key(service): digest for service, digest in pins.items()}
