"""Kubernetes resource quantities as numbers, so settings can compare them and quotas can sum them."""

from __future__ import annotations

import re

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def cpu_millis(quantity: str) -> int:
    """`250m` -> 250, `1.5` -> 1500. Raises ValueError on anything else."""
    match = _CPU.match(quantity)
    if not match:
        raise ValueError(f"not a CPU quantity: {quantity!r}")
    number, milli = match.groups()
    return round(float(number) * (1 if milli else 1000))


def memory_bytes(quantity: str) -> int:
    """`256Mi` -> 268435456. Raises ValueError on anything else."""
    match = _MEMORY.match(quantity)
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    number, unit = match.groups()
    return int(number) * _MEMORY_FACTORS[unit]


def format_cpu(millis: int) -> str:
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def format_memory(size: int) -> str:
    """Largest binary unit that divides exactly; quotas read better as `12Gi` than as bytes."""
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        factor = _MEMORY_FACTORS[unit]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
