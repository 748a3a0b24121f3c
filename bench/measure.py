"""What the benchmarks share: CPU read from /proc, the machine's load, medians with their spread,
and py-spy profiles of a service under load.

A figure taken on this shared machine moves with whatever else runs on its two cores, so every
figure line carries the load average, ratios are taken between runs seconds apart, and CPU per
request (what the process itself spent, which hardly depends on waiting for a core) stands beside
throughput.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

QUIET_LOAD = 1.0  # the targets are for a machine whose load average is under this at the start


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (from /proc), independent of other load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> float:
    return os.getloadavg()[0]


def machine_line() -> str:
    one, five, fifteen = os.getloadavg()
    quiet = "quiet" if one < QUIET_LOAD else "busy: targets are for load < 1, so they are not judged here"
    return (
        f"machine: {os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f} at start ({quiet})"
    )


def is_quiet(load_at_start: float) -> bool:
    return load_at_start < QUIET_LOAD


@dataclass(frozen=True)
class Spread:
    """The median of some rounds with their lowest and highest value."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def text(self, fmt: str = ".2f", unit: str = "") -> str:
        return f"{self.median:{fmt}}{unit} ({self.low:{fmt}}-{self.high:{fmt}})"


@dataclass(frozen=True)
class Target:
    measure: str
    figure: float
    goal: float
    at_least: bool  # True: figure >= goal, False: figure <= goal
    fmt: str = ".2f"

    @property
    def met(self) -> bool:
        return self.figure >= self.goal if self.at_least else self.figure <= self.goal

    def row(self, quiet: bool) -> str:
        verdict = ("met" if self.met else "MISSED") if quiet else ("would be met" if self.met else "not met")
        sign = ">=" if self.at_least else "<="
        return (
            f"  {self.measure:<58} {self.figure:{self.fmt}}  target {sign} {self.goal:{self.fmt}}: {verdict}"
        )


def print_targets(targets: Sequence[Target], load_at_start: float) -> int:
    """Prints each target's verdict; returns how many were missed on a quiet machine (0 when busy)."""
    quiet = is_quiet(load_at_start)
    judged = "judged" if quiet else "NOT judged (load average at start >= 1; figures shown for the record)"
    print(f"targets, load average at start {load_at_start:.2f}: {judged}; load now {load():.2f}")
    for target in targets:
        print(target.row(quiet))
    return sum(not t.met for t in targets) if quiet else 0


# ---------------------------------------------------------------- profiles


def py_spy() -> str | None:
    return os.environ.get("PY_SPY") or shutil.which("py-spy")


@contextlib.contextmanager
def profiling(pid: int, out: Path, seconds: float, rate: int = 200) -> Iterator[None]:
    """py-spy samples ``pid`` (``--nonblocking``: the process is never paused) while the block runs;
    collapsed stacks go to ``out``."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy not found: install it (pip install py-spy) or set PY_SPY")
    command = [tool, "record", "-p", str(pid), "-r", str(rate), "-d", str(int(seconds) + 1)]
    command += ["--nonblocking", "-f", "raw", "-o", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.wait(timeout=seconds + 30)


def _package(frame: str) -> str:
    """``send (uvicorn/protocols/http/httptools_impl.py:470)`` -> ``uvicorn``; our own code by folder."""
    location = frame.rpartition(" (")[2]
    path = location.split(":")[0]
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    if "/services/" in path:
        return "services/" + path.split("/services/")[1].split("/")[0].removesuffix(".py")
    if "python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1].removesuffix(".py")
    return path or frame


def summarize(out: Path, top: int = 14) -> str:
    """Shares of samples: by the package of the innermost Python frame (where the time is spent)
    and by function (self time), plus what each of our request-level functions costs inclusive."""
    self_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        self_fn[leaf.split(" (")[0] + " " + _package(leaf)] += count
        self_pkg[_package(leaf)] += count
        for name in {_package(f) for f in frames}:
            inclusive[name] += count
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples; self time by package:"]
    lines += [f"    {share / total:6.1%}  {name}" for name, share in self_pkg.most_common(top)]
    lines.append("  self time by function:")
    lines += [f"    {share / total:6.1%}  {name}" for name, share in self_fn.most_common(top)]
    lines.append("  inclusive (a package anywhere on the stack):")
    lines += [f"    {share / total:6.1%}  {name}" for name, share in inclusive.most_common(top)]
    return "\n".join(lines)
