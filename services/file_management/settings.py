from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import DatabaseSettings, JwtSettings


class Settings(DatabaseSettings, JwtSettings):
    service_name: str = "file-management"
    storage_dir: Path = Path("/data/files")
    file_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024)
