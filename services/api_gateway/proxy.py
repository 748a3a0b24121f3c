"""The gateway's hot path: a pure ASGI handler for ``/api/...`` in front of the FastAPI router.

Per request: match the route table, verify the bearer token unless the route is public (verified
tokens are cached briefly in-process), check the client's rate limit (local lease, see ratelimit.py),
then forward over a pooled keep-alive aiohttp session of that upstream with the request id. The
client is the connecting peer, or the address a trusted proxy forwarded (client_address.py).

Bodies stream in both directions: a request body is read from the client as the upstream request
consumes it, under a size limit, a deadline and a minimum rate (bodies.py), and a response body goes
out chunk by chunk as it arrives; small bodies (``BODY_BUFFER_MAX_BYTES``) are read whole, which costs
less per request and lets a failed connection be retried. A refused connection (nothing was sent) is
retried for any method, other connection failures for idempotent methods only, and either only while
the body can still be sent again, within the same overall deadline; a timeout is a 504 and an
unreachable or broken upstream a 502, each with a JSON body naming the service. A ``Location`` that
names an upstream is rewritten to the public path. Building no Starlette Request/Response objects
here keeps the gateway's own cost low. WebSocket upgrades go to websocket.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send
from yarl import URL

from services.api_gateway.bodies import BodyLimits, BodyReader, BodyRefused, InFlight
from services.api_gateway.client_address import ClientAddress
from services.api_gateway.ratelimit import RateLimiter
from services.api_gateway.routes_table import Route
from services.api_gateway.settings import GatewaySettings
from services.common.auth import InvalidToken, TokenVerifier, bearer_token
from services.common.errors import error_body, send_json
from services.common.logs import REQUEST_ID_HEADER, request_id_var
from services.common.metrics import CLIENT_KEY, PATH_LABEL_KEY

log = logging.getLogger("venta.gateway")
UPSTREAM = Counter("gateway_upstream_requests_total", "Requests forwarded", ["upstream", "outcome"])
BODIES = Counter("gateway_request_bodies_refused_total", "Request bodies refused at the edge", ["reason"])

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers the gateway sets itself (content-length only when it knows the length).
_SET_BY_GATEWAY = frozenset(
    {"host", "content-length", "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
)
_NOT_FORWARDED = frozenset(name.encode() for name in _HOP_BY_HOP | _SET_BY_GATEWAY)
# The request id goes back once: the gateway's own request context adds it.
_NOT_RETURNED = frozenset(name.encode() for name in _HOP_BY_HOP | {"x-request-id"})
_CLOSE = (b"connection", b"close")
GATEWAY_AGENT = "venta-api-gateway"
_STREAM_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str
    session: aiohttp.ClientSession
    internal_url: str  # where its probes answer (its internal port)

    @property
    def netloc(self) -> str:
        return urlsplit(self.base_url).netloc


@dataclass
class Incoming:
    """What the gateway needs from the client's request headers, read in one pass."""

    headers: CIMultiDict[str]  # to send upstream, before the gateway's own X-Forwarded-* and id
    authorization: str | None = None
    forwarded_for: str | None = None
    forwarded_proto: str | None = None
    forwarded_host: str | None = None
    host: str | None = None
    content_length: int | None = None
    chunked: bool = False

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


