"""WebSocket upgrades through the gateway: ``/api/realtime/ws`` reaches real-time at one public address.

The token is checked at the edge as for HTTP (same route table; real-time verifies it again): from
the handshake's ``Authorization`` header before the upgrade is accepted (a bad one is an HTTP 401),
or, as browsers cannot set that header, from the protocol's first message ``{"type": "auth",
"token": ...}`` (a bad one closes with 1008), which then goes on to real-time as its first message.
Only then does the gateway open its own WebSocket to real-time and relay messages both ways.

Limits: open tunnels per user on this replica (1008 beyond), the client's message size (uvicorn's
``ws_max_size`` from ``WS_MAX_MESSAGE_BYTES``: 1009), real-time's message size
(``WS_MAX_UPSTREAM_MESSAGE_BYTES``), the time to authenticate and reach real-time
(``WS_HANDSHAKE_TIMEOUT_SECONDS``) and silence in both directions (``WS_IDLE_TIMEOUT_SECONDS``, 4408;
real-time pings every 20 s, so only a stuck path is silent that long). Close codes and reasons pass
through both ways; a real-time that vanishes without a close frame is 1014 (bad gateway) to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field, replace

import aiohttp
import orjson
from multidict import CIMultiDict
from prometheus_client import Counter, Gauge
from starlette.types import Message, Receive, Scope, Send

from services.api_gateway.proxy import Gateway, Incoming, Upstream, read_headers
from services.api_gateway.routes_table import Route
from services.common.auth import InvalidToken
from services.common.errors import error_body
from services.common.inputs import NUL_REASON, find_nul
from services.common.logs import REQUEST_ID_HEADER, request_id_var
from services.common.metrics import incoming_request_id

log = logging.getLogger("venta.gateway.websocket")
TUNNELS = Gauge("gateway_websockets", "WebSocket tunnels open through this gateway replica")
CLOSED = Counter("gateway_websocket_closed_total", "Tunnels ended, by whom, by code", ["by", "code"])

INVALID_DATA = 1007
POLICY = 1008
TRY_AGAIN_LATER = 1013
BAD_GATEWAY = 1014
IDLE = 4408
# Codes a close frame may not carry (RFC 6455 7.4.1): what each becomes when passed on.
_NOT_SENDABLE = {1005: 1000, 1006: 1001, 1015: 1001}
_MAX_REASON_BYTES = 123
# No receive timeout (the idle check covers silence); a close handshake gets 2 s.
_WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)
# Handshake headers the gateway does not pass on (aiohttp writes its own handshake).
_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "accept-encoding",
        "authorization",
    }
)


def _reason(text: str) -> str:
    encoded = text.encode()[:_MAX_REASON_BYTES]
    return encoded.decode("utf-8", "ignore")


def _sendable(code: int | None, fallback: int) -> int:
    if code is None:
        return fallback
    return _NOT_SENDABLE.get(code, code)


@dataclass(eq=False)
class Tunnel:
    user: str
    last_active: float = field(default_factory=time.monotonic)
    # Resolved with (code, reason) when the gateway itself ends the tunnel (idle, shutting down).
    ended: asyncio.Future[tuple[int, str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def end(self, code: int, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result((code, reason))


class Refused(Exception):
    """A tunnel this replica will not open: the HTTP status before the upgrade, the close code after."""

    def __init__(self, status: int, code: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class Tunnels:
    """The open tunnels of this replica: per-user and total counts, one idle check for all of them."""

    def __init__(self, per_user: int, total: int, idle_s: float) -> None:
        self.per_user = per_user
        self.total = total
        self.idle_s = idle_s
        self.open: set[Tunnel] = set()
        self._per_user: dict[str, int] = {}

    def admit(self, user: str) -> Tunnel:
        if self._per_user.get(user, 0) >= self.per_user:
            detail = f"too many WebSocket connections for this user (limit {self.per_user})"
            raise Refused(429, POLICY, detail)
        if len(self.open) >= self.total:
            raise Refused(503, TRY_AGAIN_LATER, "this gateway replica holds all the WebSockets it may")
        self._per_user[user] = self._per_user.get(user, 0) + 1
        tunnel = Tunnel(user)
        self.open.add(tunnel)
        TUNNELS.inc()
        return tunnel

    def release(self, tunnel: Tunnel) -> None:
        if tunnel in self.open:
            self.open.discard(tunnel)
            TUNNELS.dec()
            left = self._per_user[tunnel.user] - 1
            if left:
                self._per_user[tunnel.user] = left
            else:
                del self._per_user[tunnel.user]

    async def watch(self) -> None:
        """One loop for every tunnel (timers per connection would cost more than the relaying)."""
        while True:
            await asyncio.sleep(min(1.0, self.idle_s / 4))
            now = time.monotonic()
            for tunnel in list(self.open):
                if now - tunnel.last_active > self.idle_s:
                    tunnel.end(IDLE, f"no message either way for {self.idle_s:g} s")


async def deny(scope: Scope, send: Send, status: int, detail: str, code: int = POLICY) -> None:
    """Refuse an upgrade before accepting it: an HTTP answer where the server can send one."""
    if "websocket.http.response" in scope.get("extensions", {}):
        payload = orjson.dumps(error_body(status, detail))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": payload})
    else:
        await send({"type": "websocket.close", "code": code, "reason": _reason(detail)})


class WebSocketProxy:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        settings = gateway.settings
        self.tunnels = Tunnels(
            settings.ws_max_connections_per_user,
            settings.ws_max_connections,
            settings.ws_idle_timeout_seconds,
        )
        self.handshake_s = settings.ws_handshake_timeout_seconds
        self.max_upstream_message = settings.ws_max_upstream_message_bytes
        # Its own session: each tunnel holds an upstream connection for as long as it lives, which must
        # not take the HTTP routes' pooled connections (the tunnel count has its own bound).
        self.session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=10),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self.gateway.settings.upstream_connect_timeout_seconds
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = request_id_var.set(incoming_request_id(scope))
        try:
            await self._handle(scope, receive, send)
        finally:
            request_id_var.reset(token)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route = self.gateway.route_for(path)
        if (await receive())["type"] != "websocket.connect":
            return
        if route is None or not route.is_websocket(path):
            await deny(scope, send, 404, f"no WebSocket endpoint at {path}")
            return
        incoming = read_headers(scope)
        client_ip = self.gateway.client_ip(scope, incoming)
        first: str | None = None
        accepted = False
        if incoming.authorization is not None or route.is_public("GET", path):
            try:
                client = self.gateway.identify(route, "GET", path, incoming.authorization, client_ip)
            except InvalidToken as exc:
                await deny(scope, send, 401, f"authentication failed: {exc}")
                return
        else:
            # The token comes in the first message: accept, then read it within the handshake time.
            await send({"type": "websocket.accept"})
            accepted = True
            first, client_or_close = await self._first_message(route, path, receive, client_ip)
            if isinstance(client_or_close, tuple):
                await self._close_client(send, *client_or_close, by="gateway")
                return
            client = client_or_close
        try:
            await self._rate_limit(client)
            tunnel = self.tunnels.admit(client)
        except Refused as refused:
            if accepted:
                await self._close_client(send, refused.code, refused.detail, by="gateway")
            else:
                await deny(scope, send, refused.status, refused.detail, refused.code)
            return
        try:
            await self._run(scope, receive, send, route, incoming, client_ip, tunnel, first, accepted)
        finally:
            self.tunnels.release(tunnel)

    async def _rate_limit(self, client: str) -> None:
        """The rate limit counts an upgrade as one request of the client."""
        assert self.gateway.limiter is not None
        wait = await self.gateway.limiter.hit(client)
        if wait:
            raise Refused(429, POLICY, f"rate limit exceeded; retry in {wait} s")

    async def _first_message(
        self, route: Route, path: str, receive: Receive, client_ip: str
    ) -> tuple[str | None, str | tuple[int, str]]:
        """(the auth message, the client key) or (None, (close code, reason))."""
        try:
            async with asyncio.timeout(self.handshake_s):
                message = await receive()
        except TimeoutError:
            return None, (POLICY, f"authentication required within {self.handshake_s:g} s")
        if message["type"] == "websocket.disconnect":
            return None, (1000, "")
        text = message.get("text") or ""
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = None
        if (field := find_nul(parsed)) is not None:
            return None, (INVALID_DATA, f"{field or 'message'}: {NUL_REASON}")
        is_auth = isinstance(parsed, dict) and parsed.get("type") == "auth"
        if not is_auth or not isinstance(parsed.get("token"), str):
            return None, (POLICY, 'authentication required: send {"type": "auth", "token": ...} first')
        try:
            client = self.gateway.identify(route, "GET", path, f"Bearer {parsed['token']}", client_ip)
        except InvalidToken as exc:
            return None, (POLICY, f"authentication failed: {exc}")
        return text, client

    def _upstream_headers(self, incoming: Incoming, scope: Scope, client_ip: str) -> CIMultiDict[str]:
        kept: CIMultiDict[str] = CIMultiDict(
            (k, v) for k, v in incoming.headers.items() if k.lower() not in _HANDSHAKE
        )
        headers = self.gateway.forwarding_headers(scope, replace(incoming, headers=kept), client_ip)
        if incoming.authorization is not None:
            headers["Authorization"] = incoming.authorization
        headers[REQUEST_ID_HEADER] = request_id_var.get()
        return headers

    async def _connect(
        self, upstream: Upstream, scope: Scope, incoming: Incoming, client_ip: str
    ) -> aiohttp.ClientWebSocketResponse:
        url = upstream.base_url + scope["path"]
        query = scope.get("query_string", b"")
        if query:
            url += "?" + query.decode("latin-1")
        async with asyncio.timeout(self.handshake_s):
            assert self.session is not None
            return await self.session.ws_connect(
                url,
                headers=self._upstream_headers(incoming, scope, client_ip),
                protocols=tuple(scope.get("subprotocols", ())),
                max_msg_size=self.max_upstream_message,
                timeout=_WS_TIMEOUT,
                compress=0,
                autoping=True,
                heartbeat=None,
            )

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        incoming: Incoming,
        client_ip: str,
        tunnel: Tunnel,
        first: str | None,
        accepted: bool,
    ) -> None:
        upstream = self.gateway.upstreams[route.service]
        try:
            ws = await self._connect(upstream, scope, incoming, client_ip)
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = f"{route.service} is unavailable"
            if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status in (401, 403, 404, 429):
                detail = f"{route.service} refused the connection ({exc.status})"
            log.warning("websocket upstream failed", extra={"upstream": route.service, "error": repr(exc)})
            if accepted:
                await self._close_client(send, BAD_GATEWAY, detail, by="gateway")
            else:
                await deny(scope, send, 502, detail, BAD_GATEWAY)
            return
        try:
            if not accepted:
                await send({"type": "websocket.accept", "subprotocol": ws.protocol})
            if first is not None:
                await ws.send_str(first)
            await self._relay(receive, send, ws, tunnel)
        finally:
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close(code=1001)

    async def _relay(
        self, receive: Receive, send: Send, ws: aiohttp.ClientWebSocketResponse, tunnel: Tunnel
    ) -> None:
        from_client = asyncio.create_task(self._client_to_upstream(receive, ws, tunnel))
        from_upstream = asyncio.create_task(self._upstream_to_client(send, ws, tunnel))
        waiters: list[asyncio.Future[object]] = [from_client, from_upstream, tunnel.ended]  # type: ignore[list-item]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (from_client, from_upstream):
                task.cancel()
            for task in (from_client, from_upstream):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if from_client.done() and not from_client.cancelled() and from_client.exception() is None:
            code, reason = from_client.result()  # the client closed: real-time hears the same
            CLOSED.labels("client", str(code)).inc()
            with contextlib.suppress(Exception):
                await ws.close(code=_sendable(code, 1000), message=reason.encode())
            return
        if from_upstream.done() and not from_upstream.cancelled() and from_upstream.exception() is None:
            code, reason = from_upstream.result()
            await self._close_client(send, code, reason, by="upstream")
            return
        code, reason = tunnel.ended.result() if tunnel.ended.done() else (BAD_GATEWAY, "tunnel failed")
        await self._close_client(send, code, reason, by="gateway")
        with contextlib.suppress(Exception):
            await ws.close(code=1001, message=reason.encode()[:_MAX_REASON_BYTES])

    async def _client_to_upstream(
        self, receive: Receive, ws: aiohttp.ClientWebSocketResponse, tunnel: Tunnel
    ) -> tuple[int, str]:
        while True:
            message: Message = await receive()
            if message["type"] == "websocket.disconnect":
                return int(message.get("code", 1005)), str(message.get("reason") or "")
            tunnel.last_active = time.monotonic()
            text = message.get("text")
            if text is not None:
                await ws.send_str(text)
            else:
                await ws.send_bytes(message.get("bytes") or b"")

    async def _upstream_to_client(
        self, send: Send, ws: aiohttp.ClientWebSocketResponse, tunnel: Tunnel
    ) -> tuple[int, str]:
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": msg.data})
            elif kind is aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": msg.data})
            elif kind is aiohttp.WSMsgType.CLOSE:
                return _sendable(msg.data, 1000), str(msg.extra or "")
            elif kind is aiohttp.WSMsgType.ERROR and isinstance(msg.data, aiohttp.WebSocketError):
                return msg.data.code, str(msg.data)
            else:  # CLOSED or a dropped connection: real-time went away without a close frame
                return BAD_GATEWAY, "real-time connection lost"
            tunnel.last_active = time.monotonic()

    async def _close_client(self, send: Send, code: int, reason: str, *, by: str) -> None:
        CLOSED.labels(by, str(code)).inc()
        with contextlib.suppress(Exception):  # the client may be gone already
            await send({"type": "websocket.close", "code": _sendable(code, 1000), "reason": _reason(reason)})
