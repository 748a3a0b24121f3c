"""A local S3-compatible server for the backup tests (moto's server, on a loopback port), and the
same client program the backup job's upload image runs (rclone, Debian's 1.60.1 as the image's
``rclone/rclone:1.60.1``), for the tests' own looks at the bucket."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

from localdev.servers import free_port
from tests.datastores.servers import loopback_address

# moto accepts any keys; the stack's secrets carry these so the job's scripts read them from files.
ACCESS_KEY_ID = "datapath-key-id"
SECRET_ACCESS_KEY = "datapath-secret-key"


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    def target_config(self, prefix: str) -> dict[str, str]:
        """Config overrides that give a stack this bucket as its backup target, keys as secrets."""
        target = {"bucket": self.bucket, "endpoint": self.endpoint, "prefix": prefix, "region": "us-east-1"}
        keys = {"backupAccessKeyId": ACCESS_KEY_ID, "backupSecretAccessKey": SECRET_ACCESS_KEY}
        return {
            "venta:postgres": json.dumps({"backup": {"target": target}}),
            "venta:secrets": json.dumps(keys),
        }

    def rclone_env(self) -> dict[str, str]:
        return {
            "RCLONE_S3_PROVIDER": "Other",
            "RCLONE_S3_ENDPOINT": self.endpoint,
            "RCLONE_S3_REGION": "us-east-1",
            "RCLONE_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "RCLONE_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "HOME": os.environ.get("TMPDIR", "/tmp"),
            "PATH": "/usr/bin:/bin",
        }

    def rclone(self, *args: str) -> str:
        done = subprocess.run(
            [rclone_binary(), "--config", "", "--s3-no-check-bucket", *args],
            env=self.rclone_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rclone {' '.join(args)}: {done.stderr}")
        return done.stdout

    def files(self, prefix: str) -> list[str]:
        """Every object under ``prefix``, by its path below it."""
        return sorted(self.rclone("lsf", "-R", "--files-only", f":s3:{self.bucket}/{prefix}").split())


def rclone_binary() -> str:
    found = shutil.which("rclone")
    if found is None:
        raise RuntimeError("rclone is not installed (scripts/setup.sh installs Debian's rclone)")
    return found


@contextlib.contextmanager
def s3_server() -> Iterator[S3]:
    host = loopback_address()
    port = free_port(host)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        s3 = S3(f"http://{host}:{port}", "venta-backups")
        subprocess.run(
            [rclone_binary(), "--config", "", "mkdir", f":s3:{s3.bucket}"], env=s3.rclone_env(), check=True
        )
        yield s3
    finally:
        server.stop()
