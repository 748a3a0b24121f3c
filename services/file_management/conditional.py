"""HTTP validators for downloads: a strong ETag from the content hash, and the 304 decision."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime


def etag(sha256: str) -> str:
    return f'"{sha256}"'


def last_modified(created_at: datetime) -> str:
    return format_datetime(created_at.replace(microsecond=0), usegmt=True)


def not_modified(
    tag: str, created_at: datetime, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """RFC 9110: If-None-Match wins when present; If-Modified-Since is compared at one-second precision."""
    if if_none_match is not None:
        candidates = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
        return "*" in candidates or tag in candidates
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # an unparsable date is ignored, as the RFC says
        if since.tzinfo is None:
            return False
        return created_at.replace(microsecond=0) <= since
    return False
