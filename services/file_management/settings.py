from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.catalog import FILE_QUOTA_BYTES, FILE_QUOTA_UPLOADS, FILE_QUOTA_WINDOW_SECONDS
from services.common.settings import DatabaseSettings, JwtSettings


class Settings(DatabaseSettings, JwtSettings):
    service_name: str = "file-management"
    storage_dir: Path = Path("/data/files")
    file_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024)
    # Per user, over a sliding window: uploads and bytes (a file deleted still counts until it leaves).
    file_quota_window_seconds: int = Field(default=FILE_QUOTA_WINDOW_SECONDS, ge=1, le=30 * 86400)
    file_quota_uploads: int = Field(default=FILE_QUOTA_UPLOADS, ge=1, le=1_000_000)
    file_quota_bytes: int = Field(default=FILE_QUOTA_BYTES, ge=1)
