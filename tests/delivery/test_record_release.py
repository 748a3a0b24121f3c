"""scripts/ci/record-release.sh: a release's stack settings reach main, whatever main did meanwhile."""

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ci" / "record-release.sh"
STACK_FILE = (
    "config:\n  venta:images:\n    registry: ghcr.io/venta\n    tag: 0.1.0\n"
    "  venta:gateway:\n    host: venta.localtest.me\n    ingressClass: nginx\n  venta:logLevel: info\n"
)


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com", "HOME": str(cwd)}
    env |= {"GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A remote with main holding Pulumi.dev.yaml, and a release tag v1.0.0 on its first commit."""
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", str(remote), str(seed))
    (seed / "Pulumi.dev.yaml").write_text(STACK_FILE)
    git(seed, "add", "Pulumi.dev.yaml")
    git(seed, "commit", "--quiet", "-m", "stacks")
    git(seed, "tag", "v1.0.0")
    git(seed, "push", "--quiet", "origin", "main", "v1.0.0")
    return remote


def clone(origin: Path, into: Path, ref: str = "main") -> Path:
    git(into.parent, "clone", "--quiet", str(origin), str(into))
    git(into, "checkout", "--quiet", ref)
    return into


def record(checkout: Path, version: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(checkout)}
    return subprocess.run(
        ["bash", str(SCRIPT), "dev", version], cwd=checkout, env=env, capture_output=True, text=True
    )


def main_file(origin: Path, tmp_path: Path) -> tuple[str, str]:
    """Pulumi.dev.yaml on the remote's main, and main's last commit message."""
    check = clone(origin, tmp_path / "check")
    return (check / "Pulumi.dev.yaml").read_text(), git(check, "log", "-1", "--format=%s")


def test_the_release_lands_on_main_beside_a_change_pushed_meanwhile(origin: Path, tmp_path: Path) -> None:
    deploy = clone(origin, tmp_path / "deploy")
    # While the deploy ran, a pull request changed another setting of the same file.
    other = clone(origin, tmp_path / "other")
    (other / "Pulumi.dev.yaml").write_text(STACK_FILE.replace("logLevel: info", "logLevel: debug"))
    git(other, "commit", "--quiet", "-am", "dev: debug logs")
    git(other, "push", "--quiet", "origin", "main")
    (deploy / "Pulumi.dev.yaml").write_text(STACK_FILE.replace("tag: 0.1.0", "tag: 4f2a9c1"))
    done = record(deploy, "4f2a9c1")
    assert done.returncode == 0, done.stderr
    text, message = main_file(origin, tmp_path)
    assert "tag: 4f2a9c1" in text and "logLevel: debug" in text
    assert message == "release: dev at 4f2a9c1 [skip ci]"


def test_a_release_deployed_from_a_tag_is_recorded_on_main(origin: Path, tmp_path: Path) -> None:
    newer = clone(origin, tmp_path / "newer")
    (newer / "NOTES").write_text("main moved on after the tag\n")
    git(newer, "add", "NOTES")
    git(newer, "commit", "--quiet", "-m", "notes")
    git(newer, "push", "--quiet", "origin", "main")
    deploy = clone(origin, tmp_path / "deploy", ref="v1.0.0")
    (deploy / "Pulumi.dev.yaml").write_text(STACK_FILE.replace("tag: 0.1.0", "tag: v1.0.0"))
    assert record(deploy, "v1.0.0").returncode == 0
    text, message = main_file(origin, tmp_path)
    assert "tag: v1.0.0" in text and message == "release: dev at v1.0.0 [skip ci]"
    assert (tmp_path / "check" / "NOTES").is_file()  # main's own history is kept


def test_an_unchanged_stack_file_records_nothing(origin: Path, tmp_path: Path) -> None:
    deploy = clone(origin, tmp_path / "deploy")
    done = record(deploy, "4f2a9c1")
    assert done.returncode == 0 and "nothing to record" in done.stdout
    assert main_file(origin, tmp_path)[1] == "stacks"


def test_a_conflicting_edit_on_main_stops_with_the_commit_to_record_by_hand(
    origin: Path, tmp_path: Path
) -> None:
    deploy = clone(origin, tmp_path / "deploy")
    other = clone(origin, tmp_path / "other")
    (other / "Pulumi.dev.yaml").write_text(STACK_FILE.replace("tag: 0.1.0", "tag: 0.2.0"))
    git(other, "commit", "--quiet", "-am", "dev: tag by hand")
    git(other, "push", "--quiet", "origin", "main")
    (deploy / "Pulumi.dev.yaml").write_text(STACK_FILE.replace("tag: 0.1.0", "tag: 4f2a9c1"))
    done = record(deploy, "4f2a9c1")
    assert done.returncode == 1
    assert "changed the same lines; record commit" in done.stderr
    assert "tag: 0.2.0" in main_file(origin, tmp_path)[0]
