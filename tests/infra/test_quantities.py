"""stacks/quantities.py against the test table of Kubernetes' own parser
(k8s.io/apimachinery/pkg/api/resource/quantity_test.go, TestQuantityParse), each case also with an
explicit `-` and `+`, as upstream runs them; then what the settings make of them."""

from __future__ import annotations

from fractions import Fraction

import pytest

from stacks.quantities import cpu_millis, format_cpu, format_memory, memory_bytes, parse_quantity

MAX = 2**63 - 1  # the cap of a binary-SI value (upstream's maxAllowed)


def dec(unscaled: int, exponent: int) -> Fraction:
    return Fraction(unscaled) * Fraction(10) ** exponent


UPSTREAM_VALID: list[tuple[str, Fraction]] = [
    ("0", dec(0, 0)),
    ("0n", dec(0, 0)),
    ("0u", dec(0, 0)),
    ("0m", dec(0, 0)),
    ("0Ki", dec(0, 0)),
    ("0k", dec(0, 0)),
    ("0Mi", dec(0, 0)),
    ("0M", dec(0, 0)),
    ("0Gi", dec(0, 0)),
    ("0G", dec(0, 0)),
    ("0Ti", dec(0, 0)),
    ("0T", dec(0, 0)),
    ("1", dec(1, 0)),
    ("1Ki", dec(1024, 0)),
    ("8Ki", dec(8 * 1024, 0)),
    ("7Mi", dec(7 * 1024**2, 0)),
    ("6Gi", dec(6 * 1024**3, 0)),
    ("5Ti", dec(5 * 1024**4, 0)),
    ("4Pi", dec(4 * 1024**5, 0)),
    ("3Ei", dec(3 * 1024**6, 0)),
    ("10Ti", dec(10 * 1024**4, 0)),
    ("100Ti", dec(100 * 1024**4, 0)),
    ("5n", dec(5, -9)),
    ("4u", dec(4, -6)),
    ("3m", dec(3, -3)),
    ("9", dec(9, 0)),
    ("8k", dec(8, 3)),
    ("50k", dec(5, 4)),
    ("7M", dec(7, 6)),
    ("6G", dec(6, 9)),
    ("5T", dec(5, 12)),
    ("40T", dec(4, 13)),
    ("300T", dec(3, 14)),
    ("2P", dec(2, 15)),
    ("1E", dec(1, 18)),
    ("1E-3", dec(1, -3)),
    ("1e3", dec(1, 3)),
    ("1E6", dec(1, 6)),
    ("1e9", dec(1, 9)),
    ("1E12", dec(1, 12)),
    ("1e15", dec(1, 15)),
    ("1E18", dec(1, 18)),
    ("1e14", dec(1, 14)),
    ("1e13", dec(1, 13)),
    ("100.035k", dec(100035, 0)),
    ("0.001", dec(1, -3)),
    ("0.0005k", dec(5, -1)),
    ("0.005", dec(5, -3)),
    ("0.05", dec(5, -2)),
    ("0.5", dec(5, -1)),
    ("0.00050k", dec(5, -1)),
    ("0.00500", dec(5, -3)),
    ("0.05000", dec(5, -2)),
    ("0.50000", dec(5, -1)),
    ("0.5e0", dec(5, -1)),
    ("0.5e-1", dec(5, -2)),
    ("0.5e-2", dec(5, -3)),
    ("10.035M", dec(10035, 3)),
    ("1.2e3", dec(12, 2)),
    ("1.3E+6", dec(13, 5)),
    ("1.40e9", dec(14, 8)),
    ("1.53E12", dec(153, 10)),
    ("1.6e15", dec(16, 14)),
    ("1.7E18", dec(17, 17)),
    ("9.01", dec(901, -2)),
    ("8.1k", dec(81, 2)),
    ("7.123456M", dec(7123456, 0)),
    ("6.987654321G", dec(6987654321, 0)),
    ("5.444T", dec(5444, 9)),
    ("40.1T", dec(401, 11)),
    ("300.2T", dec(3002, 11)),
    ("2.5P", dec(25, 14)),
    ("1.01E", dec(101, 16)),
    ("3.001n", dec(4, -9)),
    ("1.1E-9", dec(2, -9)),
    ("0.0000000001", dec(1, -9)),
    ("0.0000000005", dec(1, -9)),
    ("0.00000000050", dec(1, -9)),
    ("0.5e-9", dec(1, -9)),
    ("0.9n", dec(1, -9)),
    ("0.00000012345", dec(124, -9)),
    ("0.00000012354", dec(124, -9)),
    ("9Ei", Fraction(MAX)),
    ("9223372036854775807Ki", Fraction(MAX)),
    ("12E", dec(12, 18)),
    ("100.035Ki", dec(10243584, -2)),
    ("0.5Mi", dec(1024 * 1024 // 2, 0)),
    ("0.05Gi", dec(536870912, -1)),
    ("0.025Ti", dec(274877906944, -1)),
    ("0.000000000001Ki", dec(2, -9)),
    (".001", dec(1, -3)),
    (".0001k", dec(100, -3)),
    ("1.", dec(1, 0)),
    ("1.G", dec(1, 9)),
]

UPSTREAM_INVALID = [
    "",
    "1.1.M",
    "1+1.0M",
    "0.1mi",
    "0.1am",
    "aoeu",
    ".5i",
    "1i",
    "-3.01i",
    "-3.01e-",
    "1e4294967297",
    " 1",
    "1 ",
]


@pytest.mark.parametrize(("text", "value"), UPSTREAM_VALID, ids=[t for t, _ in UPSTREAM_VALID])
def test_every_upstream_quantity_parses_to_its_value(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value
    assert parse_quantity("-" + text) == -value
    assert parse_quantity("+" + text) == value


@pytest.mark.parametrize("text", UPSTREAM_INVALID)
def test_every_upstream_invalid_quantity_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)


def test_comparisons_as_upstream() -> None:
    assert parse_quantity("100m") > parse_quantity("50m")
    assert parse_quantity("10000T") > parse_quantity("100Gi")


def test_what_the_settings_read() -> None:
    assert cpu_millis("250m") == 250 and cpu_millis("1.5") == 1500 and cpu_millis("2") == 2000
    assert cpu_millis("1e-4") == 1  # rounded up, like the API server's MilliValue
    assert (
        memory_bytes("1.5Gi") == 3 * 2**29
        and memory_bytes("1G") == 10**9
        and memory_bytes("2E") == 2 * 10**18
    )
    assert format_cpu(2000) == "2" and format_cpu(2500) == "2500m"
    assert format_memory(3 * 2**30) == "3Gi" and format_memory(1536 * 2**20) == "1536Mi"
    for negative in ("-1", "-250m"):
        with pytest.raises(ValueError, match="negative"):
            cpu_millis(negative)
    with pytest.raises(ValueError):
        memory_bytes("12 GB")


def test_a_stack_takes_any_quantity_kubernetes_takes() -> None:
    import stacks
    from tests.infra.test_settings import config

    resources = {"cpuRequest": "0.25", "memoryRequest": "0.5Gi", "cpuLimit": "1500m", "memoryLimit": "1.5Gi"}
    settings = stacks.load("dev", config("dev", services={"geolocation": {"resources": resources}}))
    assert settings.services["geolocation"].resources.memory_limit == "1.5Gi"
    broken = {**resources, "memoryRequest": "2Gi"}  # compared exactly: above the 1.5Gi limit
    with pytest.raises(stacks.SettingsError, match='memoryRequest: given "2Gi"; allowed at most memoryLimit'):
        stacks.load("dev", config("dev", services={"geolocation": {"resources": broken}}))
