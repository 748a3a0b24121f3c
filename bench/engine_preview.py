"""The real engine's ``pulumi preview`` of a stack with no changes, and where its time goes.

Runs the Pulumi CLI the engine setup provides (``venta.engine_location``), offline, on a temp copy
of the project with a file backend (tests/e2e/pulumi_cli.py), in render mode: ``up`` once, then
``preview`` several times. Beside it, in the same run and on the same engine, baselines that split
the time:

  empty program        a Python program that imports pulumi and declares nothing: the engine, the
                       language host and Python starting (the floor of any preview);
  bare ConfigMaps      as many ConfigMaps as the stack registers, through one render-mode kubernetes
                       provider: the floor plus the kubernetes plugin and one registration round trip
                       per resource;
  imports              ``python -c 'import <the program's modules>'``: what our own imports cost;
  program under mocks  the program evaluated with Pulumi's mocks, in this process (bench/infra_eval.py);
  without bytecode     the stack's preview again, alternating with the first, with Python looking for
                       bytecode in an empty folder: what a venv without compiled bytecode costs a
                       process that may not write any (PYTHONDONTWRITEBYTECODE, a read-only disk).

What the stack's preview takes beyond "bare ConfigMaps" is the program's own (imports, evaluation,
options and outputs per resource); what "bare ConfigMaps" takes beyond "empty program" is per
resource and plugin start, and the floor is the engine's. Target (issue 21): prod under 3 s on a
quiet machine (load average under 1 at the start).

    .venv/bin/python bench/engine_preview.py [--stack prod] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure import Target, load, machine_line, print_targets

from infra.render import capture_stack
from tests.e2e.pulumi_cli import REPO, PulumiProject, toolchain_bin
from tests.e2e.test_pulumi_engine import released_images

BASELINE_YAML = "name: baseline\nruntime:\n  name: python\n  options:\n    virtualenv: .venv\n"
EMPTY = "import pulumi\n"
CONFIGMAPS = """import pulumi
import pulumi_kubernetes as k8s

provider = k8s.Provider("render", render_yaml_to_directory=pulumi.Config().require("renderDir"))
for i in range({count}):
    k8s.core.v1.ConfigMap(
        f"cm-{{i}}", metadata={{"name": f"cm-{{i}}"}}, data={{"k": "v"}},
        opts=pulumi.ResourceOptions(provider=provider),
    )
"""
PROGRAM_MODULES = "import pulumi, pulumi_kubernetes, pulumi_random, infra, stacks"


def stack_project(into: Path, bin_dir: Path, stack: str) -> PulumiProject:
    """The repo's project in render mode, with prod's images pinned as a deploy leaves them."""
    project = PulumiProject.copy_of_repo(into, bin_dir)
    import yaml

    overrides = {"venta:kubernetes": {"renderDir": str(into / "rendered")}, **released_images(stack)}
    stack_file = project.root / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"].update(overrides)
    stack_file.write_text(yaml.safe_dump(document))
    project.run("stack", "select", "--create", stack)
    return project


def baseline_project(into: Path, bin_dir: Path, program: str) -> PulumiProject:
    root = into / "project"
    root.mkdir(parents=True)
    (root / "Pulumi.yaml").write_text(BASELINE_YAML)
    (root / "__main__.py").write_text(program)
    (root / ".venv").symlink_to(REPO / ".venv")
    for folder in ("home", "pulumi-home", "state"):
        (into / folder).mkdir()
    project = PulumiProject(root=root, bin_dir=bin_dir)
    project.run("stack", "select", "--create", "bench")
    project.run("config", "set", "--stack", "bench", "renderDir", str(into / "rendered"))
    return project


def previews(project: PulumiProject, stack: str, runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Seconds of each no-change preview after one ``up``."""
    if not project.timings.get("up"):
        project.run("up", "--stack", stack, "--yes", "--skip-preview", label="up")
    seconds = []
    for _ in range(runs):
        argv = ["pulumi", "preview", "--stack", stack, "--json", "--non-interactive"]
        run = project.run_command(argv, env=env)
        seconds.append(run.seconds)
        summary = run.json().get("changeSummary", {})
        assert set(summary) <= {"same"}, f"preview after up is not empty: {summary}"
    return seconds


