"""Gateway overhead benchmark: the same reads sent straight to a service and through api-gateway.

Runs real processes (``python -m services <name>``, uvloop + httptools, LOG_LEVEL=WARNING) against
throwaway PostgreSQL, Redis and NATS, and drives them with ``wrk`` in a closed loop (1 wrk thread) at
32 connections and at 1 connection:

  (a) plain read:         GET /vendors/{id}      vs  GET /api/vendors/{id}   (public route)
  (b) authenticated read: GET /users/me + token  vs  GET /api/users/me       (token check + rate limit)
  (c) stalled uploads:    50 clients each send 9.5 MiB of a 10 MiB upload to /api/files and stop;
                          the gateway's RSS while they are held (bench/slow_uploads.py), how they
                          end, and one client starting 20 uploads at once (the per-client cap)

The baseline is the direct run, from this same process on the same cores: each round runs direct and
gateway back to back, alternating which goes first, so drift on a shared machine hits both alike.
Each row prints medians over the rounds with their spread (lowest-highest): the throughput ratio,
p99 of each and their ratio, and the milliseconds of CPU the service (direct run) and the gateway
spend per request, read from /proc: unlike throughput, CPU per request hardly moves when other work
shares the machine. At 32 connections nothing is pinned. Runs at one connection follow a warm-up at
one connection; with ``--pin`` wrk runs on the last core and the gateway and services on the others
(pin only on an otherwise quiet machine). The rate limit is set high enough that it never rejects
(the check itself still runs on every request).

Targets (issue 21, for a quiet machine: load average under 1 at the start, which the bench prints
and judges): at 32 connections (a) and (b) keep >= 90% of direct throughput, the gateway's p99 is
at most 1.5x direct's, and the gateway spends at most 0.10 ms of CPU per proxied request; at one
connection it adds < 1 ms at p50. On a busy machine the verdicts are printed but not judged.
``--profile DIR`` also records a py-spy profile of the gateway during one more (a) run at 32
connections and prints where its time goes.

    .venv/bin/python bench/gateway.py [--duration 5] [--rounds 5] [--uploads 50 --upload-mib 9.5]
        [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import Spread, Target, cpu_seconds, load, machine_line, print_targets, profiling, summarize
from slow_uploads import hold_stalled_uploads, one_client_many_uploads

from localdev.servers import running
from localdev.services import (
    permissioned_nats,
    pick_ports,
    prepare_databases,
    service_env,
    start_service,
    stop_all,
    wait_ready,
)
from services.catalog import SERVICES
from services.common.auth import TokenIssuer, generate_seed

BENCH_ENV = {"LOG_LEVEL": "WARNING", "RATE_LIMIT_REQUESTS": "1000000000", "RATE_LIMIT_WINDOW_SECONDS": "60"}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def cpu_ms_per_request(pid: int, before: float, result: Result) -> float:
    return (cpu_seconds(pid) - before) * 1000 / max(1, result.requests)


def parse_wrk(output: str) -> Result:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()  # type: ignore[union-attr]
        return float(value) * _UNITS[unit]

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return Result(rps, percentile("50"), percentile("99"), int(errors.group(1)) if errors else 0, requests)


def wrk(url: str, connections: int, seconds: int, token: str | None, cpus: set[int] | None = None) -> Result:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    if cpus:
        command[:0] = ["taskset", "-c", ",".join(map(str, sorted(cpus)))]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def client_cpus(connections: int, servers: list[int], pin: bool) -> set[int] | None:
    """The cores wrk runs on: with ``pin`` and one connection the last core, the servers moved off it."""
    all_cpus = os.sched_getaffinity(0)
    if not pin or connections > 1 or len(all_cpus) < 2:
        for pid in servers:
            os.sched_setaffinity(pid, all_cpus)
        return None
    client = {max(all_cpus)}
    for pid in servers:
        os.sched_setaffinity(pid, all_cpus - client)
    return client


def seed_data(user_url: str, vendor_url: str) -> tuple[str, str]:
    """(access token of a vendor user, id of one vendor)."""
    with httpx.Client(timeout=30) as client:
        body = {"email": "bench@example.com", "password": "bench-password", "role": "vendor"}
        assert client.post(f"{user_url}/users/register", json=body).status_code == 201
        login = {"email": body["email"], "password": body["password"]}
        token = client.post(f"{user_url}/users/login", json=login).json()["access_token"]
        vendor = client.post(
            f"{vendor_url}/vendors",
            json={"name": "Bench Bites", "category": "food"},
            headers={"Authorization": f"Bearer {token}"},
        )
        return token, vendor.json()["id"]


@dataclass
class Round:
    direct: Result
    through: Result
    svc_cpu: float  # ms of service CPU per request (direct run)
    gw_cpu: float  # ms of gateway CPU per request


@dataclass
class Case:
    service: str
    direct_url: str
    gateway_url: str
    token: str | None


def run_rounds(
    case: Case,
    procs: dict[str, subprocess.Popen[bytes]],
    connections: int,
    args: argparse.Namespace,
    cpus: set[int] | None,
) -> list[Round]:
    rounds = []
    for i in range(args.rounds):
        measured: dict[str, tuple[Result, float]] = {}
        order = [("direct", case.direct_url, case.service), ("gateway", case.gateway_url, "api-gateway")]
        for kind, url, process in order if i % 2 == 0 else order[::-1]:
            pid = procs[process].pid
            before = cpu_seconds(pid)
            result = wrk(url, connections, args.duration, case.token, cpus)
            measured[kind] = (result, cpu_ms_per_request(pid, before, result))
        (direct, svc_cpu), (through, gw_cpu) = measured["direct"], measured["gateway"]
        rounds.append(Round(direct, through, svc_cpu, gw_cpu))
    return rounds


def report(label: str, connections: int, rounds: list[Round]) -> tuple[Spread, Spread, Spread, float]:
    """Prints one row; returns (throughput ratio, p99 ratio, gateway CPU, added p50) as medians."""
    ratio = Spread.of([r.through.rps / r.direct.rps for r in rounds])
    p99 = Spread.of([r.through.p99_ms / r.direct.p99_ms for r in rounds])
    gw_cpu = Spread.of([r.gw_cpu for r in rounds])
    svc_cpu = Spread.of([r.svc_cpu for r in rounds])
    added = statistics.median(r.through.p50_ms - r.direct.p50_ms for r in rounds)
    direct_rps = statistics.median(r.direct.rps for r in rounds)
    through_rps = statistics.median(r.through.rps for r in rounds)
    errors = sum(r.direct.errors + r.through.errors for r in rounds)
    print(
        f"{label} at {connections} conn(s): gateway/direct throughput {ratio.text()}"
        f" [{through_rps:.0f} vs {direct_rps:.0f} req/s];"
        f" p50 +{added:.2f} ms; p99 {statistics.median(r.through.p99_ms for r in rounds):.1f} vs"
        f" {statistics.median(r.direct.p99_ms for r in rounds):.1f} ms, ratio {p99.text(unit='x')};"
        f" CPU per request gateway {gw_cpu.text('.3f', ' ms')}, service {svc_cpu.text('.3f', ' ms')}"
        + (f"; NON-2xx {errors}" if errors else "")
        + f"  (load {load():.2f})",
        flush=True,
    )
    return ratio, p99, gw_cpu, added


def main() -> int:
    parser = argparse.ArgumentParser(description="api-gateway overhead vs direct calls")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="direct/gateway pairs per case (medians kept)")
    parser.add_argument("--pin", action="store_true", help="one-connection runs: wrk on its own core")
    parser.add_argument(
        "--uploads", type=int, default=50, help="stalled uploads held at once, case (c); 0: skip"
    )
    parser.add_argument("--upload-mib", type=float, default=9.5, help="MiB each stalled upload sends")
    parser.add_argument(
        "--profile", type=Path, help="record a py-spy profile of the gateway into this folder"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    names = ["user-management", "vendor-management", "search-discovery", "file-management", "api-gateway"]
    entries = [SERVICES[n] for n in names]
    ports = pick_ports(entries, free_ports=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with ExitStack() as stack:
        urls = {kind: stack.enter_context(running(kind)).url for kind in ("postgres", "redis")}
        # NATS holds each service to its subjects, as its own user, as a cluster does.
        passwords = {e.name: secrets.token_urlsafe(24) for e in entries if e.nats}
        urls["nats"] = stack.enter_context(permissioned_nats(passwords)).url
        urls |= {f"nats:{name}": password for name, password in passwords.items()}
        urls.update(prepare_databases(urls["postgres"], entries))
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="venta-bench-")))
        seed = generate_seed()
        stack.callback(stop_all, procs)
        for entry in entries:
            env = service_env(entry, urls, ports, seed, scratch) | BENCH_ENV
            procs[entry.name] = start_service(entry, env)
        for entry in entries:
            wait_ready(ports[entry.name].internal, procs[entry.name], entry.name)
        base = {name: f"http://127.0.0.1:{port.public}" for name, port in ports.items()}
        token, vendor_id = seed_data(base["user-management"], base["vendor-management"])
        gateway = base["api-gateway"]
        cases = {
            "(a) plain read": Case(
                "vendor-management",
                f"{base['vendor-management']}/vendors/{vendor_id}",
                f"{gateway}/api/vendors/{vendor_id}",
                None,
            ),
            "(b) authenticated read": Case(
                "user-management", f"{base['user-management']}/users/me", f"{gateway}/api/users/me", token
            ),
        }
        for case in cases.values():  # warm-up: connection pools, caches
            wrk(case.direct_url, 8, 2, case.token)
            wrk(case.gateway_url, 8, 2, case.token)
        load_at_start = load()
        placement = "1 conn: wrk on the last core, services on the rest" if args.pin else "nothing pinned"
        print(machine_line())
        print(
            f"{args.rounds} rounds of {args.duration}s per case, direct and gateway alternating;"
            f" wrk -t1; {placement}"
        )
        print("figures: median (lowest-highest) over the rounds")
        targets: list[Target] = []
        failures = 0
        for connections in (32, 1):
            cpus = client_cpus(connections, [p.pid for p in procs.values()], args.pin)
            for label, case in cases.items():
                if connections == 1:  # settle at this concurrency (and placement) before measuring
                    wrk(case.direct_url, 1, 1, case.token, cpus)
                    wrk(case.gateway_url, 1, 1, case.token, cpus)
                rounds = run_rounds(case, procs, connections, args, cpus)
                failures += any(r.direct.errors or r.through.errors for r in rounds)
                ratio, p99, gw_cpu, added = report(label, connections, rounds)
                short = label.split(" ", 1)[1]
                if connections == 32:
                    targets.append(
                        Target(f"gateway {short} / direct, 32 connections", ratio.median, 0.90, True)
                    )
                    if label.startswith("(a)"):
                        targets.append(
                            Target("gateway p99 / direct p99, 32 connections", p99.median, 1.5, False)
                        )
                        targets.append(
                            Target(
                                "gateway CPU per proxied request (ms), (a) at 32",
                                gw_cpu.median,
                                0.10,
                                False,
                                ".3f",
                            )
                        )
                else:
                    targets.append(
                        Target(f"gateway added p50 (ms), {short}, 1 connection", added, 1.0, False)
                    )
        if args.profile:
            profile_gateway(cases["(a) plain read"], procs["api-gateway"].pid, args)
        if args.uploads:
            gateway_port = ports["api-gateway"].public
            failures += stalled_uploads(gateway_port, procs["api-gateway"].pid, TokenIssuer(seed, 3600), args)
        failures += print_targets(targets, load_at_start)
    return 1 if failures else 0


def profile_gateway(case: Case, pid: int, args: argparse.Namespace) -> None:
    args.profile.mkdir(parents=True, exist_ok=True)
    out = args.profile / "gateway-a-32.txt"
    with profiling(pid, out, args.duration * 2):
        result = wrk(case.gateway_url, 32, args.duration * 2, case.token)
    print(
        f"py-spy profile of the gateway, (a) at 32 connections ({result.rps:.0f} req/s, load {load():.2f}):"
    )
    print(summarize(out), flush=True)


def stalled_uploads(port: int, pid: int, issuer: TokenIssuer, args: argparse.Namespace) -> int:
    """Case (c); returns 1 when an upload was not cut with a 408."""
    held = asyncio.run(hold_stalled_uploads(port, pid, issuer, args.uploads, args.upload_mib))
    grown = held.peak_mib - held.baseline_mib
    print(
        f"(c) {args.uploads} uploads stalled after {args.upload_mib:g} MiB each"
        f" ({args.uploads * args.upload_mib:.0f} MiB sent in all): gateway RSS {held.baseline_mib:.0f} MiB"
        f" before, at most {held.peak_mib:.0f} MiB while held (+{grown:.1f} MiB, about"
        f" {grown * 1024 / args.uploads:.0f} KiB per upload); answers {held.statuses},"
        f" the last {held.cut_after_s:.1f} s after the stall  (load {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    capped = asyncio.run(one_client_many_uploads(port, issuer, 20))
    print(f"    one client starting 20 uploads at once: answers {capped}", flush=True)
    return 0 if set(held.statuses) == {408} else 1


if __name__ == "__main__":
    sys.exit(main())
