"""Real PostgreSQL, Redis and NATS servers run from the files a stack renders, on this machine.

Every change from what the pod runs is one a server outside a cluster needs, and is made by exact
substitution (``tests.datastores.rendered.substitute``), listed where it is made:
- addresses: ``0.0.0.0`` and a cluster's pod host names become this machine's addresses (a loopback
  address per server, or the containers' network for the image tests);
- ports: the client and monitoring ports become free ones (a NATS cluster keeps its route port 6222,
  each node on its own loopback address, so the routes keep theirs);
- directories: ``/data``, ``PGDATA`` and the mounted credentials' folders become temp directories.
The server binaries are Debian's: PostgreSQL 15, Redis 7.0 and nats-server 2.9, where the stacks'
images run PostgreSQL 16, Redis 7.4 and NATS 2.10; what the stacks render must stay valid for both.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from infra.builders import names
from localdev.servers import (
    PG_BIN_DIRS,
    NatsServer,
    PostgresServer,
    RedisServer,
    _pg_bin,
    free_port,
    postgres_owner,
    run_as,
)
from tests.datastores.rendered import substitute

NATS_CLIENT, NATS_CLUSTER, NATS_MONITOR = (names.NATS_PORTS[k] for k in ("client", "cluster", "monitor"))
INIT_DIR = "/docker-entrypoint-initdb.d"
# The postgres image's pg_hba.conf on a new volume is initdb's (trust for local sockets, and for
# 127.0.0.1 and ::1: the pod's own loopback) plus `host all all all scram-sha-256` for every other
# address. Here every TCP client is on loopback and stands for another pod, so the loopback trust
# lines are left out: clients log in with passwords, as the services do in the cluster.
IMAGE_HBA = "local all all trust\nlocal replication all trust\nhost all all all scram-sha-256\n"


def loopback_address() -> str:
    """A loopback address of its own (127.a.b.c): servers keep the ports the stack renders without
    meeting another test's servers, and a cluster's nodes each get one."""
    while True:
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        try:
            for port in (NATS_CLIENT, NATS_CLUSTER, NATS_MONITOR):
                with socket.socket() as probe:
                    probe.bind((address, port))
        except OSError:
            continue
        return address


def private_file(path: Path, text: str, owner: tuple[int, int] | None = None, mode: int = 0o600) -> Path:
    """A file only its owner reads, like a mounted Secret's file (mode 0440 in the pod)."""
    path.write_text(text)
    path.chmod(mode)
    if owner is not None:
        os.chown(path, *owner)
    return path


class RenderedRedis(RedisServer):
    """redis-server with the rendered redis.conf. Substituted: the bind addresses, the port, ``dir``."""

    def __init__(self, host: str, conf: str) -> None:
        super().__init__(host)
        self.changes = {"bind 0.0.0.0 -::*": f"bind {host}", f"port {names.REDIS_PORT}": f"port {self.port}"}
        if '\nsave ""' not in conf:  # the cache Redis keeps nothing on disk (`dir /tmp`)
            self.changes["dir /data"] = f"dir {self.dir}"
        self.conf = private_file(self.dir / "redis.conf", substitute(conf, self.changes))

    def _command(self) -> list[str]:
        return [super()._command()[0], str(self.conf)]


