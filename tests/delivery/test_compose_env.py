"""`venta compose-env` writes fresh secrets for docker compose, once, readable by the owner only."""

import base64
import re
from pathlib import Path

import pytest

from services.catalog import SERVICES
from services.common.auth import public_pem_from_seed
from venta.cli import main
from venta.compose_env import INIT_SCRIPT, compose_env, database_password_variable, write_compose_env


def parse_env(text: str) -> dict[str, str]:
    values = dict(line.split("=", 1) for line in text.splitlines())
    pem = values["JWT_PUBLIC_KEY"]
    assert pem.startswith('"') and pem.endswith('"')
    values["JWT_PUBLIC_KEY"] = pem[1:-1].replace("\\n", "\n")
    return values


def test_the_env_holds_fresh_passwords_and_a_matching_key_pair() -> None:
    first, second = parse_env(compose_env()), parse_env(compose_env())
    roles = {database_password_variable(e) for e in SERVICES.values() if e.database}
    nats = {f"NATS_PASSWORD_{e.env_suffix}" for e in SERVICES.values() if e.nats}
    passwords = {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "REDIS_CACHE_PASSWORD", *nats, *roles}
    assert set(first) == {*passwords, "JWT_SIGNING_SEED", "JWT_PUBLIC_KEY"}
    assert len(nats) == 5  # a password per service that uses NATS, each its own user
    for name in (*passwords, "JWT_SIGNING_SEED"):
        assert first[name] != second[name]
    assert len({first[name] for name in passwords}) == len(passwords)
    for name in passwords:
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", first[name])  # safe inside connection URLs
    assert len(base64.b64decode(first["JWT_SIGNING_SEED"], validate=True)) == 32
    assert first["JWT_PUBLIC_KEY"] == public_pem_from_seed(first["JWT_SIGNING_SEED"]).strip()


def test_an_existing_env_is_kept_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert write_compose_env(path, force=False).startswith("wrote")
    assert path.stat().st_mode & 0o777 == 0o600
    script = tmp_path / INIT_SCRIPT
    assert script.parent.stat().st_mode & 0o777 == 0o700  # the passwords' folder is the owner's
    before, before_script = path.read_text(), script.read_text()
    assert "kept it" in write_compose_env(path, force=False)
    assert path.read_text() == before and script.read_text() == before_script
    write_compose_env(path, force=True)
    assert path.read_text() != before and script.read_text() != before_script


def test_an_older_env_without_role_passwords_asks_for_force(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("POSTGRES_PASSWORD=x\nREDIS_PASSWORD=y\nNATS_PASSWORD=z\n")
    assert "run with --force" in write_compose_env(path, force=False)
    assert not (tmp_path / INIT_SCRIPT).exists()


def test_the_verb_writes_env_at_the_project_root(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compose-env"]) == 0
    assert (project / ".env").is_file()
    assert f"wrote {project / '.env'}" in capsys.readouterr().out
