"""Kubernetes resource quantities as exact numbers, so settings can compare them and quotas can sum them.

The whole grammar of k8s.io/apimachinery's `resource.Quantity` (tested against its own test table in
tests/infra/test_quantities.py):

    <quantity> ::= [+|-] <number> <suffix>
    <number>   ::= <digits> | <digits>.[<digits>] | .[<digits>]
    <suffix>   ::= "" | n | u | m | k | M | G | T | P | E        (decimal SI)
                 | Ki | Mi | Gi | Ti | Pi | Ei                   (binary SI)
                 | (e | E) [+|-] <digits>                       (decimal exponent, at most 2^31-1)

As the API server does, a value is rounded up (away from zero) to a whole nano, and a binary-SI value
is capped at 2^63-1. `1E` is one exa, `1E3` a thousand.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d*)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?\d+))?"
)
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_MAX_EXPONENT = 2**31 - 1
_MAX_BINARY = 2**63 - 1
_NANO = Fraction(1, 10**9)


def parse_quantity(quantity: str) -> Fraction:
    """The exact value of a quantity. Raises ValueError on anything the API server would refuse."""
    match = _QUANTITY.fullmatch(quantity)
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    whole, _, fraction = match["number"].partition(".")
    magnitude = Fraction(int(whole or "0") * 10 ** len(fraction) + int(fraction or "0"), 10 ** len(fraction))
    if match["binary"]:
        magnitude *= 2 ** _BINARY[match["binary"]]
    elif match["decimal"]:
        magnitude *= Fraction(10) ** _DECIMAL[match["decimal"]]
    elif match["exponent"]:
        exponent = int(match["exponent"])
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(f"exponent out of range in quantity: {quantity!r}")
        magnitude *= Fraction(10) ** exponent
    magnitude = math.ceil(magnitude / _NANO) * _NANO
    if match["binary"]:
        magnitude = min(magnitude, Fraction(_MAX_BINARY))
    return -magnitude if match["sign"] == "-" else magnitude


def _amount(quantity: str, unit: Fraction) -> int:
    value = parse_quantity(quantity)
    if value < 0:
        raise ValueError(f"a resource amount cannot be negative: {quantity!r}")
    return math.ceil(value / unit)


def cpu_millis(quantity: str) -> int:
    """`250m` -> 250, `1.5` -> 1500, `1e-4` -> 1 (rounded up, as the API server does)."""
    return _amount(quantity, Fraction(1, 1000))


def memory_bytes(quantity: str) -> int:
    """`256Mi` -> 268435456, `1.5Gi` -> 1610612736, `1e3` -> 1000."""
    return _amount(quantity, Fraction(1))


def format_cpu(millis: int) -> str:
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def format_memory(size: int) -> str:
    """Largest binary unit that divides exactly; quotas read better as `12Gi` than as bytes."""
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        factor = 2 ** _BINARY[unit]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
