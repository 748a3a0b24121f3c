"""The Prometheus Operator's CRDs as the e2e cluster installs them, built back from the strict schemas."""

from __future__ import annotations

import json
from typing import Any

from infra.platform.requirements import OPERATOR_CRDS
from tests.observability.crd_schemas import OUT, crd_objects, strict, structural


def _nodes(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [node for item in schema for node in _nodes(item)]
    if not isinstance(schema, dict):
        return []
    return [schema, *(node for value in schema.values() for node in _nodes(value))]


def test_the_crds_are_the_ones_the_stacks_read_from_the_cluster() -> None:
    assert sorted(crd["metadata"]["name"] for crd in crd_objects()) == sorted(OPERATOR_CRDS)


def test_their_schemas_are_structural() -> None:
    """A structural schema lists properties or allows additional ones, never both (the API server
    refuses the CRD otherwise), and keeps every declared property."""
    for crd in crd_objects():
        [version] = crd["spec"]["versions"]
        nodes = _nodes(version["schema"]["openAPIV3Schema"])
        both = [n for n in nodes if "properties" in n and "additionalProperties" in n]
        assert both == [], crd["metadata"]["name"]
        assert any(
            "endpoints" in n.get("properties", {}) or "groups" in n.get("properties", {}) for n in nodes
        )


def test_only_what_strict_added_is_taken_out() -> None:
    for path in sorted(OUT.glob("*.json")):
        stored = json.loads(path.read_text())
        assert strict(structural(stored)) == stored, path.name
        # What the stored file gained from `strict`, and so what the round trip above had to undo.
        assert any("properties" in n and n.get("additionalProperties") is False for n in _nodes(stored))
