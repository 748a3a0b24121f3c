"""Location services under load, each figure beside a baseline measured in the same run.

(a) position updates/s through geolocation (owner check + Redis script + JetStream publish) beside
    redis-py writing the same data (GEOADD + last-seen ZADD) straight to Redis;
(b) nearby (nearest 20 within 5 km, 10,000 active vendors, about 4,500 inside 5 km) at 32 connections
    and at 1, beside the same service's /health/live through the same HTTP stack, in alternating
    rounds (the ratio is the median of the rounds' ratios; this shared machine's speed swings);
(c) real-time fan-out to 200 WebSocket clients at 100 and 200 updates/s posted to geolocation, the
    clients connected straight to real-time and then through api-gateway (the one public address), in
    the same run: p50/p99 from geolocation's accepted_at to arrival, losses, and the gateway's CPU
    per frame it delivered. Positions are posted to geolocation directly in both (one owner posts all
    of them, far over the gateway's per-user rate limit), so only the WebSocket path differs.

Cores: the services (geolocation, real-time, api-gateway; uvicorn + uvloop + httptools, one process
each) are pinned to CPU 0; the load side (wrk, the WebSocket clients, Redis, NATS, this script) to
CPU 1. Each wrk row also gives wrk's and Redis's CPU per request, the load core's share of the work.
Every figure line carries the 1-minute load average when it was taken.

    .venv/bin/python bench/location.py [--seconds 4] [--rounds 5] [--fanout-seconds 5]
        [--parts nearby,updates,fanout]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import orjson
from redis.asyncio import Redis

from localdev.servers import die_with_parent, free_port, running
from services.api_gateway.routes_table import ROUTES, upstream_setting
from services.common.auth import TokenIssuer, generate_seed, public_pem_from_seed
from services.geolocation.store import Keys

ROOT = Path(__file__).resolve().parents[1]
SERVICE_CPU, LOAD_CPU = {0}, {1}
CENTER = (52.52, 13.405)
KEYS = Keys()


def offset(north_m: float, east_m: float) -> tuple[float, float]:
    lat = CENTER[0] + north_m / 111_320.0
    return lat, CENTER[1] + east_m / (111_320.0 * math.cos(math.radians(CENTER[0])))


def uniform_ring(rng: random.Random, r_min: float, r_max: float) -> tuple[float, float]:
    """A point uniform in area between two radii around CENTER."""
    r = math.sqrt(rng.uniform(r_min**2, r_max**2))
    a = rng.uniform(0, 2 * math.pi)
    return offset(r * math.cos(a), r * math.sin(a))


# ---------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (immune to other load on its core)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU of this script's finished children (each wrk run, once subprocess.run has reaped it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Service:
    url: str
    internal_url: str  # probes and /health/live
    pid: int

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


@contextlib.contextmanager
def service(name: str, env: dict[str, str]) -> Iterator[Service]:
    port, internal_port = free_port(), free_port()
    full = {
        **os.environ,
        **env,
        "SERVICE_NAME": name,
        "PORT": str(port),
        "INTERNAL_PORT": str(internal_port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }

    def pin() -> None:
        die_with_parent()
        os.sched_setaffinity(0, SERVICE_CPU)

    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, after the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services", name], cwd=ROOT, env=full, preexec_fn=pin, stdout=log, stderr=log
    )
    url, internal_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{name} exited: {log.read().decode()[-2000:]}")
            with contextlib.suppress(OSError):
                import urllib.request

                if urllib.request.urlopen(f"{internal_url}/health/ready", timeout=2).status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready")
            time.sleep(0.2)
        yield Service(url, internal_url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float = float("nan")  # service CPU per request
    wrk_us: float = float("nan")  # the load generator's CPU per request
    redis_us: float = float("nan")  # Redis's CPU per request (it shares the load side's core)

    def row(self, label: str) -> str:
        return (
            f"  {label:<32} {self.rps:6.0f} req/s  p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms"
            f"  CPU us/req: service {self.cpu_us:4.0f}, wrk {self.wrk_us:3.0f}, Redis {self.redis_us:3.0f}"
            + (f"  non-2xx {self.errors}" if self.errors else "")
        )


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:  # wrk prints "-nan" when nothing completed
        return float("nan")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    url: str, connections: int, seconds: int, headers: dict[str, str], script: str | None = None
) -> WrkResult:
    cmd = [shutil.which("wrk") or "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            cmd += ["-s", lua.name]
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # The "Latency Distribution" lines, which start with the percentile (other lines end in "%").
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, p50, p99, int(bad.group(1)) if bad else 0, total)


def combined(runs: list[WrkResult]) -> WrkResult:
    """Several runs of one setting as one row: mean rate, median p50, worst p99, CPU per request
    over all requests."""
    total = sum(r.requests for r in runs)

    def per_request(field: str) -> float:
        return sum(getattr(r, field) * r.requests for r in runs) / max(1, total)

    return WrkResult(
        statistics.fmean(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        max(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
        total,
        per_request("cpu_us"),
        per_request("wrk_us"),
        per_request("redis_us"),
    )


def wrk_on(
    svc: Service,
    path: str,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    script: str | None = None,
    *,
    redis_pid: int,
    internal: bool = False,
) -> WrkResult:
    before = svc.cpu_seconds(), children_cpu_seconds(), cpu_seconds(redis_pid)
    result = wrk((svc.internal_url if internal else svc.url) + path, connections, seconds, headers, script)
    after = svc.cpu_seconds(), children_cpu_seconds(), cpu_seconds(redis_pid)
    per_request = [(b - a) / max(1, result.requests) * 1e6 for a, b in zip(before, after, strict=True)]
    result.cpu_us, result.wrk_us, result.redis_us = per_request
    return result


# ---------------------------------------------------------------- (a) and (b)


async def seed_nearby(redis: Redis, count: int, inside: int) -> None:
    rng = random.Random(42)
    now = time.time()
    pipe = redis.pipeline(transaction=False)
    for i in range(count):
        lat, lon = uniform_ring(rng, 0, 5000) if i < inside else uniform_ring(rng, 5050, 15_000)
        pipe.geoadd(KEYS.positions, (lon, lat, f"n{i}"))
        pipe.zadd(KEYS.last_seen, {f"n{i}": now})
    await pipe.execute()


async def register_vendors(redis: Redis, ids: list[str], owner: str) -> None:
    """What geolocation's vendor-event consumer would have written for these vendors."""
    pipe = redis.pipeline(transaction=False)
    for vendor_id in ids:
        pipe.hset(KEYS.vendor(vendor_id), mapping={"owner": owner, "active": "1"})
    await pipe.execute()


