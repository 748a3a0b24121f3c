from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import DatabaseSettings, JwtSettings


class Settings(DatabaseSettings, JwtSettings):
    service_name: str = "file-management"
    storage_dir: Path = Path("/data/files")
    file_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024)
    # Per user, over a sliding window: uploads and bytes (a file deleted still counts until it leaves).
    file_quota_window_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    file_quota_uploads: int = Field(default=100, ge=1, le=1_000_000)
    file_quota_bytes: int = Field(default=500 * 1024 * 1024, ge=1)
