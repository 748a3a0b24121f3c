"""Where file content lives, behind a small interface; a directory (a persistent volume) by default.

A write goes to a temp file in the destination's own directory and becomes visible only by an atomic
rename after fsync, so a reader never sees a half-written file and an aborted write leaves nothing.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

CHUNK = 64 * 1024


class PendingWrite(Protocol):
    def write(self, data: bytes) -> None: ...
    def publish(self) -> None:
        """Make the content durable and visible under its key."""

    def abort(self) -> None:
        """Forget everything written; safe to call more than once, and after publish (no-op)."""


class StorageBackend(Protocol):
    def begin(self, key: str) -> PendingWrite: ...
    def read(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def healthy(self) -> bool: ...


class _DirectoryWrite:
    def __init__(self, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self._final = final
        self._temp = final.parent / f".partial-{uuid.uuid4().hex}"
        self._file = open(self._temp, "xb")  # noqa: SIM115 (closed in publish/abort)
        self._done = False

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def publish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temp, self._final)
        self._done = True
        _fsync_dir(self._final.parent)  # the rename itself must survive a crash

    def abort(self) -> None:
        if self._done:
            return
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()
        self._done = True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryStorage:
    """Content at ``<root>/<first two chars of key>/<key>``; keys are server-made UUIDs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root / key[:2] / key

    def begin(self, key: str) -> PendingWrite:
        return _DirectoryWrite(self._path(key))

    def read(self, key: str) -> Iterator[bytes]:
        with open(self._path(key), "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def healthy(self) -> bool:
        """The volume is mounted and writable (a read-only or full volume fails uploads)."""
        probe = self.root / f".health-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError:
            return False
        return True

    def leftovers(self) -> list[Path]:
        """Temp files from writes that never finished (e.g. the process was killed mid-upload)."""
        return sorted(self.root.glob("*/.partial-*"))
