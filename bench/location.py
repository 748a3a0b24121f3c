"""Location services under load, each figure beside a baseline measured in the same run.

(a) position updates/s through geolocation (owner check + Redis script + JetStream publish) beside
    redis-py writing the same data (GEOADD + last-seen ZADD, pipelined from 32 tasks) straight to
    Redis, in alternating rounds;
(b) nearby (nearest 20 within 5 km, 10,000 active vendors, about 4,500 inside 5 km) at 32 connections
    and at 1, beside the same service's /health/live through the same HTTP stack, in alternating
    rounds (the ratio is the median of the rounds' ratios; this shared machine's speed swings);
(c) real-time fan-out to 200 WebSocket clients at 100 and 200 updates/s posted to geolocation, the
    clients connected straight to real-time and then through api-gateway (the one public address), in
    the same run: p50/p99 from geolocation's accepted_at to arrival, losses, and the gateway's CPU
    per frame it delivered. Positions are posted to geolocation directly in both (one owner posts all
    of them, far over the gateway's per-user rate limit), so only the WebSocket path differs.
(d) fan-out at city scale: 2,000 clients through api-gateway, spread over 4 processes
    (bench/ws_clients.py), each watching a 1 km circle at a random point of a 10 x 10 km city, and
    200 updates/s from 10,000 vendors spread over it, each update from a different vendor so that
    every delivery is accounted for: p50/p99, lost (what real-time's own circle test says a client
    should get and it did not), deliveries/s, real-time's CPU per delivery, the gateway's per frame.

Cores: the services (geolocation, real-time, api-gateway; uvicorn + uvloop + httptools, one process
each) are pinned to CPU 0; the load side (wrk, the WebSocket clients, Redis, NATS, this script) to
CPU 1. NATS holds geolocation and real-time to their subjects, each as its own user, as a cluster
does. Each wrk row also gives wrk's and Redis's CPU per request, the load core's share of the work.
Every figure line carries the 1-minute load average when it was taken; the end lists issue 21's
targets (nearby >= 80% of /health/live, updates >= 40% of redis-py, 200 clients p99 < 25 ms through
the gateway, 2,000 clients p99 < 100 ms, nothing lost), judged only when the load average was under 1
at the start. ``--batch-ms`` sets real-time's batching tick (REALTIME_BATCH_SECONDS).

    .venv/bin/python bench/location.py [--seconds 4] [--rounds 5] [--fanout-seconds 5]
        [--parts nearby,updates,fanout,city] [--city-clients 2000 --city-processes 4] [--batch-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import multiprocessing
import os
import random
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from measure import Target, load, machine_line, print_targets, profiling, summarize
from redis.asyncio import Redis
from ws_clients import city_clients, ws_connect

from localdev.servers import die_with_parent, free_port, running
from localdev.services import permissioned_nats
from services.api_gateway.routes_table import ROUTES, upstream_setting
from services.common.auth import TokenIssuer, generate_seed, public_pem_from_seed
from services.geolocation.store import Keys
from services.real_time.subscriptions import Circle

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

# The 200-client case: every client's area holds every update.
EVERYWHERE: dict[str, object] = {"bbox": [CENTER[1] - 0.2, CENTER[0] - 0.2, CENTER[1] + 0.2, CENTER[0] + 0.2]}


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
        await ws_connect(ws_port, issuer.issue(f"viewer-{i}", "customer"), on_updates_for(i), EVERYWHERE)
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
) -> list[Target]:
    await seed_nearby(redis, 10_000, 4_500)
    found = await redis.geosearch(KEYS.positions, longitude=CENTER[1], latitude=CENTER[0], radius=5000)
    print(f"\n(b) nearby: 10,000 active vendors, {len(found)} within 5 km of the query point; nearest 20")
    token = {"Authorization": f"Bearer {issuer.issue('bench-customer', 'customer')}"}
    path = f"/api/locations/nearby?lat={CENTER[0]}&lon={CENTER[1]}&radius_m=5000&limit=20"
    await redis.config_resetstat()
    targets = []
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
            f" {rounds} rounds, {ratios[0]:.0%}-{ratios[-1]:.0%}{'; target >= 80%' if conns == 32 else ''});"
            f" by service CPU per request {live.cpu_us / near.cpu_us:.0%}  (load {load():.2f})"
        )
        if conns == 32:
            targets.append(
                Target(
                    "nearby / /health/live throughput, 32 connections", statistics.median(ratios), 0.80, True
                )
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
    return targets


async def bench_updates(
    redis: Redis,
    redis_url: str,
    redis_pid: int,
    geo: Service,
    issuer: TokenIssuer,
    seconds: int,
    rounds: int,
    profile: Path | None = None,
) -> list[Target]:
    await register_vendors(redis, [f"u{i}" for i in range(10_000)], "bench-owner")
    owner = {"Authorization": f"Bearer {issuer.issue('bench-owner', 'vendor')}"}
    updates: list[WrkResult] = []
    bases: list[float] = []
    for i in range(rounds):  # alternating which goes first, as for nearby
        for step in ("service", "redis-py") if i % 2 == 0 else ("redis-py", "service"):
            if step == "service":
                path = "/api/locations/vendors/u0"
                updates.append(wrk_on(geo, path, 32, seconds, owner, UPDATE_SCRIPT, redis_pid=redis_pid))
            else:
                bases.append(await redis_py_write_rate(redis_url, 32, seconds))
    ratios = sorted(u.rps / b for u, b in zip(updates, bases, strict=True))
    upd, base32 = combined(updates), statistics.median(bases)
    base1 = await redis_py_write_rate(redis_url, 1, seconds)
    print("\n(a) position updates (owner check + Lua write + JetStream publish with ack)")
    print(upd.row("through geolocation, 32 conns"))
    print(
        f"  redis-py, same writes (GEOADD + ZADD pipelined), 32 tasks: {base32:7.0f} writes/s"
        f"  -> service at {statistics.median(ratios):.0%} of it (median of {rounds} rounds,"
        f" {ratios[0]:.0%}-{ratios[-1]:.0%}; target >= 40%)  (load {load():.2f})"
    )
    print(
        f"  redis-py, same writes, 1 connection, one round trip each: {base1:7.0f} writes/s"
        f"  -> service at {upd.rps / base1:.0%} of it"
    )
    if profile is not None:
        out = profile / "geolocation-updates-32.txt"
        path = "/api/locations/vendors/u0"
        with profiling(geo.pid, out, seconds * 2):
            again = wrk_on(geo, path, 32, seconds * 2, owner, UPDATE_SCRIPT, redis_pid=redis_pid)
        print(f"py-spy profile of geolocation under position updates ({again.rps:.0f}/s, load {load():.2f}):")
        print(summarize(out), flush=True)
    what = "position updates / redis-py pipelined writes, 32 conns"
    return [Target(what, statistics.median(ratios), 0.40, True)]


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
        row += (
            f" gateway CPU {phase.gateway_cpu_s / max(1, phase.frames) * 1e6:.0f} us per frame"
            f" ({phase.frames} frames);"
        )
    return row + f" load side busy {phase.client_busy:.0%} of a core; load average {phase.load:.2f}"


async def bench_fanout(
    redis: Redis, geo: Service, rt: Service, gateway: Service, issuer: TokenIssuer, args: argparse.Namespace
) -> list[Target]:
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
    busiest = runs["gateway"][-1][1]  # 200 updates/s through the gateway
    lost = len(busiest.sent) * args.clients - sum(len(got & busiest.sent.keys()) for got in busiest.received)
    what = f"fan-out, {args.clients} clients, {rates[-1]} updates/s via gateway"
    return [
        Target(f"{what}: p99 (ms)", pct(busiest.latencies, 99), 25.0, False, ".1f"),
        Target(f"{what}: lost", float(lost), 0.0, False, ".0f"),
    ]


# ---------------------------------------------------------------- (d) fan-out at city scale

CITY_HALF_M = 5000.0  # a 10 x 10 km city around CENTER
CITY_RADIUS_M = 1000.0  # what each client watches
CITY_VENDORS = 10_000


@dataclass(frozen=True)
class City:
    vendors: list[tuple[str, float, float]]  # id, lat, lon: spread uniformly over the city
    circles: list[tuple[float, float, float]]  # each client's circle: lat, lon, radius_m

    @classmethod
    def build(cls, clients: int, seed: int = 7) -> City:
        rng = random.Random(seed)

        def point() -> tuple[float, float]:
            return offset(rng.uniform(-CITY_HALF_M, CITY_HALF_M), rng.uniform(-CITY_HALF_M, CITY_HALF_M))

        vendors = [(f"city-{i}", *point()) for i in range(CITY_VENDORS)]
        return cls(vendors, [(*point(), CITY_RADIUS_M) for _ in range(clients)])

    def watchers(self) -> dict[str, list[int]]:
        """Vendor id -> the clients whose circle holds its position: what real-time must deliver,
        decided by real-time's own Circle. Clients are bucketed in 1 km cells, so each vendor is
        checked against the clients of the cells around it only."""

        def cell(lat: float, lon: float) -> tuple[int, int]:
            north = (lat - CENTER[0]) * 111_320.0
            east = (lon - CENTER[1]) * 111_320.0 * math.cos(math.radians(CENTER[0]))
            return math.floor(north / 1000.0), math.floor(east / 1000.0)

        grid: dict[tuple[int, int], list[tuple[int, Circle]]] = {}
        for index, (lat, lon, radius) in enumerate(self.circles):
            grid.setdefault(cell(lat, lon), []).append((index, Circle(lat, lon, radius)))
        reach = math.ceil(CITY_RADIUS_M / 1000.0) + 1
        found: dict[str, list[int]] = {}
        for vendor, lat, lon in self.vendors:
            row, col = cell(lat, lon)
            found[vendor] = [
                index
                for dr in range(-reach, reach + 1)
                for dc in range(-reach, reach + 1)
                for index, circle in grid.get((row + dr, col + dc), ())
                if circle.contains(lat, lon)
            ]
        return found


@dataclass
class CityRun:
    clients: int
    processes: int
    accepted: int
    expected: int
    received: int
    unexpected: int
    latencies: list[float]
    seconds: float  # posting window
    rt_cpu_s: float
    gateway_cpu_s: float
    geo_cpu_s: float
    frames: int
    load_side_cpu_s: float
    load: float
    closed: dict[int, int]  # close code -> clients the server closed (none expected)

    @property
    def lost(self) -> int:
        return self.expected - self.received


async def city_run(
    redis: Redis, geo: Service, rt: Service, gateway: Service, issuer: TokenIssuer, args: argparse.Namespace
) -> CityRun:
    city = City.build(args.city_clients)
    warm = [f"warm-city-{i}" for i in range(WARM_UPDATES)]
    await register_vendors(redis, [v for v, _, _ in city.vendors] + warm, "city-owner")
    watchers = city.watchers()
    count = min(CITY_VENDORS, int(args.city_rate * args.city_seconds))
    schedule = random.Random(11).sample(city.vendors, count)  # each vendor once: its id names the update
    port = int(gateway.url.rsplit(":", 1)[1])
    tokens = [issuer.issue(f"city-viewer-{i}", "customer") for i in range(args.city_clients)]
    context = multiprocessing.get_context("spawn")
    share = math.ceil(args.city_clients / args.city_processes)
    parts = [range(w * share, min(args.city_clients, (w + 1) * share)) for w in range(args.city_processes)]
    workers = []
    for part in parts:
        mine, theirs = context.Pipe()
        process = context.Process(
            target=city_clients,
            args=(theirs, port, [tokens[i] for i in part], [city.circles[i] for i in part]),
            daemon=True,
        )
        process.start()
        workers.append((process, mine, part))
    loop = asyncio.get_running_loop()
    connected = sum([(await loop.run_in_executor(None, pipe.recv))[1] for _, pipe, _ in workers])
    assert connected == args.city_clients, f"{connected} of {args.city_clients} clients connected"
    accepted: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {issuer.issue('city-owner', 'vendor')}"}
    async with aiohttp.ClientSession(base_url=geo.url, headers=headers) as http:
        for vendor in warm:  # first-request work of every path, at a gentle pace
            lat, lon = offset(
                random.uniform(-CITY_HALF_M, CITY_HALF_M), random.uniform(-CITY_HALF_M, CITY_HALF_M)
            )
            await _put(http, vendor, {"lat": lat, "lon": lon}, {}, time.time())
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)
        before = rt.cpu_seconds(), gateway.cpu_seconds(), geo.cpu_seconds()
        with contextlib.ExitStack() as profiles:
            if args.profile:  # real-time and the gateway while the updates go out
                for name, pid in (("real-time", rt.pid), ("api-gateway", gateway.pid)):
                    profiles.enter_context(
                        profiling(pid, args.profile / f"city-{name}.txt", args.city_seconds)
                    )
            started = time.perf_counter()
            pending = []
            for seq, (vendor, lat, lon) in enumerate(schedule):
                await asyncio.sleep(max(0.0, started + seq / args.city_rate - time.perf_counter()))
                fix = time.time()
                body = {"lat": lat, "lon": lon, "timestamp": datetime.fromtimestamp(fix, UTC).isoformat()}
                pending.append(asyncio.create_task(_put(http, vendor, body, accepted, fix)))
            await asyncio.gather(*pending)
            seconds = time.perf_counter() - started
        await _workers_quiet([pipe for _, pipe, _ in workers])  # the tail arrives before losses count
        after = rt.cpu_seconds(), gateway.cpu_seconds(), geo.cpu_seconds()
    expected_by_client: list[set[str]] = [set() for _ in range(args.city_clients)]
    for vendor in accepted:
        for index in watchers[vendor]:
            expected_by_client[index].add(vendor)
    received = unexpected = frames = 0
    latencies: list[float] = []
    load_side = 0.0
    closed: collections.Counter[int] = collections.Counter()
    for process, pipe, part in workers:
        pipe.send("stop")
        got, lat_s, worker_frames, worker_cpu, codes = await loop.run_in_executor(None, pipe.recv)
        closed.update(codes)
        for index, vendors in zip(part, got, strict=True):
            hits = set(vendors) & expected_by_client[index]
            received += len(hits)
            unexpected += len(set(vendors) - hits)
        latencies += lat_s
        frames += worker_frames
        load_side += worker_cpu
        process.join(10)
    return CityRun(
        args.city_clients,
        args.city_processes,
        len(accepted),
        sum(len(s) for s in expected_by_client),
        received,
        unexpected,
        latencies,
        seconds,
        after[0] - before[0],
        after[1] - before[1],
        after[2] - before[2],
        frames,
        load_side,
        load(),
        dict(closed),
    )


async def _workers_quiet(pipes: list[Connection], still_s: float = 2.0, limit_s: float = 60.0) -> None:
    """Until the client processes have received nothing new for ``still_s`` (``limit_s`` at most)."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + limit_s
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < still_s:
        await asyncio.sleep(0.5)
        counts = 0
        for pipe in pipes:
            pipe.send("count")
            counts += await loop.run_in_executor(None, pipe.recv)
        if counts != seen:
            seen, since = counts, time.monotonic()


