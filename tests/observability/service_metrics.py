"""The metric names the services expose, read from their source under services/.

A metric is registered with prometheus_client as `Counter("name", ...)`, `Histogram(name="name", ...)`
and so on; this lists the series names each one exposes (a counter's `_total`, a histogram's
`_bucket`/`_sum`/`_count`), so dashboards and rules can be checked against what really exists.
"""

from __future__ import annotations

import re
from pathlib import Path

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"

_DEFINITION = re.compile(
    r"\b(?P<kind>Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*(?:name\s*=\s*)?[\"'](?P<name>[a-zA-Z_:][\w:]*)[\"']"
)
_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("_sum", "_count", "_created"),
    "Info": ("_info",),
    "Enum": ("",),
}


def registered_metrics(root: Path = SERVICES_DIR) -> dict[str, Path]:
    """Exposed series name -> the file that registers it."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        for match in _DEFINITION.finditer(path.read_text()):
            kind, name = match["kind"], match["name"]
            base = name.removesuffix("_total") if kind == "Counter" else name
            for suffix in _SUFFIXES[kind]:
                found.setdefault(base + suffix, path)
            if kind == "Histogram":
                found.setdefault(base, path)  # the family name, as alert descriptions use it
    return found
