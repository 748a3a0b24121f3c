"""The public port's HTTP protocol: ``/api/...`` requests go from the parser straight to the gateway.

uvicorn's httptools protocol with one change: an HTTP request under ``/api/`` runs ``Gateway.handle``
in a lean request cycle instead of the ASGI app and its middleware stack (FastAPI's error, telemetry
and body-limit layers, the request context, the drain's ``Connection: close``, the router). What those
layers did for the gateway happens here once, in one place: the request id (taken from the client when
valid, else new) goes on the response and to the upstream, the request is counted and timed under the
route's label, a draining replica closes each connection after its response, an exception is logged
and answered with a JSON 500. The response head waits for the first body chunk, so a small answer
leaves in one write (uvicorn writes head and body apart: two system calls and two packets).

Everything else stays uvicorn's: parsing, keep-alive and its timeout, flow control both ways,
pipelining, the request body as ``receive()`` messages (bodies.py reads them under its limits),
graceful shutdown, WebSocket upgrades (the ASGI app's GatewayMiddleware takes those), and every path
outside ``/api/`` (the app answers 404).
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from typing import Any

import httptools
from prometheus_client import Counter, Histogram
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from services.api_gateway.proxy import Gateway
from services.common.errors import error_body, send_json
from services.common.health import Health
from services.common.logs import request_id_var
from services.common.metrics import (
    CLIENT_KEY,
    HTTP_DURATION,
    HTTP_REQUESTS,
    PATH_LABEL_KEY,
    UNMATCHED,
    incoming_request_id,
)

log = logging.getLogger("venta.gateway")
_access_log = logging.getLogger("venta.access")
_CLOSE = b"connection: close\r\n"
_CHUNKED = b"transfer-encoding: chunked\r\n"
# (method, label, status) -> the metric children: labels() is a lock and a dict look-up per call.
_Children = tuple[Counter, Histogram]
_children: dict[tuple[str, str, int], _Children] = {}


def _metrics(method: str, label: str, status: int) -> _Children:
    key = (method, label, status)
    found = _children.get(key)
    if found is None:
        found = _children[key] = (
            HTTP_REQUESTS.labels(method, label, str(status)),
            HTTP_DURATION.labels(method, label),
        )
    return found


class ProxyCycle(RequestResponseCycle):
    """One ``/api/`` request: ``receive`` as uvicorn's, a ``send`` that writes head and first chunk
    together, and the request context around ``Gateway.handle``."""

    gateway: Gateway
    health: Health

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.status = 500
        self._no_body = False
        self._head: bytes | None = None
        self._flush: asyncio.Handle | None = None

    async def run_asgi(self, app: ASGI3Application) -> None:
        scope = self.scope
        request_id = incoming_request_id(scope)  # type: ignore[arg-type]
        self._request_id = request_id.encode()
        token = request_id_var.set(request_id)
        if self.health.draining:
            self.keep_alive = False
        started = time.perf_counter()
        try:
            await self.gateway.handle(scope, self.receive, self.send)  # type: ignore[arg-type]
        except Exception as exc:
            log.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=exc)
            if not self.response_started:
                await send_json(self.send, 500, error_body(500, "internal error"))
            else:
                self.transport.close()
        else:
            if not self.response_complete and not self.disconnected:
                log.error("gateway returned without completing the response")
                self.transport.close()
        finally:
            elapsed = time.perf_counter() - started
            label = str(scope.get(PATH_LABEL_KEY) or UNMATCHED)
            counter, histogram = _metrics(scope["method"], label, self.status)
            counter.inc()
            histogram.observe(elapsed)
            if _access_log.isEnabledFor(logging.INFO):
                extra = {"method": scope["method"], "path": label, "status": self.status}
                extra |= {"duration_ms": round(elapsed * 1000, 2), "client": scope.get(CLIENT_KEY)}
                _access_log.info("request", extra=extra)
            request_id_var.reset(token)
            self.on_response = lambda: None

    def _head_bytes(self, status: int, headers: Any) -> bytes:
        content = [STATUS_LINE[status]]
        for name, value in self.default_headers:
            content += (name, b": ", value, b"\r\n")
        chunked = True
        for name, value in headers:
            # Values come from our own code or an upstream's parsed headers; a line break in one
            # would split the response (as uvicorn, refuse it). Names come from a parser too.
            if HEADER_VALUE_RE.search(value):
                raise RuntimeError("Invalid HTTP header value.")
            lowered = name.lower()
            if lowered == b"content-length":
                self.expected_content_length = int(value)
                chunked = False
            elif lowered == b"transfer-encoding" or lowered == b"connection":
                continue  # hop-by-hop: framing and persistence are this connection's own
            content += (name, b": ", value, b"\r\n")
        content += (b"x-request-id: ", self._request_id, b"\r\n")
        if not self.keep_alive:
            content.append(_CLOSE)
        no_body = self._no_body = self.scope["method"] == "HEAD" or status in (204, 304)
        self.chunked_encoding = chunked and not no_body
        if self.chunked_encoding:
            content.append(_CHUNKED)
        content.append(b"\r\n")
        return b"".join(content)

    def _write_head(self) -> None:
        self._flush = None
        if self._head is not None and not self.disconnected and not self.transport.is_closing():
            self.transport.write(self._head)
        self._head = None

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected 'http.response.start', got {message['type']!r}.")
            self.response_started = True
            self.waiting_for_100_continue = False
            self.status = message["status"]
            self._head = self._head_bytes(self.status, message.get("headers", ()))
            # Written with the first body chunk; if that is not sent in this turn of the loop (a
            # streamed answer waiting on its upstream), the head goes out alone right after.
            self._flush = asyncio.get_running_loop().call_soon(self._write_head)
            return
        if self.response_complete or message["type"] != "http.response.body":
            raise RuntimeError(f"Unexpected ASGI message {message['type']!r}.")
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        out = [self._head] if self._head is not None else []
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._head = None
        if self._no_body:  # a Content-Length here describes the body not sent (HEAD, 304)
            self.expected_content_length = 0
        elif self.chunked_encoding:
            if body:
                out += (b"%x\r\n" % len(body), body, b"\r\n")
            if not more_body:
                out.append(b"0\r\n\r\n")
        elif body:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            out.append(body)
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's protocol, with ``/api/`` HTTP requests given to a ``ProxyCycle``."""

    cycle_class: type[ProxyCycle]

    def on_headers_complete(self) -> None:
        if self.limit_concurrency is not None or self.parser.should_upgrade():
            super().on_headers_complete()
            return
        parsed = httptools.parse_url(self.url)
        raw_path = parsed.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        if not path.startswith("/api/"):
            super().on_headers_complete()
            return
        # What the parent does for any request (scope, cycle, pipelining), with the proxy cycle.
        scope = self.scope
        http_version = self.parser.get_http_version()
        scope["method"] = self.parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed.query or b""
        existing = self.cycle
        self.cycle = self.cycle_class(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and self.parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        if existing is None or existing.response_complete:
            self._start_asgi_task(self.cycle, self.app)
        else:  # a pipelined request waits for the one before it
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))


def protocol_for(gateway: Gateway, health: Health) -> type[GatewayProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to this app's gateway."""
    cycle = type("BoundProxyCycle", (ProxyCycle,), {"gateway": gateway, "health": health})
    return type("BoundGatewayProtocol", (GatewayProtocol,), {"cycle_class": cycle})
