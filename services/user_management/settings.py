from __future__ import annotations

from pydantic import Field

from services.common.settings import DatabaseSettings, JwtSigningSettings


class Settings(DatabaseSettings, JwtSigningSettings):
    # argon2id cost; the defaults are OWASP's minimum recommendation (19 MiB, 2 passes, 1 lane).
    password_hash_memory_kib: int = Field(default=19_456, ge=1024, le=1_048_576)
    password_hash_time_cost: int = Field(default=2, ge=1, le=10)
