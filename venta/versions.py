"""Which image versions are valid, and which one a rollback returns to (pure functions)."""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from venta.stack_config import image_tag

# A release tag (`v1.4.0`, `1.4.0-rc.1`) or a commit id (7 to 40 hex digits). No `+build` suffix:
# the version becomes an image tag, and `+` is not allowed in one.
_SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z][0-9A-Za-z.-]{0,60})?$")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
# Older updates may carry the version only in their message, e.g. "venta deploy dev v1.2.0".
_MESSAGE = re.compile(r"^venta (?:up|deploy|rollback) \S+ (\S+)")


class VersionError(ValueError):
    """A version argument is malformed, or a rollback has nothing to return to."""


@dataclass(frozen=True)
class Update:
    """One entry of a stack's update history, as the CLI needs it."""

    kind: str  # "update", "preview", "refresh", "destroy", ...
    result: str  # "succeeded", "failed", "in-progress"
    message: str
    config: dict[str, str]  # the stack's config at that update; secret values are masked


def check_version(text: str) -> str:
    """Return `text` if it is a release tag or a commit id, else raise VersionError saying why."""
    if _SEMVER.match(text) or _COMMIT.match(text):
        return text
    raise VersionError(
        f"malformed version {text!r}: expected a release tag like v1.2.3 (optionally -rc.1) "
        "or a commit id of 7 to 40 lowercase hex digits"
    )


def deploy_message(verb: str, stack: str, version: str) -> str:
    """The update message that records which version an update deployed."""
    return f"venta {verb} {stack} {version}"


def deployed_versions(history: Sequence[Update]) -> list[str]:
    """Versions of the successful updates, newest first (history is newest first)."""
    versions = []
    for update in history:
        if update.kind != "update" or update.result != "succeeded":
            continue
        version = image_tag(update.config)
        if not version:
            match = _MESSAGE.match(update.message)
            version = match.group(1) if match else None
        if version:
            versions.append(version)
    return versions


def rollback_version(history: Sequence[Update], stack: str, requested: str | None) -> str:
    """The version a rollback deploys: the one requested, or the last one before the current."""
    versions = deployed_versions(history)
    if not versions:
        raise VersionError(f"stack {stack!r} has no successful deploy in its history: nothing to return to")
    if requested is not None:
        if requested not in versions:
            known = ", ".join(dict.fromkeys(versions))
            raise VersionError(f"version {requested!r} was never deployed to {stack!r} (deployed: {known})")
        return requested
    current = versions[0]
    for version in versions[1:]:
        if version != current:
            return version
    raise VersionError(
        f"stack {stack!r} has only ever run version {current!r}: no earlier version to roll back to"
    )
