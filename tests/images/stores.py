"""The data stores of a rendered stack as real servers on this machine, set up from what the stack
renders: PostgreSQL runs the init scripts the postgres pod mounts (a role with its password and a
database per service), Redis and NATS run the config files their pods mount (Redis' password, NATS'
user per service), with only this machine's addresses and directories in place of the pod's.

They listen on the host side of the containers' network. The containers' PostgreSQL logins go
through scram-sha-256, so a service whose Secret carries a wrong password fails as it would in the
cluster; the test's own superuser connects from the host address alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from localdev.servers import NatsServer, PostgresServer, RedisServer, Server, _pg_bin, free_port
from tests.images.addresses import DATA_STORES, NAME_LABEL, Address
from tests.images.pods import Manifest, environment, index, mounted_files

INIT_DIR = PurePosixPath("/docker-entrypoint-initdb.d")


def data_store_workloads(objects: list[Manifest]) -> dict[str, Manifest]:
    """The StatefulSet of each data store kind, by its name label."""
    found: dict[str, Manifest] = {}
    for obj in objects:
        kind = (obj["metadata"].get("labels") or {}).get(NAME_LABEL)
        if obj["kind"] == "StatefulSet" and kind in DATA_STORES:
            if kind in found:
                raise ValueError(f"two {kind} StatefulSets; the image tests run one of each")
            found[kind] = obj
    missing = sorted(set(DATA_STORES) - set(found))
    if missing:
        raise ValueError(f"the stack renders no StatefulSet for {missing}")
    return found


def _private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def set_value(conf: str, key: str, value: str) -> str:
    """``conf`` with the value of its one ``key: value`` (NATS) or ``key value`` (Redis) line replaced."""
    pattern = re.compile(rf"^(\s*{re.escape(key)}(?:\s*[:=]\s*|\s+))\S+$", re.M)
    replaced, count = pattern.subn(lambda m: m[1] + value, conf)
    if count != 1:
        raise ValueError(f"the rendered config has {count} `{key}` lines; expected one")
    return replaced


def command_file(workload: Manifest, objects: list[Manifest], after: str | None = None) -> str:
    """The file the data store's command names (the argument after ``after``, else the argument that
    ends in ``.conf``), read from the Secret or ConfigMap the pod mounts there."""
    command = workload["spec"]["template"]["spec"]["containers"][0].get("command", [])
    named = (
        [command[command.index(after) + 1]]
        if after in command
        else [c for c in command if c.endswith(".conf")]
    )
    files = mounted_files(workload, objects)
    if len(named) != 1 or PurePosixPath(named[0]) not in files:
        raise ValueError(f"{workload['metadata']['name']}: command {command} names no file its volumes hold")
    return files[PurePosixPath(named[0])]


def pod_env(workload: Manifest, objects: list[Manifest]) -> dict[str, str]:
    """The container's environment (a StatefulSet's first pod is ``<name>-0``)."""
    container = workload["spec"]["template"]["spec"]["containers"][0]
    meta = workload["metadata"]
    return environment(container, meta.get("namespace", ""), f"{meta['name']}-0", index(objects))


class RenderedRedis(RedisServer):
    """redis-server with the rendered redis.conf; the arguments after it set port and bind (``dir``
    is applied while the file is read, so it is replaced in the file)."""

    def __init__(self, host: str, conf: str) -> None:
        super().__init__(host)
        self.conf = _private_file(self.dir / "redis.conf", set_value(conf, "dir", str(self.dir)))

    def _command(self) -> list[str]:
        binary, *overrides = super()._command()
        return [binary, str(self.conf), *overrides]


class RenderedNats(NatsServer):
    """nats-server with the rendered nats.conf, its listen, monitoring and store places moved here."""

    def __init__(self, host: str, conf: str, env: dict[str, str]) -> None:
        super().__init__(host)
        self.env = env
        conf = set_value(conf, "listen", f"{host}:{self.port}")
        conf = set_value(conf, "http", f"{host}:{free_port(host)}")
        conf = set_value(conf, "store_dir", str(self.dir / "js"))
        self.conf = _private_file(self.dir / "nats.conf", conf)

    def _command(self) -> list[str]:
        return [super()._command()[0], "--config", str(self.conf)]

    def _popen_kwargs(self) -> dict[str, object]:
        return {"env": {**os.environ, **self.env}}


def init_postgres(server: PostgresServer, subnet: str, workload: Manifest, objects: list[Manifest]) -> None:
    """Admit the containers' subnet with passwords, start, and run the pod's init scripts."""
    files = mounted_files(workload, objects)
    scripts = sorted((path, text) for path, text in files.items() if path.parent == INIT_DIR)
    if not scripts or any(path.suffix != ".sql" for path, _ in scripts):
        raise ValueError(f"expected .sql init scripts in {INIT_DIR}, got {[str(p) for p, _ in scripts]}")
    start_postgres(server, subnet, [(path.name, text) for path, text in scripts])


def start_postgres(server: PostgresServer, subnet: str, scripts: list[tuple[str, str]]) -> None:
    """Admit ``subnet`` with passwords (scram-sha-256), start, and run each (name, SQL) script as the
    superuser, which connects from the server's own address alone."""
    with (server.data_dir / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all postgres {server.host}/32 trust\nhost all all {subnet} scram-sha-256\n")
    server.start()
    for name, text in scripts:
        # psql sends statement by statement, as the postgres image's entrypoint does (CREATE DATABASE
        # cannot run inside the implicit transaction of a multi-statement query).
        connection = ["-h", server.host, "-p", str(server.port), "-U", "postgres", "-d", "postgres"]
        done = subprocess.run(
            [_pg_bin("psql"), *connection, "-q", "-v", "ON_ERROR_STOP=1"],
            input=text,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed on the local PostgreSQL:\n{done.stderr}")


@contextlib.contextmanager
def rendered_data_stores(objects: list[Manifest], host: str, subnet: str) -> Iterator[dict[str, Address]]:
    """PostgreSQL, Redis (main and cache) and NATS as the stack renders them, listening on ``host``;
    yields each one's address by kind; stops and deletes them on exit."""
    workloads = data_store_workloads(objects)
    servers: list[Server] = []
    try:
        postgres = PostgresServer(host)
        servers.append(postgres)
        init_postgres(postgres, subnet, workloads["postgres"], objects)
        for redis in ("redis", "redis-cache"):
            servers.append(RenderedRedis(host, command_file(workloads[redis], objects)))
            servers[-1].start()
        nats_conf = command_file(workloads["nats"], objects, after="--config")
        servers.append(RenderedNats(host, nats_conf, pod_env(workloads["nats"], objects)))
        servers[-1].start()
        yield {kind: (host, server.port) for kind, server in zip(DATA_STORES, servers, strict=True)}
    finally:
        for server in servers:
            server.cleanup()