async def bench_city(
    redis: Redis, geo: Service, rt: Service, gateway: Service, issuer: TokenIssuer, args: argparse.Namespace
) -> list[Target]:
    print(
        f"\n(d) fan-out at city scale: {args.city_clients} WebSocket clients through api-gateway,"
        f" spread over {args.city_processes} processes, each watching a {CITY_RADIUS_M / 1000:g} km"
        f" circle at a random point of a {2 * CITY_HALF_M / 1000:g} x {2 * CITY_HALF_M / 1000:g} km city;"
        f" {args.city_rate} updates/s for {args.city_seconds:g} s from {CITY_VENDORS:,} vendors spread"
        f" over it (each update a different vendor); real-time batching tick {args.batch_ms:g} ms",
        flush=True,
    )
    run = await city_run(redis, geo, rt, gateway, issuer, args)
    per_delivery = run.rt_cpu_s / max(1, run.received) * 1e6
    print(
        f"  {run.accepted} updates accepted, {run.expected} deliveries expected, {run.received} received,"
        f" lost {run.lost}, unexpected {run.unexpected}, clients closed {run.closed or 'none'};"
        f" p50 {pct(run.latencies, 50):.1f} ms,"
        f" p99 {pct(run.latencies, 99):.1f} ms (from geolocation's accepted_at);"
        f" {run.received / run.seconds:,.0f} deliveries/s in {run.frames / run.seconds:,.0f} frames/s"
    )
    print(
        f"  CPU: real-time {per_delivery:.1f} us per delivery ({run.rt_cpu_s / run.seconds:.0%} of a core),"
        f" api-gateway {run.gateway_cpu_s / max(1, run.frames) * 1e6:.1f} us per frame relayed"
        f" ({run.gateway_cpu_s / run.seconds:.0%} of a core), geolocation"
        f" {run.geo_cpu_s / max(1, run.accepted) * 1e6:.0f} us per update; client processes"
        f" {run.load_side_cpu_s:.1f} s of CPU in all; load average {run.load:.2f}",
        flush=True,
    )
    if args.profile:
        for name in ("real-time", "api-gateway"):
            print(f"py-spy profile of {name} during the city fan-out:")
            print(summarize(args.profile / f"city-{name}.txt"), flush=True)
    what = f"city fan-out, {run.clients} clients via gateway"
    return [
        Target(f"{what}: p99 (ms)", pct(run.latencies, 99), 100.0, False, ".1f"),
        Target(f"{what}: lost deliveries", float(run.lost), 0.0, False, ".0f"),
    ]


