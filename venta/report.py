"""What the command prints about a finished run: resource changes and stack outputs."""

import json
from collections.abc import Mapping

from venta.engine import Output
from venta.target import Say

MASK = "[secret]"


def changes_line(changes: Mapping[str, int]) -> str:
    counts = ", ".join(f"{op} {count}" for op, count in sorted(changes.items()) if count)
    return f"resources: {counts or 'no changes'}"


def show_outputs(outputs: Mapping[str, Output], say: Say) -> None:
    """Print every output; secret ones only as a mask."""
    if not outputs:
        say("outputs: none")
        return
    say("outputs:")
    width = max(len(key) for key in outputs)
    for key in sorted(outputs):
        output = outputs[key]
        text = MASK if output.secret else _plain(output.value)
        say(f"  {key.ljust(width)}  {text}")


def _plain(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
