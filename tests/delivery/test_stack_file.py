"""The main job leaves the checkout clean: an engine-added salt never stays in a file without secrets."""

from pathlib import Path

import pytest

from venta.stack_file import salt_kept_out, without_added_salt

COMMITTED = "config:\n  venta:images:\n    tag: 0.1.0\n"
SALT = "encryptionsalt: v1:X3bUoJXvKGA=:v1:ILYiSDO9vEbHqDKD:QlBjEdbH9dlUkPWx==\n"


def test_a_salt_the_engine_added_is_dropped() -> None:
    assert without_added_salt(COMMITTED, COMMITTED + SALT) == COMMITTED


def test_a_deliberate_change_beside_the_salt_stays() -> None:
    deployed = COMMITTED.replace("0.1.0", "v1.2.0")
    assert without_added_salt(COMMITTED, deployed + SALT) == deployed


@pytest.mark.parametrize(
    "secure",
    [
        "  venta:secrets:\n    jwtSigningSeed:\n      secure: v1:abc\n",
        "  venta:token:\n    secure: v1:abc\n",
    ],
)
def test_a_file_with_secure_values_keeps_its_salt(secure: str) -> None:
    after = COMMITTED + secure + SALT
    assert without_added_salt(COMMITTED, after) == after


def test_a_salt_the_committed_file_already_carried_is_kept() -> None:
    assert without_added_salt(COMMITTED + SALT, COMMITTED + SALT) == COMMITTED + SALT


def test_the_context_restores_the_file_even_when_the_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(COMMITTED)
    with pytest.raises(RuntimeError), salt_kept_out(path):
        path.write_text(COMMITTED + SALT)
        raise RuntimeError("the update failed")
    assert path.read_text() == COMMITTED
