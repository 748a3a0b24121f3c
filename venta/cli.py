"""Argument parsing for the `venta` command (placeholder until the verbs land)."""

import sys


def main(argv: list[str] | None = None) -> int:
    del argv
    print("venta: not ready yet", file=sys.stderr)
    return 2
