"""Canaries for the private parts of the Pulumi SDK that infra/render relies on: one test each, so a
Pulumi upgrade that moves or changes one fails here by name instead of somewhere in a render.

Public and documented (not watched here): `pulumi.runtime.Mocks`, `MockResourceArgs`, `set_mocks`,
`set_all_config`, `pulumi.runtime.test`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect

import pulumi
import pulumi_kubernetes as k8s
from google.protobuf import struct_pb2
from pulumi.runtime import mocks, rpc, settings

from infra.render.capture import SECRET_SIG, capture_program


def test_mock_monitor_is_a_class_taking_mocks_with_the_two_hooks_capture_overrides() -> None:
    # capture._RecordingMonitor subclasses it and overrides both methods to keep options and outputs.
    assert inspect.isclass(mocks.MockMonitor)
    assert list(inspect.signature(mocks.MockMonitor.__init__).parameters)[1] == "mocks"
    for hook in ("RegisterResource", "RegisterResourceOutputs"):
        assert list(inspect.signature(getattr(mocks.MockMonitor, hook)).parameters)[:2] == ["self", "request"]


def test_mock_monitor_keeps_each_registration_by_urn_with_its_state() -> None:
    # capture reads `monitor.resources[urn].state` for every resource the program registered.
    def program() -> None:
        k8s.core.v1.ConfigMap("canary", metadata={"name": "canary"}, data={"key": "value"})

    captured = capture_program(program, "dev")
    (config_map,) = captured.of_type("kubernetes:core/v1:ConfigMap")
    assert config_map.inputs["data"] == {"key": "value"}
    assert mocks.MockMonitor.ResourceRegistration._fields == ("urn", "id", "state")


def test_register_resource_requests_carry_the_options_capture_records() -> None:
    # capture copies these fields of the RegisterResource request (options mocks never see).
    def program() -> None:
        parent = pulumi.ComponentResource("canary:index:Parent", "parent")
        k8s.core.v1.ConfigMap(
            "child",
            metadata={"name": "child"},
            opts=pulumi.ResourceOptions(parent=parent, protect=True, ignore_changes=["data"]),
        )

    captured = capture_program(program, "dev")
    child = captured.by_name("child")
    assert child.parent.endswith("canary:index:Parent::parent")
    assert child.options["protect"] is True and child.options["ignoreChanges"] == ["data"]
    assert {"provider", "dependsOn", "deleteBeforeReplace", "additionalSecretOutputs"} <= set(child.options)


def test_deserialize_properties_takes_keep_unknowns() -> None:
    # capture turns each component's registered outputs back into Python values with it.
    struct = struct_pb2.Struct()
    struct.update({"host": "postgres", "replicas": 3.0})
    assert rpc.deserialize_properties(struct, keep_unknowns=True) == {"host": "postgres", "replicas": 3.0}


def test_root_resource_lives_in_a_context_variable_and_holds_the_exports() -> None:
    # capture resets `settings.ROOT` before each evaluation and reads the stack's `outputs` afterwards.
    assert isinstance(settings.ROOT, contextvars.ContextVar)

    def program() -> None:
        pulumi.export("answer", 42)
        root = settings.get_root_resource()
        assert root is not None and dict(root.outputs) == {"answer": 42}  # type: ignore[attr-defined]

    captured = capture_program(program, "dev")
    assert captured.outputs == {"answer": 42}


def test_secret_inputs_reach_the_mocks_wrapped_in_the_signature_capture_looks_for() -> None:
    # manifests.clean redacts a value wrapped as {SECRET_SIG: ..., "value": ...}.
    assert rpc._special_sig_key == SECRET_SIG

    def program() -> None:
        k8s.core.v1.Secret(
            "canary", metadata={"name": "canary"}, string_data=pulumi.Output.secret({"k": "v"})
        )

    captured = capture_program(program, "dev")
    wrapped = captured.by_name("canary").inputs["stringData"]
    assert wrapped == {SECRET_SIG: rpc._special_secret_sig, "value": {"k": "v"}}


def test_a_capture_leaves_no_event_loop_state_behind() -> None:
    # capture makes a fresh loop for each run: after one, asyncio.run elsewhere must still work.
    capture_program(lambda: None, "dev")
    assert asyncio.run(asyncio.sleep(0, result="ok")) == "ok"