def compiled_share() -> float:
    """How much of the Pulumi SDK in .venv has its bytecode compiled (scripts/setup.sh compiles it)."""
    sources = list((REPO / ".venv/lib/python3.11/site-packages/pulumi").rglob("*.py"))
    compiled = [f for f in sources if any((f.parent / "__pycache__").glob(f"{f.stem}.cpython-*.pyc"))]
    return len(compiled) / max(1, len(sources))


def import_seconds(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(REPO / ".venv/bin/python"), "-c", PROGRAM_MODULES], cwd=REPO, check=True)
        out.append(time.perf_counter() - started)
    return out


def import_breakdown() -> dict[str, float]:
    """Cumulative seconds of each package the program imports (``-X importtime``), in import order:
    a package imported first from inside another (pulumi_docker from infra) is counted in both."""
    done = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-X", "importtime", "-c", PROGRAM_MODULES],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if name in ("pulumi", "pulumi_kubernetes", "pulumi_random", "pulumi_docker", "infra", "stacks"):
            found[name] = int(parts[1]) / 1e6
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bin_dir = toolchain_bin()
    if bin_dir is None:
        print("no Pulumi engine set up (bash tests/e2e/toolchain.sh builds one)", file=sys.stderr)
        return 2
    load_at_start = load()
    print(machine_line())
    print(f"engine: {bin_dir}; {args.runs} previews each after one up, median (lowest-highest)")
    with tempfile.TemporaryDirectory(prefix="venta-engine-bench-") as scratch:
        root = Path(scratch)
        project = stack_project(root / "stack", bin_dir, args.stack)
        # What a process pays that finds no bytecode and may not write any (PYTHONDONTWRITEBYTECODE,
        # as here, or a read-only filesystem): every module compiled from source on every start.
        uncompiled_env = {"PYTHONPYCACHEPREFIX": str(root / "no-bytecode")}
        stack_s, uncompiled_s = [], []
        for _ in range(args.runs):  # alternating, so both see the same swings of a shared machine
            stack_s += previews(project, args.stack, 1)
            uncompiled_s += previews(project, args.stack, 1, uncompiled_env)
        resources = len(capture_stack(args.stack).resources)  # components included: each is registered
        empty_s = previews(baseline_project(root / "empty", bin_dir, EMPTY), "bench", args.runs)
        configmaps = CONFIGMAPS.format(count=resources)
        cm_s = previews(baseline_project(root / "configmaps", bin_dir, configmaps), "bench", args.runs)
    imports = import_seconds(args.runs)
    capture_stack(args.stack)  # warm, as the engine's program run is not (it imports too)
    started = time.perf_counter()
    capture_stack(args.stack)
    mocked = time.perf_counter() - started

    def row(name: str, values: list[float]) -> str:
        med = statistics.median(values)
        return f"  {name:<44} {med:6.2f} s ({min(values):.2f}-{max(values):.2f})"

    print(f"  .venv holds bytecode for {compiled_share():.0%} of the Pulumi SDK's modules")
    print(row(f"pulumi preview {args.stack} ({resources} resources + stack)", stack_s))
    print(row("the same, every module compiled at start", uncompiled_s))
    print(row("empty program (engine + language host + Python)", empty_s))
    print(row(f"{resources} bare ConfigMaps, render-mode provider", cm_s))
    print(row("python -c 'import pulumi, ..., infra, stacks'", imports))
    print(f"  {'program under mocks (warm, in process)':<44} {mocked:6.2f} s")
    print("  imports, cumulative: " + ", ".join(f"{k} {v:.2f} s" for k, v in import_breakdown().items()))
    stack_med, empty_med, cm_med = (statistics.median(v) for v in (stack_s, empty_s, cm_s))
    print(
        f"  -> the engine's floor {empty_med:.2f} s; plugin + {resources} registrations"
        f" {cm_med - empty_med:.2f} s ({(cm_med - empty_med) / resources * 1000:.1f} ms each);"
        f" our program beyond bare ConfigMaps {stack_med - cm_med:.2f} s  (load {load():.2f})"
    )
    print(json.dumps({"stack": stack_med, "empty": empty_med, "configmaps": cm_med, "resources": resources}))
    return (
        1
        if print_targets(
            [Target(f"pulumi preview {args.stack}, no changes (s)", stack_med, 3.0, False)], load_at_start
        )
        else 0
    )


if __name__ == "__main__":
    raise SystemExit(main())
