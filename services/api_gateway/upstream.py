"""HTTP/1.1 to one upstream over pooled keep-alive connections: the gateway's proxy path, nothing more.

aiohttp's client (session, connector, request and response objects, a stream reader per response,
timers per read) was a quarter of the gateway's CPU per proxied request in py-spy profiles. This
client keeps what the proxy needs: a pool of at most ``limit`` connections per upstream, reused
newest first while idle for less than ``keepalive_s`` (shorter than the services' own keep-alive, so
the gateway never reuses a connection a service is closing); one write per small request; replies
parsed by httptools (llhttp, as uvicorn does) as they arrive; a response body read whole or streamed
with back-pressure (reading from the upstream pauses while the client is slower).

Failures are told apart the way retries need them: ``ConnectFailed`` when nothing was sent (refused,
unreachable: any method may go again), ``ConnectionBroken`` once the request may have reached the
service (only an idempotent one may), ``TimeoutError`` when connecting takes longer than
``connect_timeout`` or the upstream is silent for ``read_timeout`` once the request is sent. A
request body that is an async iterator streams (``Content-Length`` when the caller knows it, chunked
otherwise) while the response is awaited, so an upstream that answers before reading it all (a 413)
is heard at once; an exception the iterator raises (a body refused at the edge) reaches the caller
as it is, and the connection is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import httptools

HIGH_WATER = 64 * 1024  # response bytes buffered before reading from the upstream pauses
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UpstreamError(Exception):
    """The upstream could not be reached, or its connection failed."""


class ConnectFailed(UpstreamError):
    """No connection was made, so nothing of the request was sent."""


class ConnectionBroken(UpstreamError):
    """The connection failed after the request started going out (or its answer was malformed)."""


class _Connection(asyncio.Protocol):
    """One socket to the upstream; one request at a time."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._writable: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self._informational = False
        self._body: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._reading_paused = False

    # ------------------------------------------------------------ transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionBroken(f"malformed answer: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        if self.headers_done and exc is None and not self._framed():
            self.complete = True  # a body without length or chunks ends where the connection does
            self.keep_alive = False
            self._wake()
        if not self.complete:
            self._fail(ConnectionBroken(f"connection closed by the upstream{f': {exc}' if exc else ''}"))
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _framed(self) -> bool:
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (
                lowered == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                return True
        return self.status in (204, 304)

    # ------------------------------------------------------------ parser callbacks

    def on_message_begin(self) -> None:
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if 100 <= self.status < 200 and self.status != 101:
            self._informational = True  # 100 Continue and friends: the answer comes after
            return
        self.keep_alive = self._parser.should_keep_alive()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.complete = True
        self._wake()

    # ------------------------------------------------------------ waiting

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError(f"no answer from the upstream within {self._pool.read_timeout:g} s"))

    async def wait(self, timed: bool = True) -> None:
        """Until the parser has more (headers, a chunk, the end); TimeoutError after read_timeout
        (``timed=False`` while the request body is still going out: the upstream may not answer
        before it has it all)."""
        if self._error is not None:
            raise self._error
        self._waiter = waiter = self._loop.create_future()
        timer = self._timer = (
            self._loop.call_later(self._pool.read_timeout, self._timed_out) if timed else None
        )
        try:
            await waiter
        finally:
            # A wait cancelled late (the body writer finished first) must not clear its successor's.
            if self._waiter is waiter:
                self._waiter = None
            if timer is not None:
                timer.cancel()
                if self._timer is timer:
                    self._timer = None

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable
        if self._error is not None:
            raise self._error
        if self.closed:
            raise ConnectionBroken("connection closed by the upstream while sending the request")

    def take(self) -> bytes | None:
        """The next buffered body chunk, or None when nothing is buffered."""
        if not self._body:
            return None
        chunk = self._body.popleft()
        self._buffered -= len(chunk)
        if self._reading_paused and self._buffered <= HIGH_WATER // 4 and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        if self._error is not None:
            raise self._error
        if self.closed:
            raise ConnectionBroken("connection closed by the upstream")
        self.transport.write(data)

    def begin(self) -> None:
        """Ready for the next request on this connection."""
        self._reset()
        self._error = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Response:
    """The upstream's answer: status and raw headers now, the body through ``read`` or ``chunks``."""

    def __init__(
        self, pool: Pool, connection: _Connection, head: bool, writer: asyncio.Task[None] | None
    ) -> None:
        self._pool = pool
        self._connection = connection
        self._head = head
        self._writer = writer
        self.status = connection.status
        self.raw_headers = connection.headers
        self.content_length: int | None = None
        for name, value in connection.headers:
            if name.lower() == b"content-length" and value.isdigit():
                self.content_length = int(value)
        self._released = False

    @property
    def has_body(self) -> bool:
        return not self._head and self.status not in (204, 304)

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        if not self.has_body:
            return
        connection = self._connection
        while True:
            chunk = connection.take()
            if chunk is not None:
                yield chunk
            elif connection.complete:
                return
            else:
                await connection.wait()

    def release(self) -> None:
        """Back to the pool when the exchange finished cleanly, else closed."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        writer_done = self._writer is None or (self._writer.done() and not self._writer.cancelled())
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        reusable = connection.complete and connection.keep_alive and not self._head and writer_done
        self._pool.put_back(connection, reusable)


class Pool:
    """Connections to one upstream (``host:port``), at most ``limit`` open at once."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        limit: int,
        keepalive_s: float,
        connect_timeout: float,
        read_timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls
        self.host_header = f"Host: {host}:{port}\r\n".encode("latin-1")
        self.limit = limit
        self.keepalive_s = keepalive_s
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    # ------------------------------------------------------------ connections

    async def _acquire(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive_s:
                connection.begin()
                return connection
            self._drop(connection)
        while self._open >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            if self._idle:
                return await self._acquire()
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._notify()
            raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.tls
                )
        except TimeoutError:
            raise TimeoutError(f"no connection to the upstream within {self.connect_timeout:g} s") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from exc
        return connection

    def put_back(self, connection: _Connection, reusable: bool) -> None:
        if reusable and not connection.closed and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            self._drop(connection)
        self._notify()

    def forget(self, connection: _Connection) -> None:
        """A connection closed by the other side while idle leaves the pool."""
        if connection in self._idle:
            self._idle.remove(connection)
            self._open -= 1
            self._notify()

    def _drop(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)
        connection.close()
        self._open -= 1

    def _notify(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._open -= len(self._idle)
        self._idle.clear()

    # ------------------------------------------------------------ requests

    def _head(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], length: int | None, chunked: bool
    ) -> list[bytes]:
        out = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), self.host_header]
        out += [f"{name}: {value}\r\n".encode("latin-1") for name, value in headers]
        if chunked:
            out.append(b"Transfer-Encoding: chunked\r\n")
        elif length is not None:
            out.append(b"Content-Length: %d\r\n" % length)
        out.append(b"\r\n")
        return out

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None = None,
        length: int | None = None,
    ) -> Response:
        """Send ``method target`` (path and query, already encoded) and wait for the answer's head.
        ``length`` is the declared length of a streamed body (None: chunked)."""
        connection = await self._acquire()
        writer: asyncio.Task[None] | None = None
        if connection.closed:  # closed by the upstream after it was taken: nothing was sent
            self.put_back(connection, reusable=False)
            raise ConnectFailed(f"connection to {self.host}:{self.port} closed before the request")
        try:
            if body is None or isinstance(body, bytes):
                size = len(body) if body else (0 if method in _BODY_METHODS else None)
                out = self._head(method, target, headers, size, chunked=False)
                if body:
                    out.append(body)
                connection.write(b"".join(out))
            else:
                head = self._head(method, target, headers, length, chunked=length is None)
                connection.write(b"".join(head))
                writer = asyncio.ensure_future(self._send_body(connection, body, chunked=length is None))
            while not connection.headers_done:
                await self._wait_head(connection, writer)
        except BaseException:
            if writer is not None and not writer.done():
                writer.cancel()
            self.put_back(connection, reusable=False)
            raise
        return Response(self, connection, method == "HEAD", writer)

    async def _wait_head(self, connection: _Connection, writer: asyncio.Task[None] | None) -> None:
        if writer is None or writer.done():
            if writer is not None and writer.exception() is not None:
                raise writer.exception()  # type: ignore[misc]
            await connection.wait()
            return
        waiting = asyncio.ensure_future(connection.wait(timed=False))
        try:
            await asyncio.wait((waiting, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiting.done():
                waiting.cancel()
        if writer.done() and writer.exception() is not None:
            raise writer.exception()  # type: ignore[misc]
        if waiting.done() and not waiting.cancelled():
            waiting.result()  # a timeout or a broken connection

    async def _send_body(self, connection: _Connection, body: AsyncIterable[bytes], chunked: bool) -> None:
        async for chunk in body:
            connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await connection.drain()
        if chunked:
            connection.write(b"0\r\n\r\n")
