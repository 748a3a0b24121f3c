"""Stack secrets: a prod stack never runs under an empty passphrase; `--secrets-provider` picks a KMS."""

from pathlib import Path

import pytest

from tests.delivery.conftest import make_host
from tests.delivery.fakes import RecordingEngine, RecordingStack
from venta.cli import main
from venta.host import Host

KMS = "awskms://alias/venta-prod?region=eu-west-1"


def with_env(host: Host, **env: str) -> Host:
    return Host(env={**host.env, **env}, home=host.home, docker_socket=host.docker_socket)


def refused(argv: list[str], engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv, engine=engine, host=host) == 1
    err = capsys.readouterr().err
    assert engine.opened == [], "the engine must not open a stack it refuses"
    return err


@pytest.mark.parametrize(
    "argv", [["up", "prod"], ["deploy", "prod", "v1.2.0"], ["rollback", "prod"], ["preview", "prod"]]
)
@pytest.mark.parametrize("passphrase", [None, ""])
def test_prod_with_an_empty_passphrase_is_refused_before_anything_runs(
    argv: list[str],
    passphrase: str | None,
    project: Path,
    host: Host,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if passphrase is not None:  # set, but empty, counts as none
        host = with_env(host, PULUMI_CONFIG_PASSPHRASE=passphrase)
    err = refused(argv, RecordingEngine(RecordingStack("prod")), host, capsys)
    assert "refusing to run stack 'prod' (profile 'prod') with an empty passphrase" in err
    assert "PULUMI_CONFIG_PASSPHRASE" in err and "--secrets-provider" in err


def test_a_stack_that_picks_the_prod_profile_is_refused_too(
    project: Path, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.shop-eu.yaml").write_text("config:\n  venta:profile: prod\n")
    err = refused(["up", "shop-eu"], RecordingEngine(RecordingStack("shop-eu")), host, capsys)
    assert "refusing to run stack 'shop-eu' (profile 'prod')" in err


@pytest.mark.parametrize(
    ("env", "argv_extra", "provider"),
    [
        ({"PULUMI_CONFIG_PASSPHRASE": "s3cret"}, [], "passphrase"),
        ({"PULUMI_CONFIG_PASSPHRASE_FILE": "/run/secrets/pulumi"}, [], "passphrase"),
        ({}, ["--secrets-provider", KMS], KMS),
        ({"PULUMI_ACCESS_TOKEN": "pul-token"}, [], None),  # the Pulumi Cloud keeps its own key
    ],
)
def test_prod_runs_with_a_passphrase_a_kms_or_the_pulumi_cloud(
    env: dict[str, str], argv_extra: list[str], provider: str | None, project: Path, host: Host
) -> None:
    engine = RecordingEngine(RecordingStack("prod"))
    assert main(["up", "prod", *argv_extra], engine=engine, host=with_env(host, **env)) == 0
    [(_, _, variables, secrets_provider)] = engine.opened
    assert secrets_provider == provider
    assert "PULUMI_CONFIG_PASSPHRASE" not in variables  # nothing empty is handed to Pulumi


def test_a_kms_the_stack_file_records_is_used_without_the_option(
    project: Path, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.prod.yaml").write_text(f"secretsprovider: {KMS}\nencryptedkey: CiQA\nconfig: {{}}\n")
    engine = RecordingEngine(RecordingStack("prod"))
    assert main(["up", "prod"], engine=engine, host=host) == 0
    assert engine.opened[0][3] == KMS
    assert ("change-secrets-provider", KMS) not in engine.stack.calls
    assert f"secrets: {KMS}" in capsys.readouterr().out


def test_the_option_moves_a_passphrase_stack_to_the_kms_before_the_update(
    project: Path, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.prod.yaml").write_text("encryptionsalt: v1:abc:def\nconfig: {}\n")
    engine = RecordingEngine(RecordingStack("prod", config={"venta:images.tag": "v1.0.0"}))
    assert main(["up", "prod", "--secrets-provider", KMS], engine=engine, host=host) == 0
    [(_, _, variables, secrets_provider)] = engine.opened
    # The old (empty) passphrase still decrypts what is there; the KMS encrypts from then on.
    assert (secrets_provider, variables["PULUMI_CONFIG_PASSPHRASE"]) == (KMS, "")
    operations = engine.stack.operations()
    assert operations[0] == ("change-secrets-provider", KMS)
    assert ("up", "venta up prod v1.0.0") in operations
    assert f"secrets: re-encrypted from passphrase to {KMS}" in capsys.readouterr().out


def test_dev_keeps_running_with_an_empty_passphrase_and_says_so(
    project: Path, engine: RecordingEngine, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "dev"], engine=engine, host=host) == 0
    assert engine.opened[0][2]["PULUMI_CONFIG_PASSPHRASE"] == ""
    out = capsys.readouterr().out
    assert "secrets: passphrase provider with an empty passphrase (set PULUMI_CONFIG_PASSPHRASE" in out


@pytest.mark.parametrize("value", ["awskms:alias/x", "s3://bucket/key", "vault://x", "awskms://"])
def test_an_unknown_secrets_provider_is_a_usage_error(
    value: str, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = RecordingEngine(RecordingStack("prod"))
    with pytest.raises(SystemExit) as exit_info:
        main(["up", "prod", "--secrets-provider", value], engine=engine, host=make_host(tmp_path))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--secrets-provider {value!r} is not passphrase or one of awskms://..." in err
    assert engine.opened == []
