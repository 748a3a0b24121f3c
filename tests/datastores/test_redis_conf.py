"""The redis.conf each stack renders, run by a real redis-server (Debian's 7.0; the image runs 7.4).

Substituted (tests/datastores/servers.py, ``RenderedRedis``): ``bind 0.0.0.0 -::*`` by a loopback
address, ``port 6379`` by a free port, ``dir /data`` by a temp dir; the probe script's ``-h 127.0.0.1
-p 6379`` and its password file's mount path likewise. Everything else is the rendered file.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import pytest
import redis

from tests.datastores.conftest import STACKS
from tests.datastores.rendered import Manifest, command_file, container, find, mounted_files, substitute
from tests.datastores.servers import RenderedRedis, loopback_address

PASSWORD_FILE = PurePosixPath("/etc/redis/password")


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rendered(stack: str, objects_of: Callable[[str], list[Manifest]]) -> tuple[Manifest, list[Manifest]]:
    objects = objects_of(stack)
    return find(objects, "StatefulSet", "redis"), objects


@pytest.fixture
def server(rendered: tuple[Manifest, list[Manifest]]) -> Iterator[RenderedRedis]:
    workload, objects = rendered
    server = RenderedRedis(loopback_address(), command_file(workload, objects))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def _password(rendered: tuple[Manifest, list[Manifest]]) -> str:
    workload, objects = rendered
    return mounted_files(workload, objects)[PASSWORD_FILE]


def test_commands_without_the_password_are_refused(
    server: RenderedRedis, rendered: tuple[Manifest, list[Manifest]]
) -> None:
    password = _password(rendered)
    assert password, "both stacks run Redis with a password"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=server.host, port=server.port).set("k", "v")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=server.host, port=server.port, password=password + "x").ping()
    assert redis.Redis(host=server.host, port=server.port, password=password).ping() is True


def test_the_readiness_probe_passes_with_the_mounted_password(
    server: RenderedRedis, rendered: tuple[Manifest, list[Manifest]], tmp_path: Path
) -> None:
    workload = rendered[0]
    probe = container(workload)["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["sh", "-c"]
    password_file = tmp_path / "password"
    password_file.write_text(_password(rendered))
    script = substitute(
        probe[2],
        {
            str(PASSWORD_FILE): str(password_file),
            "-h 127.0.0.1 -p 6379": f"-h {server.host} -p {server.port}",
        },
    )
    assert subprocess.run(["sh", "-c", script], check=False).returncode == 0
    password_file.write_text("wrong")
    assert subprocess.run(["sh", "-c", script], check=False, capture_output=True).returncode != 0


def _crash(server: RenderedRedis) -> None:
    """SIGKILL: no shutdown save, so only what the append-only file holds survives."""
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait()
    server.proc = None


def test_data_survives_a_restart_and_survives_a_crash_only_with_aof(
    server: RenderedRedis, rendered: tuple[Manifest, list[Manifest]]
) -> None:
    workload, objects = rendered
    append_only = "appendonly yes" in command_file(workload, objects)
    client = redis.Redis(host=server.host, port=server.port, password=_password(rendered))
    client.set("kept", "through a restart")
    server.restart()  # SIGTERM: Redis saves on shutdown, as its `save` rules ask
    assert client.get("kept") == b"through a restart"

    client.set("written", "before a crash")
    time.sleep(1.5)  # appendfsync everysec: the write is on disk after at most a second
    _crash(server)
    server.start()
    survived = client.get("written")
    assert (survived == b"before a crash") is append_only, f"appendonly {'yes' if append_only else 'no'}"
