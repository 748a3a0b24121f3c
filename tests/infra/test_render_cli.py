"""`python -m infra.render`: one YAML file per object, a summary table, a clear error for bad settings."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from infra.render import CapturedStack, capture_stack, to_manifests
from infra.render.__main__ import main, write


def test_render_prod_writes_valid_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prod_stack: CapturedStack
) -> None:
    (tmp_path / "999-stale.yaml").write_text("kind: Leftover\n")
    assert main(["prod", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.yaml"))
    documents = [yaml.safe_load(f.read_text()) for f in files]
    count = len(to_manifests(prod_stack))
    assert len(documents) == count and all(d["kind"] != "Leftover" for d in documents)
    assert files[0].name == "000-namespace-venta-prod.yaml"
    text = "".join(f.read_text() for f in files)
    assert "FAKE" not in text and "<redacted>" in text and "10001.0" not in text
    out = capsys.readouterr().out
    rows = {
        line.split()[1]: line for line in out.splitlines() if line.startswith(("Deployment", "StatefulSet"))
    }
    assert "3-10 (HPA)" in rows["geolocation"] and "ghcr.io/venta/geolocation:0.1.0" in rows["geolocation"]
    assert rows["nats"].split()[2] == "3" and "nats:2.10.22-alpine" in rows["nats"]
    # The command validates what it wrote (the infra tests hold the validator to the schema).
    assert f"{count} objects written" in out and "schema (Kubernetes 1.31, strict): valid" in out


def test_render_with_an_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = 'venta:images={"registry": "localhost:5000/v", "tag": "t1"}'
    assert main(["dev", "--out", str(tmp_path), "--set", images]) == 0
    assert "localhost:5000/v/webhooks:t1" in capsys.readouterr().out


def test_bad_settings_exit_2_with_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = 'venta:services={"geolocation": {"replicas": 0, "logLevel": "LOUD"}}'
    assert main(["dev", "--out", str(tmp_path), "--set", bad]) == 2
    err = capsys.readouterr().err
    assert "services.geolocation.replicas: given 0; allowed at least 1" in err
    assert 'services.geolocation.logLevel: given "LOUD"' in err
    assert not list(tmp_path.glob("*.yaml"))


def test_encrypted_stack_values_get_a_stand_in_under_mocks(tmp_path: Path) -> None:
    from infra.render import capture

    stack_file = tmp_path / "Pulumi.qa.yaml"
    stack_file.write_text(
        "config:\n"
        "  venta:profile: dev\n"
        "  venta:images: {registry: ghcr.io/venta, tag: '1.0'}\n"
        "  venta:gateway: {host: qa.example.com}\n"
        "  venta:secrets:\n"
        "    redisPassword: {secure: v1:AAAABBBBCCCC}\n"
        "    jwtSigningSeed: {secure: v1:DDDDEEEEFFFF}\n"
    )
    values = capture.stack_config("qa", root=tmp_path)
    secrets = json.loads(values["venta:secrets"])
    assert "v1:" not in values["venta:secrets"] and len(base64.b64decode(secrets["jwtSigningSeed"])) == 32
    captured = capture.capture_stack("qa", root=tmp_path)
    assert captured.outputs["namespace"] == "venta-qa"
    url = captured.by_name("venta-api-gateway-secret").inputs["stringData"]["value"]["REDIS_URL"]
    assert secrets["redisPassword"] in url or quote(secrets["redisPassword"], safe="") in url


def test_bad_settings_stop_the_program_before_any_resource() -> None:
    from infra.render import capture
    from stacks import SettingsError

    registered: list[str] = []
    original = capture._Mocks.new_resource

    def spy(self: Any, args: Any) -> Any:
        registered.append(args.name)
        return original(self, args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(capture._Mocks, "new_resource", spy)
        with pytest.raises(SettingsError) as caught:
            capture.capture_stack("prod", {"venta:nats": '{"replicas": 4}', "venta:namespace": "Prod"})
    assert [str(p) for p in caught.value.problems] == [
        "namespace: given \"Prod\"; allowed a DNS label: lower-case letters, digits and '-', at most 63",
        "nats.replicas: given 4; allowed one of 1, 3 or 5",
    ]
    assert registered == []


def test_renders_are_byte_identical_run_to_run(tmp_path: Path, dev_stack: CapturedStack) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write(to_manifests(dev_stack), first)
    write(to_manifests(capture_stack("dev")), second)  # a second evaluation of the same program
    names = sorted(p.name for p in first.glob("*.yaml"))
    assert names == sorted(p.name for p in second.glob("*.yaml"))
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    head = (first / names[0]).read_text().splitlines()[:3]
    assert head == ["apiVersion: v1", "kind: Namespace", "metadata:"]
