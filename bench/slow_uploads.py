"""The gateway's memory while uploads stall: each client sends most of a large upload, then nothing.

Used by bench/gateway.py. Every upload belongs to another user (so the per-client cap on bodies in
flight does not refuse them), declares 10 MiB, sends ``sent_mib`` of it quickly and stops. The
gateway's RSS is sampled from /proc while they are held open; the gateway streams each body to
file-management as it arrives, so what it holds per upload is a few chunks, and the minimum rate
over a window cuts each stalled upload with a 408.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.common.auth import TokenIssuer

MIB = 1024 * 1024
BOUNDARY = b"venta-bench"
PNG_HEAD = b"\x89PNG\r\n\x1a\n"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Stalled:
    baseline_mib: float
    peak_mib: float
    statuses: dict[int, int]  # answer status -> how many
    cut_after_s: float  # from the last byte sent to the last answer


async def _one(port: int, token: str, declared: int, sent: int, ready: asyncio.Event) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG_HEAD
    )
    writer.write(
        (
            f"POST /api/files HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY.decode()}\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()
        + head
    )
    chunk = b"\0" * (256 * 1024)
    left = sent - len(head)
    try:
        while left > 0:
            writer.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
            await writer.drain()
    except ConnectionError:
        pass  # answered (and closed) before the client was done: the answer is still there to read
    ready.set()
    try:
        line = await asyncio.wait_for(reader.readline(), 120)
        return int(line.split()[1]) if line else 0
    except (TimeoutError, ConnectionError, IndexError, ValueError):
        return 0
    finally:
        writer.close()


async def hold_stalled_uploads(
    port: int, gateway_pid: int, issuer: TokenIssuer, uploads: int, sent_mib: float
) -> Stalled:
    declared = 10 * MIB
    sent = int(sent_mib * MIB)
    baseline = rss_mib(gateway_pid)
    ready = [asyncio.Event() for _ in range(uploads)]
    tasks = [
        asyncio.create_task(_one(port, issuer.issue(str(uuid.uuid4()), "vendor"), declared, sent, ready[i]))
        for i in range(uploads)
    ]
    peak = baseline
    while not all(event.is_set() for event in ready):
        peak = max(peak, rss_mib(gateway_pid))
        await asyncio.sleep(0.1)
    stalled_at = time.monotonic()
    while not all(task.done() for task in tasks):
        peak = max(peak, rss_mib(gateway_pid))
        await asyncio.sleep(0.2)
    statuses: dict[int, int] = {}
    for task in tasks:
        statuses[task.result()] = statuses.get(task.result(), 0) + 1
    return Stalled(baseline, peak, statuses, time.monotonic() - stalled_at)


async def one_client_many_uploads(port: int, issuer: TokenIssuer, uploads: int) -> dict[int, int]:
    """One user starting ``uploads`` at once: the per-client cap answers the rest with 429 at once."""
    token = issuer.issue(str(uuid.uuid4()), "vendor")
    ready = [asyncio.Event() for _ in range(uploads)]
    results = await asyncio.gather(
        *(_one(port, token, 10 * MIB, 64 * 1024, ready[i]) for i in range(uploads))
    )
    statuses: dict[int, int] = {}
    for status in results:
        statuses[status] = statuses.get(status, 0) + 1
    return statuses
