"""The shared pipelined Redis connection against real Redis servers: replies reach their own callers,
failures stay with the commands they hit, and restarts, kills, stalls and cancellations leave the
connection in step."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvloop
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from localdev.servers import Server
from services.common.redis_pipeline import LuaScript, PipelinedRedis

# Keeps Redis busy for about `ms` milliseconds: Redis runs one script at a time, so every other
# command waits behind it, as it would behind a slow command or a stalled server.
BUSY = LuaScript(
    "local t = redis.call('TIME'); local start = t[1] * 1e6 + t[2]\n"
    "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start > tonumber(ARGV[1]) * 1000\n"
    "return 1"
)


@contextlib.asynccontextmanager
async def pipelined(url: str, **overrides: Any) -> AsyncIterator[PipelinedRedis]:
    options: dict[str, Any] = {"timeout": 5.0, "connect_timeout": 2.0, "retries": 3, **overrides}
    client = PipelinedRedis(url, **options)
    try:
        yield client
    finally:
        await client.aclose()


async def busy(url: str, ms: int) -> None:
    """Hold Redis for `ms` on a connection of its own."""
    other = Redis.from_url(url)
    try:
        await other.eval(BUSY.source, 0, ms)
    finally:
        await other.aclose()


async def each_caller_gets_its_own_reply(url: str) -> None:
    async with pipelined(url) as redis:
        replies = await asyncio.gather(*(redis.execute("ECHO", f"caller-{i}") for i in range(500)))
        assert replies == [f"caller-{i}".encode() for i in range(500)]
        assert await redis.execute("INCRBYFLOAT", "pipelined:f", 0.1) == b"0.1"  # floats go as their repr


async def test_concurrent_callers_get_their_own_replies(redis_url: str) -> None:
    await each_caller_gets_its_own_reply(redis_url)


def test_concurrent_callers_get_their_own_replies_on_uvloop(redis_url: str) -> None:
    # The services run on uvloop, whose transports are not asyncio's own classes.
    uvloop.run(each_caller_gets_its_own_reply(redis_url))


async def test_an_error_reply_goes_to_its_own_caller_only(redis_url: str) -> None:
    async with pipelined(redis_url) as redis:
        replies: tuple[Any, ...] = await asyncio.gather(
            redis.execute("ECHO", "before"),
            redis.execute("NO-SUCH-COMMAND"),
            redis.execute("ECHO", "after"),
            return_exceptions=True,
        )
        before, bad, after = replies
        assert (before, after) == (b"before", b"after")
        assert isinstance(bad, ResponseError) and "unknown command" in str(bad)
        with pytest.raises(TypeError):
            await redis.execute("SET", "k", True)  # a bool is refused, not sent as 1


async def test_a_script_redis_forgot_is_loaded_again(redis_url: str) -> None:
    echo = LuaScript("return ARGV[1] .. KEYS[1]")
    async with pipelined(redis_url) as redis:
        assert await redis.evalsha(echo, ["-key"], ["arg"]) == b"arg-key"
        await redis.execute("SCRIPT", "FLUSH")
        assert await redis.evalsha(echo, ["-key"], ["again"]) == b"again-key"


async def test_commands_in_flight_when_the_connection_is_killed_are_retried(redis_url: str) -> None:
    admin = Redis.from_url(redis_url)
    async with pipelined(redis_url, client_name="pipelined-test") as redis:
        await redis.execute("PING")
        # Commands queue behind a busy Redis, then their connection is killed under them.
        blocker = asyncio.create_task(busy(redis_url, 300))
        await asyncio.sleep(0.05)
        in_flight = [asyncio.create_task(redis.execute("INCR", "pipelined:n")) for _ in range(20)]
        await asyncio.sleep(0.05)
        await admin.execute_command("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
        await blocker
        replies = await asyncio.gather(*in_flight)
        # Each command ran once or, when its reply was lost with the connection, again: never lost.
        assert len(replies) == 20
        assert int(await redis.execute("GET", "pipelined:n")) >= 20
    await admin.aclose()


async def test_a_restarted_redis_costs_a_retry_and_a_down_one_a_clear_error(
    private_server: Callable[[str], Server],
) -> None:
    server = private_server("redis")
    async with pipelined(server.url, retries=2) as redis:
        assert await redis.execute("PING") == b"PONG"
        server.restart()
        assert await redis.execute("PING") == b"PONG"
        server.stop()
        with pytest.raises(RedisConnectionError, match=f"cannot reach Redis at 127.0.0.1:{server.port}"):
            await asyncio.wait_for(redis.execute("PING"), timeout=10)
        # The error names where Redis is, never the URL's password.
        async with pipelined(f"redis://svc:hunter2@127.0.0.1:{server.port}/0", retries=0) as guarded:
            with pytest.raises(RedisConnectionError) as refused:
                await guarded.execute("PING")
            assert "hunter2" not in str(refused.value)
        server.start()
        assert await redis.execute("PING") == b"PONG"


async def test_a_stalled_reply_times_out_and_the_next_command_gets_a_fresh_connection(redis_url: str) -> None:
    async with pipelined(redis_url, timeout=0.2, retries=0) as redis:
        await redis.execute("PING")
        blocker = asyncio.create_task(busy(redis_url, 600))
        await asyncio.sleep(0.05)
        with pytest.raises(RedisTimeoutError):
            await redis.execute("ECHO", "late")
        await blocker
        # The late reply arrived on the connection that was dropped, not on the one in use now.
        assert await redis.execute("ECHO", "next") == b"next"


async def test_a_cancelled_caller_leaves_the_replies_in_step(redis_url: str) -> None:
    async with pipelined(redis_url) as redis:
        await redis.execute("PING")
        blocker = asyncio.create_task(busy(redis_url, 200))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(redis.execute("ECHO", "gone"))
        await asyncio.sleep(0.02)
        gone.cancel()
        assert await redis.execute("ECHO", "mine") == b"mine"
        await blocker


async def test_credentials_and_database_come_from_the_url(private_server: Callable[[str], Server]) -> None:
    server = private_server("redis")
    admin = Redis.from_url(server.url)
    await admin.execute_command("ACL", "SETUSER", "svc", "on", ">s3cret", "~*", "+@all")
    base = server.url.removeprefix("redis://").rsplit("/", 1)[0]
    async with pipelined(f"redis://svc:s3cret@{base}/3", client_name="named") as redis:
        await redis.execute("SET", "where", "db3")
        clients = await admin.client_list(_type="normal")
        assert [(c["user"], c["db"]) for c in clients if c["name"] == "named"] == [("svc", "3")]
    assert await Redis.from_url(f"redis://{base}/3").get("where") == b"db3"
    async with pipelined(f"redis://svc:wrong@{base}/0", retries=0) as redis:
        with pytest.raises(ResponseError, match="WRONGPASS"):
            await redis.execute("PING")
    await admin.aclose()
