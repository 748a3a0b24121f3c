"""Which Pulumi engine `venta` runs: the user's choice first, then a recent PATH one, then setup's."""

from pathlib import Path

import pytest

from venta.engine_location import EngineNotFound, locate, minimum_version, recent_enough
from venta.host import Host


def fake_cli(folder: Path, version: str) -> Path:
    """A `pulumi` that answers `pulumi version` with `version` (the real probe runs it)."""
    folder.mkdir(parents=True, exist_ok=True)
    cli = folder / "pulumi"
    cli.write_text(f'#!/bin/sh\n[ "$1" = version ] && echo {version}\n')
    cli.chmod(0o755)
    return folder


def record(root: Path, bin_dir: Path, how: str = "built from Go modules") -> None:
    (root / ".venv").mkdir(parents=True, exist_ok=True)
    (root / ".venv" / "pulumi-engine").write_text(f"{bin_dir}\n{how}\n")


def test_versions_compare_within_the_major_version() -> None:
    assert recent_enough("v3.274.1", "3.272.0")
    assert recent_enough("3.272.0", "3.272.0")
    assert not recent_enough("v3.100.0", "3.272.0")
    assert not recent_enough("v4.0.0", "3.272.0")  # another major version is another contract
    assert not recent_enough("garbage", "3.272.0")


def test_a_recent_pulumi_on_path_is_used(tmp_path: Path) -> None:
    path_bin = fake_cli(tmp_path / "usr" / "bin", "v3.300.0")
    record(tmp_path, fake_cli(tmp_path / "built" / "bin", "v3.274.1"))
    engine = locate(Host(env={"PATH": str(path_bin)}, home=tmp_path), tmp_path)
    assert (engine.bin_dir, engine.version, engine.origin) == (path_bin, "v3.300.0", "found on PATH")


def test_an_old_pulumi_on_path_gives_way_to_the_one_setup_provided(tmp_path: Path) -> None:
    old = fake_cli(tmp_path / "usr" / "bin", "v3.100.0")
    built = fake_cli(tmp_path / "built" / "bin", "v3.274.1")
    record(tmp_path, built)
    engine = locate(Host(env={"PATH": str(old)}, home=tmp_path), tmp_path)
    assert engine.bin_dir == built
    assert "set up by bash scripts/setup.sh: built from Go modules" in engine.describe()
    # The engine's folder comes first on its PATH, so its plugins win over any others.
    assert engine.path_with_engine(str(old)).split(":") == [str(built), str(old)]


def test_an_explicit_pulumi_home_wins(tmp_path: Path) -> None:
    chosen = fake_cli(tmp_path / "my-pulumi" / "bin", "v3.280.0")
    on_path = fake_cli(tmp_path / "usr" / "bin", "v3.300.0")
    host = Host(env={"PATH": str(on_path), "PULUMI_HOME": str(chosen.parent)}, home=tmp_path)
    assert locate(host, tmp_path).bin_dir == chosen


def test_no_usable_engine_names_what_was_found_and_the_setup_command(tmp_path: Path) -> None:
    old = fake_cli(tmp_path / "usr" / "bin", "v3.1.0")
    with pytest.raises(EngineNotFound) as raised:
        locate(Host(env={"PATH": str(old)}, home=tmp_path), tmp_path)
    message = str(raised.value)
    assert f"is v3.1.0, older than {minimum_version()}" in message
    assert "bash scripts/setup.sh" in message and "nothing was run" in message


def test_a_recorded_engine_that_no_longer_runs_is_reported(tmp_path: Path) -> None:
    record(tmp_path, tmp_path / "deleted" / "bin")
    with pytest.raises(EngineNotFound, match="does not run"):
        locate(Host(env={"PATH": ""}, home=tmp_path), tmp_path)
