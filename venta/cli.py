"""The `venta` command line: parse and check the arguments, then run one verb."""

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stacks.catalog import SERVICE_NAMES
from venta import deploy, review
from venta.digests import DigestError, digests_deployed_with, load_digests
from venta.engine_location import EngineNotFound, locate
from venta.hints import hint
from venta.host import (
    EMPTY_PASSPHRASE_REFUSED,
    PROTECTED_PROFILES,
    Host,
    docker_daemon,
    kube_context,
    pulumi_env,
)
from venta.project import (
    ProjectError,
    find_root,
    known_stacks,
    policy_pack,
    render_dir,
    stack_profile,
    stack_secrets_provider,
)
from venta.stack_file import salt_kept_out
from venta.target import Target, environment
from venta.versions import VersionError, check_version, rollback_version

if TYPE_CHECKING:
    from venta.engine import Engine, StackOps

# Runs `python -m <module> <args>` in the project folder; returns the exit code.
ModuleRunner = Callable[[str, list[str], Path], int]

DELEGATES = {"render": "infra.render", "dev": "localdev"}
# Stacks whose policy pack makes `image-pinned-by-digest` mandatory (policy/config/prod.json): a
# `--digests` file for them must pin every service, or the pack would stop the update anyway.
EVERY_DIGEST_REQUIRED = frozenset({"prod"})
# Pulumi's secrets providers besides the backend's default: a passphrase or a key management service.
SECRETS_PROVIDER_SCHEMES = ("awskms", "azurekeyvault", "gcpkms", "hashivault")

EPILOG = """\
examples:
  venta up dev                 deploy dev to the current kube context, or render its manifests
  venta deploy prod v1.4.0 --digests digests.json
                               pin prod's images to v1.4.0 and their digests, preview, update, wait
  venta rollback prod          go back to the version prod ran before the current one
  venta preview prod --policy --summary preview.md
                               what an update would change, the policy pack's verdict, a PR comment
  venta drift prod             refresh from the cluster; fail and name what changed behind Pulumi
  venta render dev --out DIR   write dev's manifests with the program under mocks (no engine)
  venta dev                    run the services locally against local servers
  venta compose-env            write .env with fresh secrets, then: docker compose up --build

State lives in ~/.venta/state unless PULUMI_BACKEND_URL is set or `pulumi login` was run;
stack secrets use PULUMI_CONFIG_PASSPHRASE (empty when unset, which a prod stack refuses), or
the key management service given with --secrets-provider.
"""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="venta",
        description="Deploy, roll back and run the Venta platform (Pulumi stacks dev, prod, ...).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="<command>")
    sub = {
        "up": verbs.add_parser("up", help="create or update a stack (cluster, or rendered manifests)"),
        "deploy": verbs.add_parser("deploy", help="deploy an image version: preview, update, wait"),
        "rollback": verbs.add_parser("rollback", help="redeploy an earlier version without rebuilding"),
        "preview": verbs.add_parser("preview", help="what an update would change (and the policy's verdict)"),
        "drift": verbs.add_parser("drift", help="refresh from the cluster; fail when anything drifted"),
        "render": verbs.add_parser("render", help="write a stack's manifests, program under mocks"),
        "dev": verbs.add_parser("dev", help="run the services locally (extra arguments pass through)"),
        "compose-env": verbs.add_parser("compose-env", help="write .env with secrets for docker compose"),
    }
    for verb in ("up", "deploy", "rollback", "preview", "drift", "render"):
        sub[verb].add_argument("stack", help="stack name: one Pulumi.<stack>.yaml at the project root")
    sub["deploy"].add_argument("version", help="release tag (v1.2.3, v1.2.3-rc.1) or commit id")
    sub["deploy"].add_argument(
        "--digests",
        metavar="FILE",
        type=Path,
        help="JSON object of service name -> sha256:<64 hex>, the pushed images to pin (prod: every service)",
    )
    sub["rollback"].add_argument(
        "version", nargs="?", help="version to return to (default: the one before the current)"
    )
    for verb in ("up", "deploy", "rollback", "preview"):
        sub[verb].add_argument(
            "--policy",
            action="store_true",
            help="run the policy pack (policy/, with policy/config/<stack>.json) on the preview and update",
        )
    for verb in ("up", "deploy", "rollback"):
        sub[verb].add_argument(
            "--secrets-provider",
            metavar="URL",
            help="encrypt the stack's secrets with this provider (awskms://..., gcpkms://..., "
            "azurekeyvault://..., hashivault://..., or passphrase); an existing stack is changed over",
        )
    sub["preview"].add_argument(
        "--summary", metavar="FILE", type=Path, help="also write the result as Markdown (a PR comment)"
    )
    sub["drift"].add_argument(
        "--report", metavar="FILE", type=Path, help="also write what drifted as Markdown"
    )
    sub["render"].add_argument("--out", metavar="DIR", help="output folder (default: the render command's)")
    sub["compose-env"].add_argument("--force", action="store_true", help="replace an existing .env")
    return parser, sub