async def redis_py_write_rate(redis_url: str, concurrency: int, seconds: float) -> float:
    """The same writes as a position update (geo index + last-seen), straight from redis-py."""
    redis = Redis.from_url(redis_url, max_connections=concurrency)
    done = 0
    stop = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        rng = random.Random(w)
        while time.monotonic() < stop:
            vendor = f"r{rng.randrange(10_000)}"
            lat, lon = uniform_ring(rng, 20_000, 30_000)
            pipe = redis.pipeline(transaction=False)
            pipe.geoadd(KEYS.positions, (lon, lat, vendor))
            pipe.zadd(KEYS.last_seen, {vendor: time.time()})
            await pipe.execute()
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    rate = done / (time.monotonic() - started)
    await redis.aclose()
    return rate


UPDATE_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local id = "u" .. (counter % 10000)
  local lat = 52.20 + math.random() * 0.05
  local lon = 13.00 + math.random() * 0.05
  local body = string.format('{"lat": %.6f, "lon": %.6f}', lat, lon)
  -- a headers table given to wrk.format replaces the -H headers, so start from them
  local headers = {["Content-Type"] = "application/json"}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  return wrk.format("PUT", "/api/locations/vendors/" .. id, headers, body)
end
"""


# ---------------------------------------------------------------- (c) fan-out


_DECODED: dict[bytes, Any] = {}


class WsClient(asyncio.Protocol):
    """A minimal WebSocket client (text frames, no extensions): the load side must stay cheaper than
    the server it measures, and 200 clients of a full-featured library would not."""

    def __init__(self, on_updates: Callable[[list[dict[str, object]]], None]) -> None:
        self.on_updates = on_updates
        self.buf = bytearray()
        self.open = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.messages: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None
        self.transport.write(head + mask + masked)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buf[:end]:
                self.opened.set_exception(RuntimeError(self.buf[:end].decode(errors="replace")))
                return
            del self.buf[: end + 4]
            self.open = True
            self.opened.set_result(None)
        while len(self.buf) >= 2:
            opcode, length, pos = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if length == 126:
                if len(self.buf) < 4:
                    return
                length, pos = int.from_bytes(self.buf[2:4], "big"), 4
            elif length == 127:
                if len(self.buf) < 10:
                    return
                length, pos = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < pos + length:
                return
            payload = bytes(self.buf[pos : pos + length])
            del self.buf[: pos + length]
            if opcode == 1:
                self._text(payload)

    def _text(self, payload: bytes) -> None:
        # Most clients receive byte-identical frames: decode each distinct frame once.
        message = _DECODED.get(payload)
        if message is None:
            if len(_DECODED) > 4096:
                _DECODED.clear()
            message = _DECODED[payload] = orjson.loads(payload)
        if message["type"] == "updates":
            self.on_updates(message["updates"])
        elif message["type"] == "ping":
            self.send_text('{"type": "pong"}')
        else:
            self.messages.put_nowait(message)


async def ws_connect(
    port: int, token: str, on_updates: Callable[[list[dict[str, object]]], None]
) -> WsClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WsClient(on_updates), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert client.transport is not None
    client.transport.write(
        (
            f"GET /api/realtime/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(client.opened, 10)
    client.send_text(orjson.dumps({"type": "auth", "token": token}).decode())
    assert (await asyncio.wait_for(client.messages.get(), 10))["type"] == "ready"
    area = {"bbox": [CENTER[1] - 0.2, CENTER[0] - 0.2, CENTER[1] + 0.2, CENTER[0] + 0.2]}
    client.send_text(orjson.dumps({"type": "subscribe", "id": "all", "area": area}).decode())
    assert (await asyncio.wait_for(client.messages.get(), 10))["type"] == "subscribed"
    return client


@dataclass
class Phase:
    sent: dict[str, float] = field(default_factory=dict)  # vendor id -> fix time
    latencies: list[float] = field(default_factory=list)  # from the server's accepted_at
    from_fix: list[float] = field(default_factory=list)  # from the fix time stamped before the POST
    received: list[set[str]] = field(default_factory=list)
    cpu_s: float = 0.0  # real-time's CPU during the phase
    client_busy: float = 0.0  # share of a core the load side (clients + sender) used
    frames: int = 0  # update frames the clients received
    gateway_cpu_s: float = 0.0  # api-gateway's CPU during the phase (through the gateway only)
    load: float = 0.0  # 1-minute load average at the end of the phase


async def fanout(
    geo_url: str,
    ws_port: int,
    rt: Service,
    redis: Redis,
    issuer: TokenIssuer,
    clients: int,
    seconds: float,
    rates: tuple[int, ...],
    *,
    via: str,
    gateway: Service | None = None,
) -> list[tuple[int, Phase]]:
    """Clients connect to ``ws_port`` (real-time itself, or the gateway in front of it)."""
    owner = "fan-owner"
    vendor_ids = [f"fan-{via}-{rate}-{i}" for rate in rates for i in range(int(rate * seconds) + 10)]
    vendor_ids += [f"fan-{via}-warm-{i}" for i in range(WARM_UPDATES)]
    await register_vendors(redis, vendor_ids, owner)
    phase = Phase()

    def on_updates_for(index: int) -> Callable[[list[dict[str, object]]], None]:
        def on_updates(updates: list[dict[str, object]]) -> None:
            now = time.time()
            phase.frames += 1
            got = phase.received[index]
            for update in updates:
                vendor = str(update["vendor_id"])
                sent = phase.sent.get(vendor)
                if sent is not None and vendor not in got:
                    got.add(vendor)
                    phase.latencies.append(now - float(update["accepted_at"]))  # type: ignore[arg-type]
                    phase.from_fix.append(now - sent)

        return on_updates

    conns = [
        await ws_connect(ws_port, issuer.issue(f"viewer-{i}", "customer"), on_updates_for(i))
        for i in range(clients)
    ]
    results = []
    headers = {"Authorization": f"Bearer {issuer.issue(owner, 'vendor')}"}
    async with aiohttp.ClientSession(base_url=geo_url, headers=headers) as http:
        phase.received = [set() for _ in range(clients)]  # warm-up updates are not in phase.sent
        await _warm_up(http, phase, via)
        for rate in rates:
            phase.sent, phase.latencies, phase.from_fix, phase.frames = {}, [], [], 0
            phase.received = [set() for _ in range(clients)]
            accepted: dict[str, float] = {}
            cpu0, own0, wall0 = rt.cpu_seconds(), time.process_time(), time.monotonic()
            gw0 = gateway.cpu_seconds() if gateway else 0.0
            t0 = time.perf_counter()
            pending = []
            for seq in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, t0 + seq / rate - time.perf_counter()))
                vendor = f"fan-{via}-{rate}-{seq}"
                lat, lon = offset(random.uniform(-5000, 5000), random.uniform(-5000, 5000))
                fix = time.time()
                phase.sent[vendor] = fix
                body = {"lat": lat, "lon": lon, "timestamp": datetime.fromtimestamp(fix, UTC).isoformat()}
                pending.append(asyncio.create_task(_put(http, vendor, body, accepted, fix)))
            await asyncio.gather(*pending)
            await _quiet(phase)  # the tail arrives before losses are counted
            cpu = rt.cpu_seconds() - cpu0
            busy = (time.process_time() - own0) / (time.monotonic() - wall0)
            done = Phase(
                dict(accepted),
                list(phase.latencies),
                list(phase.from_fix),
                list(phase.received),
                cpu,
                busy,
                phase.frames,
                (gateway.cpu_seconds() - gw0) if gateway else 0.0,
                os.getloadavg()[0],
            )
            results.append((rate, done))
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    return results


WARM_UPDATES = 50


async def _warm_up(http: aiohttp.ClientSession, phase: Phase, via: str) -> None:
    """A few updates at a gentle pace first, so neither the services' first-request work (route and
    validator set-up) nor the client's connection pool filling up lands in the measured phases."""
    for i in range(WARM_UPDATES):
        lat, lon = offset(random.uniform(-500, 500), random.uniform(-500, 500))
        body = {"lat": lat, "lon": lon, "timestamp": datetime.now(UTC).isoformat()}
        await _put(http, f"fan-{via}-warm-{i}", body, {}, time.time())
        await asyncio.sleep(0.02)
    await _quiet(phase, still_s=1.0)


