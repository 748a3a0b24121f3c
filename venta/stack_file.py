"""Keeps the engine's `encryptionsalt` out of a committed `Pulumi.<stack>.yaml` that holds no secret.

The passphrase provider writes a salt into the stack's file when it first opens the stack. A salt
belongs to one passphrase, and dev runs under several (each developer's own state, CI's secret):
committed, it would bind every runner to one of them. Pulumi keeps the salt it encrypted the state
with in the state itself and decrypts the state with that, so a file without `secure:` values
needs none. A file that holds `secure:` values keeps its salt: those values are encrypted with it,
and everyone who runs that stack shares its passphrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SALT_LINE = re.compile(r"^encryptionsalt:.*(?:\n|$)", re.MULTILINE)
_SECURE_VALUE = re.compile(r"^\s*(?:-\s+)?(?:[\w.:\"'-]+:\s+)?secure:\s", re.MULTILINE)


def without_added_salt(before: str | None, after: str) -> str:
    """`after` without the salt line the engine added, unless the file holds secure values."""
    if before is not None and _SALT_LINE.search(before):
        return after  # the committed file chose to carry a salt
    if _SECURE_VALUE.search(after):
        return after
    return _SALT_LINE.sub("", after)


@contextmanager
def salt_kept_out(path: Path) -> Iterator[None]:
    """Around a run of the engine on `path`'s stack: drop a salt it added to a file without secrets."""
    before = path.read_text() if path.is_file() else None
    try:
        yield
    finally:
        if path.is_file():
            after = path.read_text()
            kept = without_added_salt(before, after)
            if kept != after:
                path.write_text(kept)
