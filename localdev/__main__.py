"""``python -m localdev``: every service of services/catalog.py on this machine, Ctrl-C stops it all.

Starts throwaway PostgreSQL, Redis and NATS (or uses ``TEST_DATABASE_URL``/``TEST_REDIS_URL``/
``TEST_NATS_URL`` when set), a role and a database per service made by the stacks' init script, a
fresh Ed25519 dev key pair, then each service as ``python -m services <name>`` (the container
command) with the environment its catalog entry implies,
waits until each is ready, prints the URLs, and on Ctrl-C/SIGTERM stops everything it started.
Clients need one address, the gateway's (HTTP and the WebSocket under ``/api/``); each service's
internal port (probes, metrics, ``/docs``) is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from localdev.services import (
    data_stores,
    pick_ports,
    prepare_databases,
    service_env,
    start_service,
    stop_all,
    wait_ready,
)
from services.catalog import SERVICES
from services.common.auth import generate_seed


def run(names: list[str], free_ports: bool, stop_after: float | None = None) -> int:
    entries = [SERVICES[name] for name in names]
    ports = pick_ports(entries, free_ports)
    seed = generate_seed()
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with ExitStack() as stack, data_stores(stack) as urls:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="venta-local-")))
        shared = bool(os.environ.get("TEST_DATABASE_URL"))  # a server of someone else's: names of this run
        urls.update(prepare_databases(urls["postgres"], entries, shared_server=shared))
        stack.callback(stop_all, procs)
        # All at once (the gateway's readiness does not depend on its upstreams), then wait for each.
        for entry in entries:
            procs[entry.name] = start_service(entry, service_env(entry, urls, ports, seed, scratch))
        for entry in entries:
            wait_ready(ports[entry.name].internal, procs[entry.name], entry.name)
        print("\nVenta is running locally (Ctrl-C stops everything):", flush=True)
        if "api-gateway" in ports:
            gateway = f"http://127.0.0.1:{ports['api-gateway'].public}/api/"
            print(f"  clients use the gateway: {gateway}", flush=True)
        for entry in entries:
            internal = f"internal http://127.0.0.1:{ports[entry.name].internal}"
            print(f"  {entry.name:<20} http://127.0.0.1:{ports[entry.name].public}  ({internal})", flush=True)
        for kind in ("postgres", "redis", "nats"):
            print(f"  {kind:<20} {urls[kind]}", flush=True)
        deadline = None if stop_after is None else time.monotonic() + stop_after
        while not stop and (deadline is None or time.monotonic() < deadline):
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.3)
        print("stopping...", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev", description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", default=list(SERVICES), help="services to run (default: all)")
    parser.add_argument("--free-ports", action="store_true", help="pick free ports instead of 8080 and up")
    parser.add_argument("--stop-after", type=float, help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        parser.error(f"unknown services {unknown}; known: {', '.join(SERVICES)}")
    try:
        return run(args.services, args.free_ports, args.stop_after)
    except RuntimeError as exc:
        print(f"localdev: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