async def _quiet(phase: Phase, still_s: float = 3.0, limit_s: float = 60.0) -> None:
    """Wait until no update has arrived for ``still_s`` (or ``limit_s`` in all)."""
    deadline = time.monotonic() + limit_s
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < still_s:
        await asyncio.sleep(0.2)
        if len(phase.latencies) != seen:
            seen, since = len(phase.latencies), time.monotonic()


async def _put(
    http: aiohttp.ClientSession, vendor: str, body: dict[str, object], accepted: dict[str, float], fix: float
) -> None:
    async with http.put(f"/api/locations/vendors/{vendor}", json=body) as resp:
        if resp.status == 200:
            accepted[vendor] = fix


def pct(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000
        if len(values) > 1
        else float("nan")
    )


# ---------------------------------------------------------------- main


async def redis_usec_per_call(redis: Redis, command: str) -> float:
    stats = await redis.info("commandstats")
    return float(stats.get(f"cmdstat_{command}", {}).get("usec_per_call", float("nan")))


async def bench_nearby(
    redis: Redis, redis_pid: int, geo: Service, issuer: TokenIssuer, seconds: int, rounds: int
) -> None:
    await seed_nearby(redis, 10_000, 4_500)
    found = await redis.geosearch(KEYS.positions, longitude=CENTER[1], latitude=CENTER[0], radius=5000)
    print(f"\n(b) nearby: 10,000 active vendors, {len(found)} within 5 km of the query point; nearest 20")
    token = {"Authorization": f"Bearer {issuer.issue('bench-customer', 'customer')}"}
    path = f"/api/locations/nearby?lat={CENTER[0]}&lon={CENTER[1]}&radius_m=5000&limit=20"
    await redis.config_resetstat()
    for conns in (32, 1):
        # Short runs of each, alternating which goes first: the two see the same swings of a shared
        # machine, and each round's ratio compares runs seconds apart.
        nears: list[WrkResult] = []
        lives: list[WrkResult] = []
        for i in range(rounds):
            pair = [(nears, path, token, False), (lives, "/health/live", {}, True)]
            for into, url_path, headers, internal in pair if i % 2 == 0 else pair[::-1]:
                into.append(
                    wrk_on(geo, url_path, conns, seconds, headers, redis_pid=redis_pid, internal=internal)
                )
        ratios = sorted(n.rps / lv.rps for n, lv in zip(nears, lives, strict=True))
        print(combined(nears).row(f"nearby, {conns} connection(s)"))
        print(combined(lives).row(f"/health/live, {conns} connection(s)"))
        near, live = combined(nears), combined(lives)
        print(
            f"  -> nearby keeps {statistics.median(ratios):.0%} of /health/live's throughput (median of"
            f" {rounds} rounds, {ratios[0]:.0%}-{ratios[-1]:.0%}; target >= 70%);"
            f" by service CPU per request {live.cpu_us / near.cpu_us:.0%}"
        )
    script_us = await redis_usec_per_call(redis, "evalsha")
    await redis.config_resetstat()
    for _ in range(300):
        await redis.geosearch(
            KEYS.positions,
            longitude=CENTER[1],
            latitude=CENTER[0],
            radius=5000,
            unit="m",
            sort="ASC",
            count=20,
            withdist=True,
        )
    sorted_us = await redis_usec_per_call(redis, "geosearch")
    print(
        f"  Redis time per query: expanding-radius script {script_us:.0f} us (inner searches included)"
        f" vs one sorted 5 km GEOSEARCH {sorted_us:.0f} us: {sorted_us / script_us:.1f}x"
    )


