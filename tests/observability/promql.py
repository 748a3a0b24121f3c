"""Just enough PromQL reading to list the metric names an expression selects.

promtool checks the syntax; this only needs to find identifiers that name series: not functions,
not keywords, not label names inside matchers or grouping clauses, not numbers or durations.
"""

from __future__ import annotations

import re

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    for pattern in (_MATCHERS, _RANGE, _LABEL_LIST, _OFFSET, _NUMBER):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        if text[match.end() :].lstrip().startswith("("):  # a function or aggregation
            continue
        if match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names
