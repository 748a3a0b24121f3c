from __future__ import annotations

import uuid

from pydantic import BaseModel


class SearchHit(BaseModel):
    id: uuid.UUID
    name: str
    category: str
    description: str
    rank: float


class SearchResults(BaseModel):
    items: list[SearchHit]
    total: int
    limit: int
    offset: int