async def bench_updates(
    redis: Redis, redis_url: str, redis_pid: int, geo: Service, issuer: TokenIssuer, seconds: int
) -> None:
    await register_vendors(redis, [f"u{i}" for i in range(10_000)], "bench-owner")
    owner = {"Authorization": f"Bearer {issuer.issue('bench-owner', 'vendor')}"}
    upd = wrk_on(geo, "/api/locations/vendors/u0", 32, seconds, owner, UPDATE_SCRIPT, redis_pid=redis_pid)
    base32 = await redis_py_write_rate(redis_url, 32, seconds)
    base1 = await redis_py_write_rate(redis_url, 1, seconds)
    print("\n(a) position updates (owner check + Lua write + JetStream publish with ack)")
    print(upd.row("through geolocation, 32 conns"))
    print(
        f"  redis-py, same writes (GEOADD + ZADD pipelined), 32 tasks: {base32:7.0f} writes/s"
        f"  -> service at {upd.rps / base32:.0%} of it"
    )
    print(
        f"  redis-py, same writes, 1 connection, one round trip each: {base1:7.0f} writes/s"
        f"  -> service at {upd.rps / base1:.0%} of it"
    )


def gateway_env(env: dict[str, str], rt: Service, geo: Service) -> dict[str, str]:
    """api-gateway in front of these two; the other routes point at a closed port."""
    upstreams = {route.service: "http://127.0.0.1:9" for route in ROUTES} | {
        "real-time": rt.url,
        "geolocation": geo.url,
    }
    gateway = {upstream_setting(name).upper(): url for name, url in upstreams.items()}
    return env | gateway | {"RATE_LIMIT_REQUESTS": "1000000000"}