def read_headers(scope: Scope) -> Incoming:
    """Hop-by-hop headers stay behind; ``Accept-Encoding`` and ``User-Agent`` are always present, so
    aiohttp adds none of its own (a compressed answer to a client that did not ask for one) without
    its per-request ``skip_auto_headers`` bookkeeping."""
    incoming = Incoming(CIMultiDict())
    out = incoming.headers
    encoding = agent = False
    for raw_name, raw_value in scope["headers"]:
        value = raw_value.decode("latin-1")
        if raw_name == b"authorization":
            incoming.authorization = value
        elif raw_name == b"x-forwarded-for":
            # Several headers read as one list, in order.
            previous = incoming.forwarded_for
            incoming.forwarded_for = f"{previous}, {value}" if previous else value
        elif raw_name == b"x-forwarded-proto":
            incoming.forwarded_proto = value
        elif raw_name == b"x-forwarded-host":
            incoming.forwarded_host = value
        elif raw_name == b"host":
            incoming.host = value
        elif raw_name == b"content-length":
            incoming.content_length = int(value) if value.isdigit() else -1
        elif raw_name == b"transfer-encoding":
            incoming.chunked = "chunked" in value.lower()
        elif raw_name == b"accept-encoding":
            encoding = True
        elif raw_name == b"user-agent":
            agent = True
        if raw_name not in _NOT_FORWARDED:
            out.add(raw_name.decode("latin-1"), value)
    if not encoding:
        out["Accept-Encoding"] = "identity"
    if not agent:
        out["User-Agent"] = GATEWAY_AGENT
    return incoming


def peer_of(scope: Scope) -> str:
    return str(scope["client"][0]) if scope.get("client") else "unknown"


def may_retry(method: str, body: bytes | BodyReader | None, exc: aiohttp.ClientError) -> bool:
    """A refused connection sent nothing, so any method may go again (a replica that just stopped
    listening while a balancer still sends to it); after a request went out, only an idempotent one
    may. Either way the body must be one that can be sent again: none, read whole, or a stream not
    yet begun."""
    if isinstance(body, BodyReader) and body.started:
        return False
    refused = isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(exc, aiohttp.ClientSSLError)
    return refused or method in IDEMPOTENT


class ResponseBroken(Exception):
    """The upstream failed after the response had started: the client's connection is dropped."""


