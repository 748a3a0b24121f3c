"""Environment profiles: the defaults a stack starts from, in the same shape as `Pulumi.<stack>.yaml`.

A stack named after a profile uses it (`dev`, `prod`); any other stack names one with `venta:profile`.
"""

from __future__ import annotations

from typing import Any

from stacks.profiles import dev, prod

PROFILES: dict[str, dict[str, Any]] = {"dev": dev.PROFILE, "prod": prod.PROFILE}
