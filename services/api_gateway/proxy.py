"""The gateway's hot path: a pure ASGI handler for ``/api/...`` in front of the FastAPI router.

Per request: match the route table, verify the bearer token unless the route is public (verified
tokens are cached briefly in-process), check the client's rate limit (local lease, see ratelimit.py),
then forward over a pooled keep-alive aiohttp session of that upstream with the request id. A refused
connection (nothing was sent) is retried for any method, other connection failures for idempotent
methods only, within the same overall deadline; a timeout is a 504 and an unreachable or broken
upstream a 502, each with a JSON body naming the service. Building no Starlette Request/Response
objects here keeps the gateway's own cost low.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
import orjson
from multidict import CIMultiDict
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send
from yarl import URL

from services.api_gateway.ratelimit import RateLimiter
from services.api_gateway.routes_table import Route
from services.api_gateway.settings import GatewaySettings
from services.common.auth import InvalidToken, TokenVerifier, bearer_token
from services.common.errors import error_body
from services.common.logs import REQUEST_ID_HEADER, request_id_var
from services.common.metrics import PATH_LABEL_KEY

log = logging.getLogger("venta.gateway")
UPSTREAM = Counter("gateway_upstream_requests_total", "Requests forwarded", ["upstream", "outcome"])

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
        "host",
        "content-length",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
    }
)
_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in _HOP_BY_HOP)
_JSON = (b"content-type", b"application/json")
GATEWAY_AGENT = "venta-api-gateway"


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str
    session: aiohttp.ClientSession


async def send_json(
    send: Send, status: int, body: dict[str, object], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", str(len(payload)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def upstream_headers(scope: Scope, client_ip: str) -> tuple[CIMultiDict[str], str | None]:
    """The headers to send upstream, and the client's ``Authorization`` value, in one pass.

    Hop-by-hop headers stay behind; ``X-Forwarded-*`` and the request id are set by the gateway.
    ``Accept-Encoding`` and ``User-Agent`` are always present, so aiohttp adds none of its own (a
    compressed answer to a client that did not ask for one) without its per-request
    ``skip_auto_headers`` bookkeeping.
    """
    out: CIMultiDict[str] = CIMultiDict()
    authorization = forwarded_for = host = None
    encoding = agent = False
    for raw_name, raw_value in scope["headers"]:
        value = raw_value.decode("latin-1")
        if raw_name == b"authorization":
            authorization = value
        elif raw_name == b"x-forwarded-for":
            forwarded_for = value
        elif raw_name == b"host":
            host = value
        elif raw_name == b"accept-encoding":
            encoding = True
        elif raw_name == b"user-agent":
            agent = True
        if raw_name not in _HOP_BY_HOP_BYTES:
            out.add(raw_name.decode("latin-1"), value)
    if not encoding:
        out["Accept-Encoding"] = "identity"
    if not agent:
        out["User-Agent"] = GATEWAY_AGENT
    out["X-Forwarded-For"] = f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip
    out["X-Forwarded-Proto"] = scope.get("scheme", "http")
    if host is not None:
        out["X-Forwarded-Host"] = host
    out[REQUEST_ID_HEADER] = request_id_var.get()
    return out, authorization


class Gateway:
    """Route table + clients. ``open()``/``close()`` run in the app's lifespan."""

    def __init__(self, settings: GatewaySettings, routes: tuple[Route, ...]) -> None:
        self.settings = settings
        self.routes = routes
        self.verifier = TokenVerifier(settings.jwt_public_key, cache_seconds=settings.token_cache_seconds)
        self.upstreams: dict[str, Upstream] = {}
        self._default_timeout = aiohttp.ClientTimeout(
            total=settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
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
                timeout=self._default_timeout,
                connector=connector,
                auto_decompress=False,
                # A shared session must not keep one client's cookies and send them with another's requests.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            base_url = self.settings.upstream_url(route.service)
            self.upstreams[route.service] = Upstream(route.service, base_url, session)

    async def close(self) -> None:
        await asyncio.gather(*(upstream.session.close() for upstream in self.upstreams.values()))

    def route_for(self, path: str) -> Route | None:
        for route in self.routes:
            if route.matches(path):
                return route
        return None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route = self.route_for(path)
        if route is None:
            await send_json(send, 404, error_body(404, f"no service serves {path}"))
            return
        scope[PATH_LABEL_KEY] = route.label
        method: str = scope["method"]
        client_ip = scope["client"][0] if scope.get("client") else "unknown"
        headers, authorization = upstream_headers(scope, client_ip)
        try:
            # The rate limit counts per user when the caller has a valid token, else per address.
            if authorization is None and route.is_public(method, path):
                client = "ip:" + client_ip
            else:
                client = "user:" + self.verifier.verify(bearer_token(authorization)).user_id
        except InvalidToken as exc:
            if not route.is_public(method, path):
                await send_json(send, 401, error_body(401, str(exc)), ((b"www-authenticate", b"Bearer"),))
                return
            client = "ip:" + client_ip  # a public route ignores a bad token; the service may still judge it
        assert self.limiter is not None
        wait = await self.limiter.hit(client)
        if wait:
            await send_json(
                send,
                429,
                error_body(429, "rate limit exceeded; retry later", retry_after=wait),
                ((b"retry-after", str(wait).encode()),),
            )
            return
        limit = self.settings.upload_max_bytes if route.uploads else self.settings.max_body_bytes
        try:
            body = await read_body(receive, limit)
        except BodyTooLarge:
            await send_json(send, 413, error_body(413, f"body exceeds {limit} bytes"))
            return
        await self._forward(scope, send, route, method, headers, body)

    async def _forward(
        self,
        scope: Scope,
        send: Send,
        route: Route,
        method: str,
        headers: CIMultiDict[str],
        body: bytes,
    ) -> None:
        upstream = self.upstreams[route.service]
        # The raw (still percent-encoded) path goes on unchanged, so %2F and friends keep their meaning.
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = upstream.base_url + route.upstream_path(raw_path.decode("latin-1"))
        query = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        url = URL(target, encoded=True)
        timeout = self.settings.upstream_timeout_seconds
        deadline = time.monotonic() + timeout
        attempts = 1 + self.settings.upstream_retries
        for attempt in range(1, attempts + 1):
            # The first attempt uses the session's timeout; a retry gets only what is left of it.
            per_try = (
                self._default_timeout
                if attempt == 1
                else aiohttp.ClientTimeout(
                    total=deadline - time.monotonic(), connect=self.settings.upstream_connect_timeout_seconds
                )
            )
            try:
                async with upstream.session.request(
                    method,
                    url,
                    data=body or None,
                    headers=headers,
                    allow_redirects=False,
                    timeout=per_try,
                ) as response:
                    payload = await response.read()
                    status = response.status
                    raw_headers = response.raw_headers
            except TimeoutError:
                UPSTREAM.labels(route.service, "timeout").inc()
                await send_json(
                    send,
                    504,
                    error_body(
                        504, f"{route.service} did not answer within {timeout:g} s", upstream=route.service
                    ),
                )
                return
            except aiohttp.ClientError as exc:
                # A refused connection sent nothing, so any method may be tried again (a replica
                # that just stopped listening while a balancer still sends to it); after a request
                # went out, only an idempotent one may.
                refused = isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
                    exc, aiohttp.ClientSSLError
                )
                retry = refused or method in IDEMPOTENT
                if retry and attempt < attempts and deadline - time.monotonic() > 0.05:
                    UPSTREAM.labels(route.service, "retried").inc()
                    await asyncio.sleep(0.02 * attempt)
                    continue
                UPSTREAM.labels(route.service, "unavailable").inc()
                log.warning("upstream failed", extra={"upstream": route.service, "error": repr(exc)})
                await send_json(
                    send, 502, error_body(502, f"{route.service} is unavailable", upstream=route.service)
                )
                return
            break
        response_headers = [(k, v) for k, v in raw_headers if k.lower() not in _HOP_BY_HOP_BYTES]
        response_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})


class GatewayMiddleware:
    """Sends ``/api/...`` to the gateway; everything else (health, metrics, docs) to the FastAPI app."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.gateway.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)
