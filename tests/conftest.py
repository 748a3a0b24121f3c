"""Fixtures shared by every test suite."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from infra.render.capture import CapturedStack, capture_stack

# Docker and the service images, shared by the suites that run them (tests/images, tests/node).
pytest_plugins = ["tests.images.fixtures"]

_captured: dict[tuple[str, tuple[tuple[str, str], ...]], CapturedStack] = {}


def _capture(stack: str, config: Mapping[str, str] | None = None) -> CapturedStack:
    """The real `__main__.py` for `stack` under Pulumi's mocks; one evaluation per distinct config."""
    key = (stack, tuple(sorted((config or {}).items())))
    if key not in _captured:
        _captured[key] = capture_stack(stack, config)
    return _captured[key]


@pytest.fixture(scope="session")
def captured_stack() -> Callable[..., CapturedStack]:
    """Factory: `captured_stack("prod", {"venta:images": "..."})`. Results are shared; do not mutate."""
    return _capture


@pytest.fixture(scope="session")
def dev_stack() -> CapturedStack:
    return _capture("dev")


@pytest.fixture(scope="session")
def prod_stack() -> CapturedStack:
    return _capture("prod")
