"""The gateway's upstream client against raw HTTP servers that answer the way real ones may.

What the proxy relies on: connections are reused and bounded, an informational answer (100 Continue)
is skipped, a body that ends with the connection is read whole, a connection the server closed while
idle is never written into, and a refused connection is told apart from one that broke.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from localdev.servers import free_port
from services.api_gateway.upstream import ConnectFailed, ConnectionBroken, Pool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A server on a free port running ``handler`` per connection; yields (port, connection counter)."""
    opened = [0]

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened[0] += 1
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(counted, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], opened
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


def pool(port: int, **options: float) -> Pool:
    settings = {"limit": 4, "keepalive_s": 15.0, "connect_timeout": 2.0, "read_timeout": 5.0} | options
    return Pool("127.0.0.1", port, **settings)  # type: ignore[arg-type]


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request on the connection with a short body, after a moment's work."""
    while True:
        try:
            await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        await asyncio.sleep(0.01)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()


async def test_connections_are_reused_and_never_more_than_the_limit() -> None:
    async with raw_server(keep_alive) as (port, opened):
        upstream = pool(port, limit=2)
        for _ in range(5):  # one after another: one connection
            answer = await upstream.request("GET", "/a", [])
            assert (answer.status, await answer.read()) == (200, b"ok")
            answer.release()
        assert opened[0] == 1

        async def one() -> bytes:
            answer = await upstream.request("GET", "/b", [])
            try:
                return await answer.read()
            finally:
                answer.release()

        assert await asyncio.gather(*(one() for _ in range(20))) == [b"ok"] * 20
        assert opened[0] == 2  # 20 at once waited for the pool's two
        await upstream.close()


async def test_a_100_continue_is_skipped_and_a_body_ending_with_the_connection_is_read_whole() -> None:
    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Seen: " + str(len(request)).encode() + b"\r\n\r\n")
        writer.write(b"part one, ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"part two")  # no length, not chunked: the close ends it

    async with raw_server(answers) as (port, opened):
        upstream = pool(port)
        answer = await upstream.request("POST", "/c", [("Expect", "100-continue")], b"payload")
        assert answer.status == 200 and dict(answer.raw_headers)[b"X-Seen"]
        assert await answer.read() == b"part one, part two"
        answer.release()
        # That connection ended with its body: the next request opens another.
        second = await upstream.request("GET", "/d", [])
        assert await second.read() == b"part one, part two"
        second.release()
        assert opened[0] == 2
        await upstream.close()


async def test_an_idle_connection_the_server_closed_is_not_written_into() -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)  # keep-alive was promised, then the server closes it while idle

    async with raw_server(one_then_close) as (port, opened):
        upstream = pool(port)
        for _ in range(3):
            answer = await upstream.request("POST", "/e", [], b"not idempotent")
            assert await answer.read() == b"ok"
            answer.release()
            await asyncio.sleep(0.2)  # the close arrives while the connection sits in the pool
        assert opened[0] == 3
        await upstream.close()


async def test_a_refused_connection_is_not_a_broken_one() -> None:
    upstream = pool(free_port())
    with pytest.raises(ConnectFailed):
        await upstream.request("POST", "/f", [], b"x")

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.transport.abort()  # the request went out, no answer comes

    async with raw_server(reset) as (port, _):
        with pytest.raises(ConnectionBroken):
            await pool(port).request("POST", "/g", [], b"x")
