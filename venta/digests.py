"""The `--digests` file of `venta deploy`: which pushed image each service runs (pure functions)."""

import json
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from venta.stack_config import image_digests, image_tag
from venta.versions import Update

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class DigestError(ValueError):
    """The digests file is unreadable, or names or pins something it must not."""


def load_digests(path: Path, services: Sequence[str], *, require_all: bool) -> dict[str, str]:
    """The file's service -> digest object (or every `*.json` in a folder, merged: one per image
    job), checked; `require_all`: every service must be pinned."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise DigestError(f"the digests folder {str(path)!r} holds no .json file")
    data: dict[str, object] = {}
    for file in files:
        for service, digest in _read_object(file).items():
            if service in data and data[service] != digest:
                raise DigestError(f"digests: {service!r} is pinned twice, differently, in {str(path)!r}")
            data[service] = digest
    return check_digests(data, services, require_all=require_all)


def _read_object(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise DigestError(f"cannot read the digests file {str(path)!r}: {error.strerror}") from error
    except ValueError as error:
        raise DigestError(f"the digests file {str(path)!r} is not JSON: {error}") from error
    if not isinstance(data, dict) or not data:
        raise DigestError(f"the digests file {str(path)!r} must be a JSON object of service name -> digest")
    return data


def check_digests(
    data: Mapping[str, object], services: Sequence[str], *, require_all: bool
) -> dict[str, str]:
    """Every problem at once: unknown services, malformed digests, and (if required) missing services."""
    problems = []
    if unknown := sorted(set(data) - set(services)):
        problems.append(f"unknown services {_names(unknown)} (known: {', '.join(services)})")
    if malformed := sorted(name for name, digest in data.items() if not _is_digest(digest)):
        problems.append(f"malformed digests for {_names(malformed)}: expected 'sha256:' and 64 lowercase hex")
    missing = [name for name in services if name not in data]
    if require_all and missing:
        problems.append(f"this stack needs every service pinned, missing: {_names(missing)}")
    if problems:
        raise DigestError("digests: " + "; ".join(problems))
    return {name: str(data[name]) for name in services if name in data}


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and bool(_DIGEST.match(value))


def _names(names: Sequence[str]) -> str:
    return ", ".join(map(repr, names))


def digests_deployed_with(
    history: Sequence[Update], version: str, services: Collection[str]
) -> dict[str, str]:
    """The digests the newest successful update of `version` ran with ({} when it recorded none)."""
    for update in history:
        if update.kind == "update" and update.result == "succeeded" and image_tag(update.config) == version:
            return {name: digest for name, digest in image_digests(update.config).items() if name in services}
    return {}
