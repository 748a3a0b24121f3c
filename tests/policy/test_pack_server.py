"""The real pack: `policy/__main__.py` started as the engine starts it, driven over its gRPC analyzer
interface with the per-stack config the CLI sends for `--policy-pack-config`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from policy.model import Resource
from policy.registry import RULES
from tests.policy import factories as f

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
LEVELS = {"advisory": proto.ADVISORY, "mandatory": proto.MANDATORY, "disabled": proto.DISABLED}


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    # The pack prints its port, then serves until killed; run it from its own folder like the engine.
    server = subprocess.Popen(
        [sys.executable, "-u", "__main__.py"],
        cwd=POLICY_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        errors = server.stderr.read() if server.stderr and not port.isdigit() else ""
        assert port.isdigit(), f"the pack did not start: {port!r} {errors}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        server.kill()
        server.wait(timeout=10)


def configure(stub: Any, stack: str) -> None:
    """What the CLI sends for `--policy-pack-config policy/config/<stack>.json`."""
    config = json.loads((POLICY_DIR / "config" / f"{stack}.json").read_text())
    request = proto.ConfigureAnalyzerRequest()
    for name, entry in config.items():
        settings = entry if isinstance(entry, dict) else {"enforcementLevel": entry}
        properties = struct_pb2.Struct()
        properties.update({k: v for k, v in settings.items() if k != "enforcementLevel"})
        request.policyConfig[name].CopyFrom(
            proto.PolicyConfig(enforcementLevel=LEVELS[settings["enforcementLevel"]], properties=properties)
        )
    stub.Configure(request)


def _struct(props: Any) -> struct_pb2.Struct:
    return json_format.ParseDict(props, struct_pb2.Struct())


def analyze(stub: Any, resource: Resource) -> list[Any]:
    request = proto.AnalyzeRequest(
        type=resource.type, properties=_struct(resource.props), urn=resource.urn, name=resource.name
    )
    return list(stub.Analyze(request).diagnostics)


def analyze_stack(stub: Any, resources: list[Resource]) -> list[Any]:
    items = [
        proto.AnalyzerResource(type=r.type, properties=_struct(r.props), urn=r.urn, name=r.name)
        for r in resources
    ]
    return list(stub.AnalyzeStack(proto.AnalyzeStackRequest(resources=items)).diagnostics)


def test_pack_serves_every_rule(analyzer: Any) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "venta-kubernetes"
    assert [p.name for p in info.policies] == [r.name for r in RULES]
    assert all(p.description for p in info.policies)


def test_compliant_objects_raise_nothing(analyzer: Any) -> None:
    configure(analyzer, "prod")
    stack = f.compliant_stack()
    assert [d.message for r in stack for d in analyze(analyzer, r)] == []
    stack_findings = [d for d in analyze_stack(analyzer, stack) if d.policyName != "scaling-table"]
    assert stack_findings == []


def test_privileged_container_is_mandatory(analyzer: Any) -> None:
    configure(analyzer, "dev")

    def privileged(props: dict[str, Any]) -> None:
        f.first_container(props)["securityContext"]["privileged"] = True

    found = analyze(analyzer, f.with_props(f.deployment(), privileged))
    expected = [("no-privileged-containers", proto.MANDATORY)]
    assert [(d.policyName, d.enforcementLevel) for d in found] == expected
    assert "Deployment 'user-management'" in found[0].message and "fix:" in found[0].message


def test_stack_config_decides_the_level(analyzer: Any) -> None:
    def tag_only(props: dict[str, Any]) -> None:
        f.first_container(props)["image"] = "registry.example/venta/app:1.2.0"

    deployment = f.with_props(f.deployment(), tag_only)
    levels = {}
    for stack in ("dev", "prod"):
        configure(analyzer, stack)
        levels[stack] = [(d.policyName, d.enforcementLevel) for d in analyze(analyzer, deployment)]
    assert levels == {
        "dev": [("image-pinned-by-digest", proto.ADVISORY)],
        "prod": [("image-pinned-by-digest", proto.MANDATORY)],
    }


def test_stack_rules_see_across_objects(analyzer: Any) -> None:
    configure(analyzer, "prod")
    stack = [f.deployment(replicas=3.0), f.hpa(), f.pdb(), f.service(), f.network_policy()]
    found = {d.policyName: d for d in analyze_stack(analyzer, stack)}
    assert "hpa-owns-replicas" in found
    assert found["hpa-owns-replicas"].urn == stack[0].urn
    # The config's minReplicas arrives as a protobuf number (a float) and still applies.
    configure(analyzer, "dev")
    one = [f.deployment("webhooks", replicas=1.0), f.service("webhooks"), f.network_policy("webhooks")]
    assert "min-replicas" not in {d.policyName for d in analyze_stack(analyzer, one)}
