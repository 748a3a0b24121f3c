"""Retry schedule: exponential backoff with full jitter (spreads retries of many deliveries apart)."""

from __future__ import annotations

import random


def retry_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1 = first retry): uniform in [0, min(cap, base * 2**(n-1))]."""
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    ceiling = min(cap_s, base_s * 2 ** min(attempt - 1, 62))
    return (rng or random).uniform(0, ceiling)
