"""`venta up`, `venta deploy` and `venta rollback`: the runs that change a stack."""

from collections.abc import Mapping

from venta import stack_config
from venta.engine import EngineError, StackOps
from venta.report import changes_line, show_outputs
from venta.target import Say, Target, prepare
from venta.versions import deploy_message


def up(stack: StackOps, target: Target, say: Say) -> None:
    """Bring the stack to what its config describes, on the cluster or into the render folder."""
    rendering = prepare(stack, target, say, reference_images=False)
    version = stack.get_config(stack_config.IMAGE_TAG) or "unversioned"
    _update(stack, "up", version, rendering, say)


def deploy(
    stack: StackOps,
    target: Target,
    version: str,
    say: Say,
    *,
    digests: Mapping[str, str] | None = None,
    verb: str = "deploy",
) -> None:
    """Pin the image version (and the digests, when given), preview, update, and report."""
    rendering = prepare(stack, target, say, reference_images=verb == "rollback")
    previous = stack.get_config(stack_config.IMAGE_TAG)
    stack.set_config(stack_config.IMAGE_TAG, version)
    if digests:
        _pin_digests(stack, version, digests, say)
    elif previous != version and stack.get_config(stack_config.IMAGE_DIGESTS):
        stack.remove_config(stack_config.IMAGE_DIGESTS)
        say(f"images: dropped the digests pinned for {previous}")
    say(f"preview of {stack.name} at {version}:")
    report = stack.preview(refresh=rendering is None)
    if report.error:
        raise EngineError(report.error)
    say(f"preview: {changes_line(report.counts)}")
    _update(stack, verb, version, rendering, say)


def rollback(stack: StackOps, target: Target, version: str, digests: Mapping[str, str], say: Say) -> None:
    """Deploy an earlier version again, with the images (and digests) it already has: nothing is rebuilt."""
    if not digests:
        say(f"images: the history records no digests for {version}; they are referenced by tag only")
    deploy(stack, target, version, say, digests=digests, verb="rollback")


def _pin_digests(stack: StackOps, version: str, digests: Mapping[str, str], say: Say) -> None:
    # Replaced whole: a digest left from another version would pin a service to the wrong image.
    if stack.get_config(stack_config.IMAGE_DIGESTS):
        stack.remove_config(stack_config.IMAGE_DIGESTS)
    for service, digest in sorted(digests.items()):
        stack.set_config(stack_config.digest_key(service), digest)
    say(f"images: pinned {len(digests)} digests for {version} ({', '.join(sorted(digests))})")


def _update(stack: StackOps, verb: str, version: str, rendering: str | None, say: Say) -> None:
    say(f"{verb} of {stack.name} at {version}:")
    # Against a cluster the state is refreshed first: an object changed or deleted behind Pulumi's
    # back is then updated or created again, instead of stopping the update.
    changes = stack.up(deploy_message(verb, stack.name, version), refresh=rendering is None)
    say(changes_line(changes))
    if rendering:
        say(f"manifests written to {rendering}/ (kubectl apply -R -f {rendering}/ applies them)")
        say("rollout: nothing to wait for in render mode")
    else:
        say("rollout: complete (the kubernetes provider waited for every Deployment to become ready)")
    show_outputs(stack.outputs(), say)
