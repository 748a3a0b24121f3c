"""One Redis connection that concurrent requests share, for a service's hottest commands.

redis-py's asyncio client checks a connection out of its pool for every command, writes the command
on it and wakes up on that connection's own reply, through a retry wrapper and a stream reader:
about 50 us of service CPU per command here, against about 5 us on a connection that many requests
share.

``PipelinedRedis`` writes each command as soon as it is issued, so Redis starts on it while the
service prepares the next (buffering commands to the end of the loop turn was tried: Redis then
answered a whole batch only after running all of it, and the service sat idle meanwhile). Redis
answers in order, so replies, parsed by hiredis as they arrive (often many per read), go to the
callers in the order their commands went out; each caller awaits only its own reply.

Failures keep the connection in step or drop it: an error reply goes to its own caller; a dropped
connection or a reply overdue by ``timeout`` fails every command in flight on it, and the next
command opens a new connection. Commands that failed that way are retried, with backoff, up to
``retries`` times, so use it for commands that are safe to repeat (reads, and scripts written to be
idempotent). ``evalsha`` loads a script Redis no longer knows (after a restart) and runs it again.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import BusyLoadingError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float

BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 0.5


@dataclass(frozen=True)
class LuaScript:
    """A script known by its SHA1, so it can be called with ``EVALSHA`` and reloaded when missing."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


def _pack(command: tuple[Arg, ...]) -> bytes:
    """A command in RESP, packed by hiredis in C (floats keep their repr, bools are refused)."""
    packed: bytes = hiredis.pack_command(command)  # type: ignore[arg-type]  # its stub says a 1-tuple
    return packed


def _reply_error(message: str) -> Exception:
    """redis-py's exception for an error reply: a script Redis does not know and a Redis still loading
    its data after a restart (a ``ConnectionError``, so retried) get their own classes."""
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    if message.startswith("LOADING"):
        return BusyLoadingError(message)
    return ResponseError(message)


class _Connection(asyncio.Protocol):
    """One socket: commands written as they come, replies matched to them in order."""

    def __init__(self, timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.lost: BaseException | None = None

    @property
    def usable(self) -> bool:
        return self._transport is not None and self.lost is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports only quack like one

    def request(self, command: bytes) -> asyncio.Future[Any]:
        if self._transport is None or self.lost is not None:
            raise RedisConnectionError("connection to Redis is closed")
        self._transport.write(command)
        future: asyncio.Future[Any] = self._loop.create_future()
        if not self._waiting and self._watchdog is None:
            self._watchdog = self._loop.call_later(self._timeout, self._check_overdue)
        self._waiting.append((future, time.monotonic()))
        return future

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        while (reply := self._reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self._fail(RedisConnectionError("Redis sent a reply to no command"))
                return
            future, _ = waiting.popleft()
            if future.done():  # its caller was cancelled; the reply is read and dropped
                continue
            if isinstance(reply, ResponseError):
                future.set_exception(_reply_error(str(reply)))
            else:
                future.set_result(reply)

    def _check_overdue(self) -> None:
        self._watchdog = None
        if not self._waiting or self.lost is not None:
            return
        overdue_at = self._waiting[0][1] + self._timeout
        now = time.monotonic()
        if now >= overdue_at:
            self._fail(RedisTimeoutError(f"no reply from Redis within {self._timeout:g} s"))
        else:
            self._watchdog = self._loop.call_later(overdue_at - now, self._check_overdue)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def _fail(self, error: BaseException) -> None:
        if self.lost is None:
            self.lost = error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = self._waiting, collections.deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self._fail(RedisConnectionError("connection closed"))


class PipelinedRedis:
    """Commands from concurrent callers over one shared connection, opened on first use."""

    def __init__(
        self, url: str, *, timeout: float, connect_timeout: float, retries: int, client_name: str = ""
    ) -> None:
        options = self._options = parse_url(url)
        self._tls = url.startswith("rediss://")
        # Where Redis is, for error messages: never the URL itself, which may hold a password.
        self._where = options.get("path") or f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._retries = retries
        self._client_name = client_name
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, *args: Arg) -> Any:
        """One command's reply; error replies raise ``ResponseError`` (``NoScriptError`` for NOSCRIPT)."""
        return await self._send(_pack(args))

    async def evalsha(self, script: LuaScript, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        command = _pack(("EVALSHA", script.sha, len(keys), *keys, *args))
        try:
            return await self._send(command)
        except NoScriptError:
            await self._send(_pack(("SCRIPT", "LOAD", script.source)))
            return await self._send(command)

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _send(self, command: bytes) -> Any:
        attempt = 0
        while True:
            connection = self._connection
            try:
                if connection is None or not connection.usable:
                    connection = await self._connect()
                return await connection.request(command)
            except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
                if attempt >= self._retries:
                    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
                        raise
                    reason = str(exc) or type(exc).__name__  # a connect timeout has no message
                    raise RedisConnectionError(f"cannot reach Redis at {self._where}: {reason}") from exc
                await asyncio.sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))
                attempt += 1

    async def _connect(self) -> _Connection:
        async with self._connecting:  # callers arriving together share one new connection
            if self._connection is not None and self._connection.usable:
                return self._connection
            connection: _Connection | None = None
            try:
                async with asyncio.timeout(self._connect_timeout):
                    connection = await self._open()
                    await self._hello(connection)
            except BaseException:
                if connection is not None:  # a failed AUTH or a timeout during it
                    connection.close()
                raise
            self._connection = connection
            return connection

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        options = self._options

        def factory() -> _Connection:
            return _Connection(self._timeout)

        if "path" in options:
            _, protocol = await loop.create_unix_connection(factory, options["path"])
            return protocol
        tls = ssl.create_default_context() if self._tls else None
        _, protocol = await loop.create_connection(
            factory, options.get("host", "localhost"), options.get("port", 6379), ssl=tls
        )
        return protocol

    async def _hello(self, connection: _Connection) -> None:
        """AUTH, SELECT and CLIENT SETNAME as the URL and settings ask, before anyone else's command."""
        options = self._options
        setup: list[tuple[Arg, ...]] = []
        if options.get("password"):
            user = options.get("username")
            setup.append(("AUTH", user, options["password"]) if user else ("AUTH", options["password"]))
        if options.get("db"):
            setup.append(("SELECT", options["db"]))
        if self._client_name:
            setup.append(("CLIENT", "SETNAME", self._client_name))
        # Every reply is awaited before the first error is raised, so none is left unretrieved.
        replies = await asyncio.gather(
            *(connection.request(_pack(command)) for command in setup), return_exceptions=True
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