def main(
    argv: Sequence[str] | None = None,
    *,
    engine: "Engine | None" = None,
    host: Host | None = None,
    run_module: ModuleRunner | None = None,
) -> int:
    """Entry point of the `venta` console script; `engine`, `host` and `run_module` are for tests."""
    parser, sub = build_parser()
    args, extra = parser.parse_known_args(argv)
    root = _check_arguments(args, extra, parser, sub[args.verb])
    if args.verb == "compose-env":
        from venta.compose_env import write_compose_env

        _say(write_compose_env(root / ".env", force=args.force))
        return 0
    if args.verb in DELEGATES:
        return _delegate(DELEGATES[args.verb], _module_args(args, extra), root, run_module or _run_module)
    return _drive_pulumi(args, sub[args.verb], root, host or Host.current(), engine)


def _check_arguments(
    args: argparse.Namespace,
    extra: list[str],
    parser: argparse.ArgumentParser,
    verb_parser: argparse.ArgumentParser,
) -> Path:
    """Every usage error, before anything runs (exits 2 with the usage); returns the project folder."""
    if extra and args.verb not in DELEGATES:
        verb_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        root = find_root(Path.cwd())
    except ProjectError as error:
        parser.error(str(error))
    stack = getattr(args, "stack", None)
    if stack is not None and stack not in (stacks := known_stacks(root)):
        verb_parser.error(f"unknown stack {stack!r} (known: {', '.join(stacks) or 'none'})")
    version = getattr(args, "version", None)
    if version is not None:
        try:
            check_version(version)
        except VersionError as error:
            verb_parser.error(str(error))
    provider = getattr(args, "secrets_provider", None)
    if provider is not None and not _known_secrets_provider(provider):
        schemes = ", ".join(f"{scheme}://..." for scheme in SECRETS_PROVIDER_SCHEMES)
        verb_parser.error(f"--secrets-provider {provider!r} is not passphrase or one of {schemes}")
    if getattr(args, "digests", None) is not None:
        try:
            required = stack in EVERY_DIGEST_REQUIRED
            args.digests = load_digests(args.digests, SERVICE_NAMES, require_all=required)
        except DigestError as error:
            verb_parser.error(str(error))
    return root


def _known_secrets_provider(provider: str) -> bool:
    scheme, sep, rest = provider.partition("://")
    return provider == "passphrase" or (bool(sep) and bool(rest) and scheme in SECRETS_PROVIDER_SCHEMES)


def _module_args(args: argparse.Namespace, extra: list[str]) -> list[str]:
    module_args = [args.stack] if args.verb == "render" else []
    if getattr(args, "out", None):
        # The delegate runs in the project folder; the folder given is relative to the caller's.
        module_args += ["--out", str(Path(args.out).resolve())]
    return module_args + extra


def _say(line: str) -> None:
    print(line, flush=True)


