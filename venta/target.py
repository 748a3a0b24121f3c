"""Where a run goes (a cluster, or manifests in a folder) and whether it may build images."""

from collections.abc import Callable
from dataclasses import dataclass

from stacks.loader import RENDER_DIR_VARIABLE
from venta import stack_config
from venta.engine import StackOps

Say = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    kube_context: str | None  # None: no cluster configured, render manifests instead
    docker: bool  # a Docker daemon answers, so images can be built
    render_dir: str  # used when there is no kube context and the stack names no folder itself


def prepare(stack: StackOps, target: Target, say: Say, *, reference_images: bool) -> str | None:
    """Point the stack's config at the target; returns the render folder, or None for a cluster."""
    rendering = _point_at_target(stack, target, say)
    builds = stack.get_config(stack_config.IMAGE_BUILD) == "true"
    if builds and (reference_images or not target.docker):
        reason = "a rollback never rebuilds images" if reference_images else "no Docker daemon answers"
        stack.set_config(stack_config.IMAGE_BUILD, False)
        say(f"images: referencing the pushed images instead of building ({reason})")
    return rendering


def _point_at_target(stack: StackOps, target: Target, say: Say) -> str | None:
    """Nothing is written into the stack's config: without a cluster, `venta` passes the render
    folder to the program for this run (`environment`); a renderDir the stack names wins."""
    folder = stack.get_config(stack_config.RENDER_DIR) or (
        target.render_dir if target.kube_context is None else None
    )
    if folder is not None:
        reason = "no kube context configured" if target.kube_context is None else "the stack names renderDir"
        say(
            f"{reason}: rendering the manifests into {folder}/ with the kubernetes provider's "
            "renderYamlToDirectory; nothing is deployed to a cluster"
        )
        return folder
    say(f"deploying to the cluster of kube context {target.kube_context!r}")
    return None


def environment(target: Target) -> dict[str, str]:
    """Variables the program reads for this run (stacks.load): the render folder without a cluster."""
    return {RENDER_DIR_VARIABLE: target.render_dir} if target.kube_context is None else {}
