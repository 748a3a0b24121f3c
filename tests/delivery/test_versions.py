"""Version arguments and the choice of the version a rollback returns to."""

import json

import pytest

from venta.stack_config import IMAGE_TAG, image_tag
from venta.versions import Update, VersionError, check_version, deployed_versions, rollback_version


@pytest.mark.parametrize("version", ["v1.2.3", "1.2.3", "v0.10.0-rc.1", "v2.0.0-beta-2", "0a1b2c3", "f" * 40])
def test_release_tags_and_commit_ids_are_versions(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize(
    "version", ["", "v1.2", "v01.2.3", "1.2.3+build", "latest", "0A1B2C3", "abc123", "f" * 41, "v1.2.3 ; rm"]
)
def test_anything_else_is_refused_with_the_expected_shapes(version: str) -> None:
    with pytest.raises(VersionError, match=r"expected a release tag like v1\.2\.3"):
        check_version(version)


def ok(version: str, kind: str = "update", result: str = "succeeded") -> Update:
    return Update(kind, result, f"venta deploy dev {version}", {IMAGE_TAG: version})


def test_only_successful_updates_count_as_deployed() -> None:
    history = [ok("v3", result="failed"), ok("v2", kind="preview"), ok("v1"), ok("v0", kind="destroy")]
    assert deployed_versions(history) == ["v1"]


def test_the_version_is_read_from_the_images_object_or_the_message() -> None:
    history = [
        Update("update", "succeeded", "", {"venta:images": json.dumps({"tag": "v2.0.0", "build": False})}),
        Update("update", "succeeded", "venta rollback dev v1.0.0", {}),
        Update("update", "succeeded", "manual pulumi up", {}),
    ]
    assert deployed_versions(history) == ["v2.0.0", "v1.0.0"]


def test_image_tag_ignores_config_it_cannot_read() -> None:
    assert image_tag({"venta:images": "not json"}) is None
    assert image_tag({"venta:images": json.dumps(["v1"])}) is None
    assert image_tag({}) is None


def test_rollback_skips_redeploys_of_the_current_version() -> None:
    history = [ok("v3"), ok("v3"), ok("v2"), ok("v1")]
    assert rollback_version(history, "dev", None) == "v2"


def test_rollback_to_a_named_version_needs_it_in_the_history() -> None:
    history = [ok("v3"), ok("v2"), ok("v1")]
    assert rollback_version(history, "dev", "v1") == "v1"
    with pytest.raises(VersionError, match=r"'v0' was never deployed to 'dev' \(deployed: v3, v2, v1\)"):
        rollback_version(history, "dev", "v0")
