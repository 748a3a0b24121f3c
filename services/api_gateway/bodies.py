"""Reading a client's request body at the edge: a size limit, a deadline and a minimum rate.

The body is read chunk by chunk from the ASGI ``receive`` as the upstream request consumes it, so the
gateway holds a chunk or two per request (uvicorn stops reading the socket while its buffer is full),
never a whole upload. A body that is too large (413), not complete by its deadline, or slower than
the minimum rate over a window (both 408) ends the read with ``BodyRefused``; the proxy then drops
the upstream request, so the service sees the upload cut off and keeps nothing of it. Each client
may have a bounded number of bodies in flight (``InFlight``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.types import Message, Receive


class BodyRefused(Exception):
    """The client's body broke a limit; ``status`` 0 means the client is gone (no answer possible)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    timeout_s: float
    min_rate: int  # bytes per second, judged over each window; 0: no minimum
    window_s: float


class BodyReader:
    """One request's body under ``limits``. ``started`` tells whether any of it was consumed."""

    def __init__(self, receive: Receive, limits: BodyLimits) -> None:
        self._receive = receive
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._deadline = now + limits.timeout_s
        self._window_end = now + limits.window_s
        self._window_bytes = 0
        self._need = int(limits.min_rate * limits.window_s)
        self._done = False
        self.started = False
        self.received = 0
        self.refused: BodyRefused | None = None  # kept: the HTTP client may wrap what we raise

    def _refuse(self, status: int, detail: str) -> BodyRefused:
        self.refused = BodyRefused(status, detail)
        return self.refused

    def _check_rate(self, now: float) -> None:
        if now < self._window_end:
            return
        if self._window_bytes < self._need:
            raise self._refuse(
                408,
                f"request body slower than {self._limits.min_rate} bytes/s"
                f" over {self._limits.window_s:g} s; upload cut",
            )
        self._window_end = now + self._limits.window_s
        self._window_bytes = 0

    async def _next_message(self) -> Message:
        while True:
            now = self._loop.time()
            if now >= self._deadline:
                raise self._refuse(408, f"request body not complete within {self._limits.timeout_s:g} s")
            self._check_rate(now)
            wake = self._deadline if self._need == 0 else min(self._deadline, self._window_end)
            try:
                async with asyncio.timeout_at(wake):
                    return await self._receive()
            except TimeoutError:
                continue  # the loop decides: deadline passed, window too slow, or a new window

    async def next_chunk(self) -> bytes | None:
        """The next non-empty chunk, or None once the body is complete."""
        while not self._done:
            self.started = True
            message = await self._next_message()
            if message["type"] == "http.disconnect":
                raise self._refuse(0, "client disconnected during the request body")
            chunk = message.get("body", b"")
            assert isinstance(chunk, bytes)
            self.received += len(chunk)
            self._window_bytes += len(chunk)
            if self.received > self._limits.max_bytes:
                raise self._refuse(413, f"body exceeds {self._limits.max_bytes} bytes")
            self._done = not message.get("more_body", False)
            if chunk:
                return chunk
        return None

    async def read_all(self) -> bytes:
        chunks = []
        while (chunk := await self.next_chunk()) is not None:
            chunks.append(chunk)
        return b"".join(chunks)

    async def stream(self) -> AsyncIterator[bytes]:
        while (chunk := await self.next_chunk()) is not None:
            yield chunk


class InFlight:
    """Counts each client's request bodies being read; ``slot`` refuses one over the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    @contextmanager
    def slot(self, client: str) -> Iterator[bool]:
        """Yields False (and takes nothing) when ``client`` already has ``limit`` bodies in flight."""
        count = self._counts.get(client, 0)
        if count >= self.limit:
            yield False
            return
        self._counts[client] = count + 1
        try:
            yield True
        finally:
            left = self._counts[client] - 1
            if left:
                self._counts[client] = left
            else:
                del self._counts[client]