def fanout_row(rate: int, via: str, phase: Phase, clients: int) -> str:
    expected = len(phase.sent) * clients
    lost = expected - sum(len(got & phase.sent.keys()) for got in phase.received)
    row = (
        f"  {rate} updates/s {via:<8} {len(phase.sent)} accepted, {expected} deliveries expected;"
        f" p50 {pct(phase.latencies, 50):5.1f} ms  p99 {pct(phase.latencies, 99):5.1f} ms  lost {lost};"
        f" real-time CPU {phase.cpu_s / max(1, expected) * 1e6:.0f} us per delivery;"
    )
    if via == "gateway":
        p99 = pct(phase.latencies, 99)
        met = "met" if p99 < 50 and lost == 0 else "MISSED"
        row += (
            f" gateway CPU {phase.gateway_cpu_s / max(1, phase.frames) * 1e6:.0f} us per frame"
            f" ({phase.frames} frames); target p99 < 50 ms, 0 lost: {met};"
        )
    return row + f" load side busy {phase.client_busy:.0%} of a core; load average {phase.load:.2f}"


async def bench_fanout(
    redis: Redis, geo: Service, rt: Service, gateway: Service, issuer: TokenIssuer, args: argparse.Namespace
) -> None:
    print(
        f"\n(c) fan-out: {args.clients} WebSocket clients subscribed to an area holding every update,"
        f" {args.fanout_seconds:g} s per rate, straight to real-time and through api-gateway;"
        " latency from geolocation's accepted_at to arrival"
    )
    rates = (100, 200)
    runs = {}
    for via, port, through in (
        ("direct", int(rt.url.rsplit(":", 1)[1]), None),
        ("gateway", int(gateway.url.rsplit(":", 1)[1]), gateway),
    ):
        runs[via] = await fanout(
            geo.url,
            port,
            rt,
            redis,
            issuer,
            args.clients,
            args.fanout_seconds,
            rates,
            via=via,
            gateway=through,
        )
    for index, rate in enumerate(rates):
        for via, phases in runs.items():
            print(fanout_row(rate, via, phases[index][1], args.clients))


