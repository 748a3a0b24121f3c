"""Content hashes for pod-template annotations: a change to config or secrets rolls the pods."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def checksum(*parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True).encode()).hexdigest()
