"""Fixtures of the data-store tests: each stack's rendered objects with their secrets in the clear.

Each test takes the config files and scripts from these objects (never from the builders), runs them
with the real server binaries on loopback in temp dirs, and says what it had to substitute.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.render.capture import CapturedStack
from tests.datastores.rendered import Manifest, cluster_objects

STACKS = ("dev", "prod")
_objects: dict[str, list[Manifest]] = {}


@pytest.fixture(scope="session")
def objects_of(captured_stack: Callable[..., CapturedStack]) -> Callable[[str], list[Manifest]]:
    """``objects_of("prod")``: the committed stack's objects as the cluster would hold them."""

    def objects(stack: str) -> list[Manifest]:
        if stack not in _objects:
            _objects[stack] = cluster_objects(captured_stack(stack))
        return _objects[stack]

    return objects
