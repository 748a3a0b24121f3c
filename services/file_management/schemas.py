"""Response bodies of the files API (uploads are multipart, not JSON)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class FileOut(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime
    content_url: str
