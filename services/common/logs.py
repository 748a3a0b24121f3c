"""Structured JSON logs with the request id of the current request, and no secrets in them.

``configure_logging(settings)`` installs one JSON handler on the root logger. Every record carries
``service`` and, inside a request (or an event handler that set it), ``request_id`` from a contextvar.
Values under secret-looking keys and bearer tokens / JWTs inside messages are replaced by
``[redacted]`` before anything is written.
"""

from __future__ import annotations

import contextvars
import logging
import random
import re
import sys
import time
from typing import Any

import orjson

REQUEST_ID_HEADER = "X-Request-ID"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|authorization|seed|api[_-]?key|cookie", re.I)
_SECRET_TEXT = re.compile(
    r"(?i)(bearer\s+)[\w\-.~+/=]+"  # Authorization header values
    r"|eyJ[\w-]+\.[\w-]+\.[\w-]*"  # anything shaped like a JWT
    r"|(://[^:/@\s]*:)[^@\s]+(@)"  # passwords inside URLs
)
REDACTED = "[redacted]"
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def new_request_id() -> str:
    """32 hex digits. Unique is all a request id needs (it is no secret): the process's own random
    generator, seeded from the OS at start, costs a fifth of ``uuid4`` (the gateway makes one per
    request)."""
    return f"{random.getrandbits(128):032x}"


def redact_text(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(1) + REDACTED
        if match.group(2):
            return match.group(2) + REDACTED + match.group(3)
        return REDACTED

    return _SECRET_TEXT.sub(replace, text)


def redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "msg": redact_text(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own handlers would print plain text: route its loggers through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request once