class RenderedNats(NatsServer):
    """nats-server with the rendered nats.conf and its pod's environment (``$POD_NAME``). Substituted:
    the listen and monitoring addresses and ports, ``store_dir``; in a cluster the route listener's
    address and each peer's host name (``cluster_hosts``: pod host name -> its loopback address)."""

    def __init__(
        self, host: str, conf: str, env: Mapping[str, str], cluster_hosts: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(host)
        self.env = dict(env)
        self.monitor_port = free_port(host)
        self.changes = {
            f"listen: 0.0.0.0:{NATS_CLIENT}": f"listen: {host}:{self.port}",
            f"http: 0.0.0.0:{NATS_MONITOR}": f"http: {host}:{self.monitor_port}",
            "store_dir: /data": f"store_dir: {self.dir / 'js'}",
        }
        if cluster_hosts:
            self.changes[f"listen: 0.0.0.0:{NATS_CLUSTER}"] = f"listen: {host}:{NATS_CLUSTER}"
            self.changes |= cluster_hosts
        self.conf = private_file(self.dir / "nats.conf", substitute(conf, self.changes))

    def _command(self) -> list[str]:
        return [super()._command()[0], "--config", str(self.conf)]

    def _popen_kwargs(self) -> dict[str, object]:
        return {"env": {**os.environ, **self.env}}


def _image_path() -> str:
    """PATH as in the postgres image, whose PostgreSQL binaries are on it (Debian keeps them apart)."""
    pg_bin = next((d for d in PG_BIN_DIRS if Path(d).is_dir()), str(Path(_pg_bin("psql")).parent))
    return f"{pg_bin}:/usr/local/bin:/usr/bin:/bin"


class PodPostgres(PostgresServer):
    """PostgreSQL as the postgres image starts a pod on a new volume: initdb with ``POSTGRES_USER`` and
    the password in ``POSTGRES_PASSWORD_FILE`` (read from the pod's mounted files), the image's
    pg_hba.conf (``IMAGE_HBA``), then every file of /docker-entrypoint-initdb.d in name order (``.sql``
    through psql as the superuser with ON_ERROR_STOP, ``.sh`` sourced with ``PGDATA`` set), then a
    restart. Substituted: PGDATA, the listen address and port (``-h``/``-p`` instead of ``*:5432``)."""

    def __init__(self, host: str, env: Mapping[str, str], files: Mapping[PurePosixPath, str]) -> None:
        self.superuser = env["POSTGRES_USER"]
        self.password = files[PurePosixPath(env["POSTGRES_PASSWORD_FILE"])]
        self.init_files = sorted((p.name, text) for p, text in files.items() if str(p.parent) == INIT_DIR)
        super().__init__(host)

    def _initialize(self) -> None:
        pwfile = private_file(self.dir / "pwfile", self.password + "\n", self.owner)
        initdb = [_pg_bin("initdb"), "-D", str(self.data_dir), "--username", self.superuser]
        self.run_as_owner([*initdb, "--pwfile", str(pwfile), "--no-sync", "-E", "UTF8", "--locale=C"])
        pwfile.unlink()
        private_file(self.data_dir / "pg_hba.conf", IMAGE_HBA, self.owner)

    @property
    def url(self) -> str:
        return self.url_as(self.superuser, self.password, "postgres")

    def url_as(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"

    def start_as_pod(self) -> PodPostgres:
        """Start, run the init files as the image's entrypoint does, restart to serve."""
        self.start()
        if not self.init_files:
            raise ValueError(f"the pod mounts no init files in {INIT_DIR}")
        for name, text in self.init_files:
            script = private_file(self.dir / name, text, self.owner)
            if name.endswith(".sql"):
                socket_dir = [
                    "-h",
                    str(self.dir),
                    "-p",
                    str(self.port),
                    "-U",
                    self.superuser,
                    "-d",
                    "postgres",
                ]
                psql = [_pg_bin("psql"), *socket_dir, "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "--no-password"]
                self.run_as_owner([*psql, "-f", str(script)])
            elif name.endswith(".sh"):
                env = {"PGDATA": str(self.data_dir), "PATH": _image_path()}
                self.run_as_owner(["bash", "-c", 'set -Eeo pipefail; . "$1"', "entrypoint", str(script)], env)
            else:
                raise ValueError(f"the postgres image ignores {name}; the stack mounts it for nothing")
            script.unlink()
        self.restart()
        return self


class PodMounts:
    """A pod's mounted files for a script run on this machine: each mount's files in a directory of
    its own (readable by the postgres user only), which the caller substitutes for the mount path."""

    def __init__(self, root: Path) -> None:
        self.root, self.owner = root, postgres_owner()
        if self.owner is not None:
            os.chown(root, *self.owner)

    def place(self, mount_path: str, files: Mapping[PurePosixPath, str]) -> str:
        """Write the files mounted at ``mount_path``; returns the directory that holds them."""
        target = self.root / mount_path.strip("/").replace("/", "-")
        target.mkdir()
        if self.owner is not None:
            os.chown(target, *self.owner)
        for path, text in files.items():
            if str(path.parent) == mount_path:
                private_file(target / path.name, text, self.owner, mode=0o400)
        return str(target)

    def directory(self, name: str) -> str:
        """An empty directory the script may write to (a volume such as /backups)."""
        target = self.root / name
        target.mkdir()
        if self.owner is not None:
            os.chown(target, *self.owner)
        return str(target)

    def run(self, script: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        """``sh -c <script>`` as the postgres user, with ``env`` and the image's PATH."""
        return run_as(self.owner, ["sh", "-c", script], {"PATH": _image_path(), **env})


class StandbyPostgres(PostgresServer):
    """A replica pod: its init container's clone command makes the data directory (here with the
    substitutions the caller made: the primary's host and port, the credentials' folder, PGDATA),
    then PostgreSQL serves it as the image would (the clone's ``-R`` made it a standby)."""

    def __init__(self, host: str, clone: str, env: Mapping[str, str]) -> None:
        self.clone, self.clone_env = clone, dict(env)
        super().__init__(host)

    def _initialize(self) -> None:
        env = {**self.clone_env, "PGDATA": str(self.data_dir), "PATH": _image_path()}
        self.run_as_owner(["sh", "-c", self.clone], env)
