"""Render mode chosen for one run through the environment, never written into the stack's file."""

import stacks
from stacks.loader import RENDER_DIR_VARIABLE

REQUIRED = {
    "venta:images": '{"registry": "ghcr.io/venta", "tag": "0.1.0"}',
    "venta:gateway": '{"host": "venta.localtest.me"}',
}


def test_the_environment_chooses_render_mode_for_one_run() -> None:
    settings = stacks.load("dev", REQUIRED, environ={RENDER_DIR_VARIABLE: "rendered/dev"})
    assert settings.kubernetes.render_dir == "rendered/dev"
    assert stacks.load("dev", REQUIRED, environ={}).kubernetes.render_dir is None


def test_a_render_folder_the_stack_names_wins_over_the_environment() -> None:
    config = {**REQUIRED, "venta:kubernetes": '{"renderDir": "/tmp/mine", "context": "kind-venta"}'}
    settings = stacks.load("dev", config, environ={RENDER_DIR_VARIABLE: "rendered/dev"})
    assert (settings.kubernetes.render_dir, settings.kubernetes.context) == ("/tmp/mine", "kind-venta")
