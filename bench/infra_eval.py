"""How long the prod program takes to evaluate under Pulumi's mocks, against a same-size baseline.

The baseline registers as many bare ConfigMaps as prod registers resources, through the same mock
runtime: the ratio is the program's own cost (components, applies, builders) over the SDK's floor, and
stays meaningful on a busy machine where absolute seconds do not. Target: prod median under 1.5 s.

    .venv/bin/python bench/infra_eval.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi_kubernetes as k8s

from infra.render import capture_program, capture_stack

TARGET_SECONDS = 1.5


def baseline_program(count: int) -> Callable[[], None]:
    def program() -> None:
        for i in range(count):
            k8s.core.v1.ConfigMap(f"cm-{i}", metadata={"name": f"cm-{i}"}, data={"k": "v"})

    return program


def measure(run: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds over `runs`, after one warm-up (imports, schema caches)."""
    run()
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    counts = {stack: len(capture_stack(stack).resources) for stack in ("dev", "prod")}
    prod_wall, prod_cpu = measure(lambda: capture_stack("prod"), args.runs)
    dev_wall, dev_cpu = measure(lambda: capture_stack("dev"), args.runs)
    base_wall, base_cpu = measure(
        lambda: capture_program(baseline_program(counts["prod"]), "prod"), args.runs
    )

    load = os.getloadavg()[0]
    print(f"runs per figure: {args.runs} (median, after one warm-up)")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs: wall time includes waiting for a CPU")
    print(f"{'program':<34}{'resources':>10}{'wall s':>9}{'cpu s':>8}{'x baseline (cpu)':>18}")
    rows = [
        ("baseline: bare ConfigMaps", counts["prod"], base_wall, base_cpu),
        ("dev stack", counts["dev"], dev_wall, dev_cpu),
        ("prod stack", counts["prod"], prod_wall, prod_cpu),
    ]
    for name, count, wall, cpu in rows:
        print(f"{name:<34}{count:>10}{wall:>9.3f}{cpu:>8.3f}{cpu / base_cpu:>18.2f}")
    verdict = "meets" if prod_wall < TARGET_SECONDS else "misses"
    print(f"prod: {prod_wall:.3f} s wall, {prod_cpu:.3f} s CPU; {verdict} the {TARGET_SECONDS} s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
