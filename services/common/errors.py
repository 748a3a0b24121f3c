"""Error responses: every failure is JSON ``{"error": <code>, "detail": <reason>}``.

Bad input is a 4xx with a reason (422 lists each invalid field); a data store that cannot be reached
(after the client's own retries) is a 503 with ``Retry-After``, since the same request will succeed
once it is back; an unexpected exception is logged with its traceback and answered with a bare 500
that leaks nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from services.common.logs import request_id_var

log = logging.getLogger("venta.errors")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}
RETRY_AFTER_SECONDS = 2
# Failures that mean "a data store is away", and the name a client is told (never an address).
_UNAVAILABLE: tuple[tuple[type[Exception], str], ...] = (
    (RedisConnectionError, "Redis"),
    (RedisTimeoutError, "Redis"),
    (asyncpg.PostgresConnectionError, "PostgreSQL"),
    # Shutting down, restarting or still starting up.
    (asyncpg.exceptions.OperatorInterventionError, "PostgreSQL"),
    (ConnectionError, "a data store"),
)


def error_body(status: int, detail: Any, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": _CODES.get(status, "error"), "detail": detail}
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return body


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """A JSON answer straight from ASGI code (middleware, the gateway's hot path): no Response object."""
    payload = orjson.dumps(body)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    fields = []
    for error in exc.errors():
        # Location minus the leading "body"/"query" part reads as the field name; never echo the input.
        loc = [str(part) for part in error.get("loc", ())]
        fields.append(
            {
                "field": ".".join(loc[1:]) or ".".join(loc),
                "in": loc[0] if loc else "",
                "reason": error.get("msg", "invalid"),
            }
        )
    return fields


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    return JSONResponse(error_body(exc.status_code, exc.detail), exc.status_code, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = _field_errors(exc)
    summary = "; ".join(f"{f['field']}: {f['reason']}" for f in fields)
    return JSONResponse(error_body(422, summary, fields=fields), 422)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    store = next(name for kind, name in _UNAVAILABLE if isinstance(exc, kind))
    log.warning(
        "data store unavailable on %s %s",
        request.method,
        request.url.path,
        extra={"store": store, "error": f"{type(exc).__name__}: {exc}"},
    )
    body = error_body(503, f"{store} is unavailable; retry shortly", retry_after=RETRY_AFTER_SECONDS)
    return JSONResponse(body, 503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body(500, "internal error"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind, _ in _UNAVAILABLE:
        app.add_exception_handler(kind, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
