"""Vendor search: text (ranked) and category, paginated; answers are cached until the next vendor event."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response
from prometheus_client import Counter

from services.common.deps import DbPool
from services.search_discovery import repository
from services.search_discovery.cache import SearchCache
from services.search_discovery.schemas import SearchHit, SearchResults

router = APIRouter(prefix="/search", tags=["search"])
CACHE = Counter("search_cache_requests_total", "Search cache lookups", ["result"])


@router.get("/vendors", response_model=SearchResults)
async def search_vendors(
    request: Request,
    pool: DbPool,
    q: Annotated[str, Query(max_length=200, description="words to find; quotes and -not work")] = "",
    category: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    cache: SearchCache = request.app.state.search_cache
    text = " ".join(q.split())
    key, cached = await cache.get(orjson.dumps([text.lower(), category, limit, offset]).decode())
    if cached is not None:
        CACHE.labels("hit").inc()
        return Response(cached, media_type="application/json", headers={"X-Cache": "hit"})
    rows, total = await repository.search(pool, text, category, limit, offset)
    body = (
        SearchResults(items=[SearchHit(**dict(row)) for row in rows], total=total, limit=limit, offset=offset)
        .model_dump_json()
        .encode()
    )
    if key is None:
        CACHE.labels("bypass").inc()
        return Response(body, media_type="application/json", headers={"X-Cache": "bypass"})
    CACHE.labels("miss").inc()
    await cache.put(key, body)
    return Response(body, media_type="application/json", headers={"X-Cache": "miss"})
