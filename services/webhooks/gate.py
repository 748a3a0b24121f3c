"""Per-target admission: a few deliveries in flight per receiver, and a circuit breaker.

A target is the host[:port] of a subscription's URL. Each has at most ``per_target`` deliveries in
flight, so one receiver that hangs holds a few slots, never the worker. After ``failures_to_open``
failures in a row (no answer, 5xx or 429) its circuit opens for ``open_seconds``: its deliveries are
handed back without spending an attempt. Then one trial delivery is let through (half-open): success
closes the circuit, failure opens it again. State is per replica; nothing here touches the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Target:
    in_flight: int = 0
    failures: int = 0  # in a row
    open_until: float = 0.0


class TargetGate:
    def __init__(
        self,
        per_target: int,
        failures_to_open: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_target = per_target
        self._failures_to_open = failures_to_open
        self._open_seconds = open_seconds
        self._clock = clock
        self._targets: dict[str, _Target] = {}

    def _limit(self, state: _Target) -> int:
        return 1 if state.failures >= self._failures_to_open else self._per_target  # half-open: one trial

    def wait(self, target: str) -> float | None:
        """None when a delivery to ``target`` may start now; else seconds until it is worth trying."""
        state = self._targets.get(target)
        if state is None:
            return None
        now = self._clock()
        if state.open_until > now:
            return state.open_until - now
        return 0.0 if state.in_flight >= self._limit(state) else None

    def acquire(self, target: str) -> float | None:
        """Take a slot (returns None), or say how long to wait (see ``wait``) and take nothing."""
        delay = self.wait(target)
        if delay is None:
            self._targets.setdefault(target, _Target()).in_flight += 1
        return delay

    def release(self, target: str, healthy: bool) -> bool:
        """Give the slot back with the outcome; True when this failure opened the circuit."""
        state = self._targets[target]
        state.in_flight -= 1
        opened = False
        if healthy:
            state.failures, state.open_until = 0, 0.0
        else:
            state.failures += 1
            if state.failures >= self._failures_to_open and state.open_until <= self._clock():
                state.open_until = self._clock() + self._open_seconds
                opened = True
        if state.in_flight == 0 and state.failures == 0:
            del self._targets[target]  # only targets with something to remember stay
        return opened

    def paused(self, target: str) -> float:
        """Seconds until ``target``'s open circuit lets a trial through (0 when it is not open)."""
        state = self._targets.get(target)
        return max(0.0, state.open_until - self._clock()) if state else 0.0

    def blocked(self) -> list[str]:
        """Targets that may not start another delivery now (full or open)."""
        return [target for target in self._targets if self.wait(target) is not None]