async def main_async(args: argparse.Namespace) -> int:
    os.sched_setaffinity(0, LOAD_CPU)  # Redis and NATS below inherit this CPU
    seed = generate_seed()
    issuer = TokenIssuer(seed, 3600)
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
        " (other work was running on the same cores)"
    )
    with running("redis") as redis_server, running("nats") as nats_server:
        redis = Redis.from_url(redis_server.url)
        env = {
            "REDIS_URL": redis_server.url,
            "NATS_SERVERS": nats_server.url,
            "JWT_PUBLIC_KEY": public_pem_from_seed(seed),
        }
        with (
            service("geolocation", env) as geo,
            service("real-time", env) as rt,
            service("api-gateway", gateway_env(env, rt, geo)) as gateway,
        ):
            assert redis_server.proc is not None
            redis_pid = redis_server.proc.pid
            if "nearby" in args.parts:
                await bench_nearby(redis, redis_pid, geo, issuer, args.seconds, args.rounds)
            if "updates" in args.parts:
                await bench_updates(redis, redis_server.url, redis_pid, geo, issuer, args.seconds)
            if "fanout" in args.parts:
                await bench_fanout(redis, geo, rt, gateway, issuer, args)
        await redis.aclose()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


PARTS = ("nearby", "updates", "fanout")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating nearby / live runs per setting")
    parser.add_argument("--fanout-seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument(
        "--parts",
        type=lambda v: set(v.split(",")),
        default=set(PARTS),
        help="comma-separated subset of " + ",".join(PARTS),
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
