"""Inputs a store cannot hold, refused once for every service: a 422 that names the field, never a 500.

- NUL (``\\u0000``) in any string: PostgreSQL's text types refuse the byte outright. ``NulGuard`` (every
  app from ``build_app``) looks at the path, the query and JSON or form bodies before any route runs;
  it costs a substring search per request and parses only what contains a NUL. Multipart bodies
  (uploads stream) and WebSocket messages are checked where they are read, with ``find_nul``. Header
  values never carry a NUL: the HTTP parser refuses such a request with a 400 before any app runs.
- Latitudes beyond what Redis' geo index holds (Web Mercator, +-85.05112878 degrees):
  ``IndexedLatitude`` for every position or query that meets the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from pydantic import AfterValidator, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import error_body, send_json

NUL = "\x00"
NUL_REASON = "must not contain the NUL character (\\u0000)"
GEO_MAX_LATITUDE = 85.05112878
LATITUDE_REASON = (
    f"latitude must be between -{GEO_MAX_LATITUDE} and {GEO_MAX_LATITUDE} (the geo index's range)"
)


def _indexed_latitude(value: float) -> float:
    if not -GEO_MAX_LATITUDE <= value <= GEO_MAX_LATITUDE:
        raise ValueError(LATITUDE_REASON)
    return value


IndexedLatitude = Annotated[
    float,
    Field(
        allow_inf_nan=False,
        description=f"degrees, WGS84, within +-{GEO_MAX_LATITUDE} (what the geo index holds)",
        json_schema_extra={"minimum": -GEO_MAX_LATITUDE, "maximum": GEO_MAX_LATITUDE},
    ),
    AfterValidator(_indexed_latitude),
]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False, description="degrees, WGS84")]


def find_nul(value: Any, path: tuple[str, ...] = ()) -> str | None:
    """The dotted path of the first string (or object key) holding a NUL in a JSON-like value."""
    if isinstance(value, str):
        return ".".join(path) if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            if NUL in key_text:
                return ".".join((*path, key_text.replace(NUL, "\\u0000")))
            found = find_nul(item, (*path, key_text))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_nul(item, (*path, str(index)))
            if found is not None:
                return found
    return None


def _is_json(content_type: bytes) -> bool:
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or kind.endswith(b"+json")


def _form_nul(body: bytes) -> str | None:
    for key, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if NUL in key or NUL in value:
            return key.replace(NUL, "\\u0000")
    return None


class NulGuard:
    """Answers 422 naming the field when the path, the query or a JSON/form body holds a NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self._in_path(scope) or self._in_query(scope)
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        json_body = _is_json(content_type)
        if found is None and (json_body or content_type.startswith(b"application/x-www-form-urlencoded")):
            body, receive = await _buffered(receive)
            escaped = b"\\u0000" if json_body else b"%00"
            if escaped in body or b"\x00" in body:
                found = self._in_body(body, json_body)
        if found is None:
            await self.app(scope, receive, send)
            return
        where, field = found
        fields = [{"field": field, "in": where, "reason": NUL_REASON}]
        await send_json(send, 422, error_body(422, f"{field}: {NUL_REASON}", fields=fields))

    def _in_path(self, scope: Scope) -> tuple[str, str] | None:
        path: str = scope["path"]
        if NUL not in path:
            return None
        # Name the path parameter from the API's own path templates (only on this rare path).
        openapi = getattr(scope.get("app"), "openapi", None)
        paths = openapi().get("paths", {}) if openapi is not None else {}
        for template in paths:
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            match = re.fullmatch(pattern, path)
            if match is not None:
                for name, value in match.groupdict().items():
                    if NUL in value:
                        return "path", name
        return "path", "path"

    def _in_query(self, scope: Scope) -> tuple[str, str] | None:
        query: bytes = scope.get("query_string", b"")
        if b"%00" not in query and b"\x00" not in query:
            return None
        field = _form_nul(query)
        return None if field is None else ("query", field)

    def _in_body(self, body: bytes, json_body: bool) -> tuple[str, str] | None:
        if not json_body:
            field = _form_nul(body)
            return None if field is None else ("body", field)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None  # not JSON: the route's own parsing answers 422 for that
        field = find_nul(parsed)
        return None if field is None else ("body", field or "body")


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that hands it to the app as one message."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", _replay([message], receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    return body, _replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending: Iterator[Message] = iter(messages)

    async def replayed() -> Message:
        for message in pending:
            return message
        return await receive()

    return replayed