async def main_async(args: argparse.Namespace) -> int:
    os.sched_setaffinity(0, LOAD_CPU)  # Redis and NATS below inherit this CPU
    seed = generate_seed()
    issuer = TokenIssuer(seed, 3600)
    load_at_start = load()
    print(machine_line())
    targets: list[Target] = []
    nats_passwords = {name: secrets.token_urlsafe(24) for name in ("geolocation", "real-time")}
    with running("redis") as redis_server, permissioned_nats(nats_passwords) as nats_server:
        redis = Redis.from_url(redis_server.url)
        env = {
            "REDIS_URL": redis_server.url,
            "NATS_SERVERS": nats_server.url,
            "JWT_PUBLIC_KEY": public_pem_from_seed(seed),
        }

        def nats_user(name: str) -> dict[str, str]:
            return {"NATS_USER": name, "NATS_PASSWORD": nats_passwords[name]}

        realtime_env = env | nats_user("real-time") | {"REALTIME_BATCH_SECONDS": str(args.batch_ms / 1000)}
        with (
            service("geolocation", env | nats_user("geolocation")) as geo,
            service("real-time", realtime_env) as rt,
            service("api-gateway", gateway_env(env, rt, geo)) as gateway,
        ):
            assert redis_server.proc is not None
            redis_pid = redis_server.proc.pid
            if "nearby" in args.parts:
                targets += await bench_nearby(redis, redis_pid, geo, issuer, args.seconds, args.rounds)
            if "updates" in args.parts:
                targets += await bench_updates(
                    redis, redis_server.url, redis_pid, geo, issuer, args.seconds, args.rounds, args.profile
                )
            if "fanout" in args.parts:
                targets += await bench_fanout(redis, geo, rt, gateway, issuer, args)
            if "city" in args.parts:
                targets += await bench_city(redis, geo, rt, gateway, issuer, args)
        await redis.aclose()
    print()
    return 1 if print_targets(targets, load_at_start) else 0


PARTS = ("nearby", "updates", "fanout", "city")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating nearby / live runs per setting")
    parser.add_argument("--fanout-seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--city-clients", type=int, default=2000, help="clients of the city-scale fan-out")
    parser.add_argument("--city-processes", type=int, default=4, help="processes the city's clients run in")
    parser.add_argument("--city-seconds", type=float, default=15.0)
    parser.add_argument("--city-rate", type=int, default=200, help="updates per second, city case")
    parser.add_argument("--batch-ms", type=float, default=20.0, help="real-time's batching tick (0: none)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy profiles (geolocation under updates; real-time and the gateway in the city case)",
    )
    parser.add_argument(
        "--parts",
        type=lambda v: set(v.split(",")),
        default=set(PARTS),
        help="comma-separated subset of " + ",".join(PARTS),
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