class Gateway:
    """Route table + clients. ``open()``/``close()`` run in the app's lifespan."""

    def __init__(self, settings: GatewaySettings, routes: tuple[Route, ...]) -> None:
        self.settings = settings
        self.routes = routes
        self.verifier = TokenVerifier(settings.jwt_public_key, cache_seconds=settings.token_cache_seconds)
        self.addresses = ClientAddress(settings.trusted_proxy_cidrs)
        self.in_flight = InFlight(settings.body_max_in_flight_per_client)
        self.upstreams: dict[str, Upstream] = {}
        # No total: an upload may take as long as its body deadline allows and a download as long as
        # the client reads. sock_read bounds the upstream's silence once the request is sent.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.upstream_connect_timeout_seconds,
            sock_read=settings.upstream_timeout_seconds,
        )
        self.limiter: RateLimiter | None = None

    def open(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        for route in self.routes:
            connector = aiohttp.TCPConnector(
                limit=self.settings.upstream_pool_size,
                # Shorter than the services' keep-alive (30 s), so we never reuse a connection they closed.
                keepalive_timeout=15,
                ttl_dns_cache=10,
            )
            session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=connector,
                auto_decompress=False,
                # A shared session must not keep one client's cookies and send them with another's requests.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self.upstreams[route.service] = Upstream(
                route.service,
                self.settings.upstream_url(route.service),
                session,
                self.settings.upstream_internal_url(route.service),
            )

    async def close(self) -> None:
        await asyncio.gather(*(upstream.session.close() for upstream in self.upstreams.values()))

    def route_for(self, path: str) -> Route | None:
        for route in self.routes:
            if route.matches(path):
                return route
        return None

    def client_ip(self, scope: Scope, incoming: Incoming) -> str:
        client = self.addresses.resolve(peer_of(scope), incoming.forwarded_for)
        scope[CLIENT_KEY] = client
        return client

    def identify(self, route: Route, method: str, path: str, authorization: str | None, ip: str) -> str:
        """The rate-limit key: per user with a valid token, else per address. InvalidToken when a
        route that needs a token has none that verifies (a public route ignores a bad one; the
        service may still judge it)."""
        if authorization is None and route.is_public(method, path):
            return "ip:" + ip
        try:
            return "user:" + self.verifier.verify(bearer_token(authorization)).user_id
        except InvalidToken:
            if not route.is_public(method, path):
                raise
            return "ip:" + ip

    def forwarding_headers(self, scope: Scope, incoming: Incoming, client_ip: str) -> CIMultiDict[str]:
        """The client's headers plus the gateway's: services see one address in X-Forwarded-For,
        the client's, and the scheme and host a trusted proxy reported."""
        headers = incoming.headers
        trusted = self.addresses.trusts(peer_of(scope))
        headers["X-Forwarded-For"] = client_ip
        headers["X-Forwarded-Proto"] = (trusted and incoming.forwarded_proto) or scope.get("scheme", "http")
        host = (trusted and incoming.forwarded_host) or incoming.host
        if host is not None:
            headers["X-Forwarded-Host"] = host
        headers[REQUEST_ID_HEADER] = request_id_var.get()
        return headers

    def body_limits(self, route: Route) -> BodyLimits:
        s = self.settings
        return BodyLimits(
            max_bytes=s.upload_max_bytes if route.uploads else s.max_body_bytes,
            timeout_s=s.body_timeout_seconds,
            min_rate=s.body_min_rate_bytes_per_second,
            window_s=s.body_rate_window_seconds,
        )

    async def rate_limited(self, send: Send, client: str) -> bool:
        assert self.limiter is not None
        wait = await self.limiter.hit(client)
        if wait:
            await send_json(
                send,
                429,
                error_body(429, "rate limit exceeded; retry later", retry_after=wait),
                ((b"retry-after", str(wait).encode()),),
            )
        return bool(wait)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route = self.route_for(path)
        if route is None:
            await send_json(send, 404, error_body(404, f"no service serves {path}"))
            return
        scope[PATH_LABEL_KEY] = route.label
        method: str = scope["method"]
        incoming = read_headers(scope)
        client_ip = self.client_ip(scope, incoming)
        try:
            client = self.identify(route, method, path, incoming.authorization, client_ip)
        except InvalidToken as exc:
            await send_json(send, 401, error_body(401, str(exc)), ((b"www-authenticate", b"Bearer"),))
            return
        if await self.rate_limited(send, client):
            return
        headers = self.forwarding_headers(scope, incoming, client_ip)
        if not incoming.has_body:
            await self._forward(scope, send, route, method, headers, None)
            return
        limits = self.body_limits(route)
        if incoming.content_length is not None and incoming.content_length > limits.max_bytes:
            await self._refuse_body(send, BodyRefused(413, f"body exceeds {limits.max_bytes} bytes"))
            return
        with self.in_flight.slot(client) as admitted:
            if not admitted:
                detail = f"more than {self.in_flight.limit} request bodies in flight; retry later"
                BODIES.labels("in_flight").inc()
                await send_json(send, 429, error_body(429, detail, retry_after=1), ((b"retry-after", b"1"),))
                return
            reader = BodyReader(receive, limits)
            body: bytes | BodyReader = reader
            length = incoming.content_length
            if length is not None and length <= self.settings.body_buffer_max_bytes:
                try:
                    body = await reader.read_all()
                except BodyRefused as exc:
                    await self._refuse_body(send, exc)
                    return
            elif length is not None:
                headers["Content-Length"] = str(length)
            await self._forward(scope, send, route, method, headers, body)

    async def _refuse_body(self, send: Send, refused: BodyRefused) -> None:
        reason = {0: "client_gone", 408: "too_slow", 413: "too_large"}.get(refused.status, "other")
        BODIES.labels(reason).inc()
        if refused.status:  # the rest of the body stays unread: the connection cannot be reused
            await send_json(send, refused.status, error_body(refused.status, refused.detail), (_CLOSE,))

    def _target(self, scope: Scope, route: Route, upstream: Upstream) -> URL:
        # The raw (still percent-encoded) path goes on unchanged, so %2F and friends keep their meaning.
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = upstream.base_url + route.upstream_path(raw_path.decode("latin-1"))
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        return URL(target, encoded=True)

    async def _forward(
        self,
        scope: Scope,
        send: Send,
        route: Route,
        method: str,
        headers: CIMultiDict[str],
        body: bytes | BodyReader | None,
    ) -> None:
        upstream = self.upstreams[route.service]
        url = self._target(scope, route, upstream)
        timeout = self.settings.upstream_timeout_seconds
        deadline = time.monotonic() + timeout
        attempts = 1 + self.settings.upstream_retries
        for attempt in range(1, attempts + 1):
            data = body.stream() if isinstance(body, BodyReader) else (body or None)
            try:
                async with upstream.session.request(
                    method, url, data=data, headers=headers, allow_redirects=False
                ) as response:
                    await self._relay(send, route, upstream, method, response)
                return
            except ResponseBroken:
                return
            except BodyRefused as exc:
                await self._refuse_body(send, exc)
                return
            except TimeoutError:
                if isinstance(body, BodyReader) and body.refused is not None:
                    await self._refuse_body(send, body.refused)
                    return
                UPSTREAM.labels(route.service, "timeout").inc()
                detail = f"{route.service} did not answer within {timeout:g} s"
                await send_json(send, 504, error_body(504, detail, upstream=route.service))
                return
            except aiohttp.ClientError as exc:
                if isinstance(body, BodyReader) and body.refused is not None:
                    await self._refuse_body(send, body.refused)
                    return
                if attempt < attempts and may_retry(method, body, exc) and deadline - time.monotonic() > 0.05:
                    UPSTREAM.labels(route.service, "retried").inc()
                    await asyncio.sleep(0.02 * attempt)
                    continue
                UPSTREAM.labels(route.service, "unavailable").inc()
                log.warning("upstream failed", extra={"upstream": route.service, "error": repr(exc)})
                await send_json(
                    send, 502, error_body(502, f"{route.service} is unavailable", upstream=route.service)
                )
                return

    def _response_headers(
        self, route: Route, upstream: Upstream, response: aiohttp.ClientResponse
    ) -> list[tuple[bytes, bytes]]:
        headers = []
        for name, value in response.raw_headers:
            lowered = name.lower()
            if lowered in _NOT_RETURNED:
                continue
            if lowered == b"location":
                value = public_location(value, upstream, route)
            headers.append((name, value))
        return headers

    async def _relay(
        self, send: Send, route: Route, upstream: Upstream, method: str, response: aiohttp.ClientResponse
    ) -> None:
        """Send the upstream's answer on: whole when small (one write), else chunk by chunk."""
        headers = self._response_headers(route, upstream, response)
        start = {"type": "http.response.start", "status": response.status, "headers": headers}
        length = response.content_length
        if method == "HEAD" or response.status in (204, 304):
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return
        if length is not None and length <= self.settings.body_buffer_max_bytes:
            payload = await response.read()  # a failure here is still a clean 502/504
            await send(start)
            await send({"type": "http.response.body", "body": payload})
            return
        await send(start)
        try:
            async for chunk in response.content.iter_chunked(_STREAM_CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (aiohttp.ClientError, TimeoutError) as exc:
            UPSTREAM.labels(route.service, "broken").inc()
            extra = {"upstream": route.service, "error": repr(exc)}
            log.warning("upstream broke off its response", extra=extra)
            raise ResponseBroken from exc
        await send({"type": "http.response.body", "body": b""})


def public_location(value: bytes, upstream: Upstream, route: Route) -> bytes:
    """A ``Location`` naming the upstream becomes the public path; anything else goes on unchanged."""
    text = value.decode("latin-1")
    parts = urlsplit(text)
    if parts.netloc != upstream.netloc:
        return value
    path = ("/api" + parts.path) if route.strip_api else parts.path
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")


class GatewayMiddleware:
    """Sends ``/api/...`` to the gateway (HTTP here, WebSocket upgrades to ``websockets``); anything
    else goes to the app, which serves nothing on the public port (404)."""

    def __init__(self, app: ASGIApp, gateway: Gateway, websockets: ASGIApp) -> None:
        self.app = app
        self.gateway = gateway
        self.websockets = websockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.gateway.handle(scope, receive, send)
        elif scope["type"] == "websocket" and scope["path"].startswith("/api/"):
            await self.websockets(scope, receive, send)
        else:
            await self.app(scope, receive, send)
