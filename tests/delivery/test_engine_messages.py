"""The engine boundary reports Pulumi's own message and its change counts in the command's terms."""

import pytest
from pulumi import automation as auto

from venta.engine import EngineError, change_counts, pulumi_message, translate_errors


def failed(stdout: str, stderr: str) -> auto.CommandError:
    return auto.CommandError(auto.CommandResult(stdout=stdout, stderr=stderr, code=255))


def test_the_message_is_pulumis_stderr_without_the_wrapping() -> None:
    stderr = "error: update failed\n  timeout waiting for rollout\n"
    error = failed("Updating (dev)\n  ... 40 resources\n", stderr)
    assert pulumi_message(error) == "error: update failed\n  timeout waiting for rollout"


# What `pulumi up` printed when a provider plugin was missing (stderr stayed empty).
UP_STDOUT = """\
Updating (dev):
 +  pulumi:pulumi:Stack venta-dev creating (0s)
    pulumi:providers:kubernetes kubernetes **failed** 1 error
Diagnostics:
  pulumi:providers:kubernetes (kubernetes):
    error: no resource plugin 'pulumi-resource-kubernetes' found in the workspace at version v4.34.2

Resources:
    + 2 created
    1 errored

Duration: 20s"""


def test_without_stderr_the_message_is_the_diagnostics_block() -> None:
    assert pulumi_message(failed(UP_STDOUT, "")) == (
        "  pulumi:providers:kubernetes (kubernetes):\n"
        "    error: no resource plugin 'pulumi-resource-kubernetes' found in the workspace at version v4.34.2"
    )


def test_without_diagnostics_the_error_lines_are_the_message() -> None:
    repeated = "error: could not read Pulumi.dev.yaml"
    stdout = f"Previewing update (dev):\n{repeated}\n{repeated}"
    assert pulumi_message(failed(stdout, "")) == "error: could not read Pulumi.dev.yaml"


def test_an_empty_failure_still_gives_a_message() -> None:
    assert pulumi_message(failed("Updating (dev):", "  \n")) == "pulumi failed without a message"


def test_command_errors_become_engine_errors() -> None:
    def up() -> None:
        raise failed("", "error: the stack is locked by another update")

    with pytest.raises(EngineError, match="locked by another update"):
        translate_errors(up)


def test_change_counts_are_keyed_by_operation_name() -> None:
    assert change_counts({auto.OpType.CREATE: 3, auto.OpType.SAME: 40}) == {"create": 3, "same": 40}
    assert change_counts({"update": 2}) == {"update": 2}
    assert change_counts(None) == {}