def _drive_pulumi(
    args: argparse.Namespace,
    verb_parser: argparse.ArgumentParser,
    root: Path,
    host: Host,
    engine: "Engine | None",
) -> int:
    if args.verb == "drift" and kube_context(host) is None:
        verb_parser.error("a drift check compares with a cluster: no kube context is configured")
    if args.verb == "preview" and args.policy and (missing := _missing_pins(root, args.stack)):
        print(missing, file=sys.stderr)
        if args.summary:
            args.summary.write_text(f"### `{args.stack}`: not previewed\n\n{missing}\n")
        return 1
    try:
        pulumi = locate(host, root)
    except EngineNotFound as error:
        print(error, file=sys.stderr)
        return 1
    _say(pulumi.describe())
    # Imported here: the Automation API takes a second or two to import, which `--help` need not pay.
    from venta.engine import AutomationEngine, EngineError

    real = engine if engine is not None else AutomationEngine(pulumi.bin_dir)
    chosen = getattr(args, "secrets_provider", None)
    settings = pulumi_env(host, chosen, stack_secrets_provider(root, args.stack))
    for note in settings.notes:
        _say(note)
    profile = stack_profile(root, args.stack)
    if settings.empty_passphrase and profile in PROTECTED_PROFILES:
        print(EMPTY_PASSPHRASE_REFUSED.format(stack=args.stack, profile=profile), end="", file=sys.stderr)
        return 1
    target = Target(
        kube_context=kube_context(host), docker=docker_daemon(host), render_dir=render_dir(args.stack)
    )
    variables = {
        **settings.variables,
        **environment(target),
        "PATH": pulumi.path_with_engine(host.env.get("PATH", "")),
    }
    try:
        policy = policy_pack(root, args.stack) if getattr(args, "policy", False) else None
        with salt_kept_out(root / f"Pulumi.{args.stack}.yaml"):
            stack = real.open_stack(root, args.stack, variables, settings.secrets_provider, policy)
            if settings.change_from and settings.secrets_provider:
                stack.change_secrets_provider(settings.secrets_provider)
                _say(f"secrets: re-encrypted from {settings.change_from} to {settings.secrets_provider}")
            return 0 if _run_verb(args, verb_parser, stack, target) else 1
    except EngineError as error:
        print(f"venta: {args.verb} {args.stack} failed:\n{error}", file=sys.stderr)
        if next_step := hint(str(error), args.stack):
            print(next_step, file=sys.stderr)
        return 1


def _missing_pins(root: Path, stack: str) -> str | None:
    """One line naming every unpinned image, when the stack's policy makes digests mandatory."""
    from venta.pins import digests_required, one_line, unpinned_images

    if not digests_required(root, stack):
        return None
    unpinned = unpinned_images(root, stack)
    return one_line(stack, unpinned) if unpinned else None


def _run_verb(
    args: argparse.Namespace, verb_parser: argparse.ArgumentParser, stack: "StackOps", target: Target
) -> bool:
    """Runs the verb; False when it ran but found a failure to report (refused preview, drift)."""
    if args.verb == "preview":
        return review.preview(stack, _say, summary=args.summary)
    if args.verb == "drift":
        return review.drift(stack, _say, report_path=args.report)
    if args.verb == "up":
        deploy.up(stack, target, _say)
    elif args.verb == "deploy":
        deploy.deploy(stack, target, args.version, _say, digests=args.digests)
    else:
        history = stack.history()
        try:
            version = rollback_version(history, args.stack, args.version)
        except VersionError as error:
            verb_parser.error(str(error))
        _say(f"rolling {args.stack} back to {version}")
        digests = digests_deployed_with(history, version, SERVICE_NAMES)
        deploy.rollback(stack, target, version, digests, _say)
    return True


def _delegate(module: str, module_args: list[str], root: Path, run_module: ModuleRunner) -> int:
    if not _runnable(module, root):
        print(f"venta: {module} is not available in this checkout", file=sys.stderr)
        return 1
    return run_module(module, module_args, root)


def _runnable(module: str, root: Path) -> bool:
    """Whether `python -m module` runs in the project folder: a module file, or a package's __main__."""
    path = root.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


def _run_module(module: str, module_args: list[str], root: Path) -> int:
    return subprocess.call([sys.executable, "-m", module, *module_args], cwd=root)
