"""Grafana dashboards kept as JSON beside this module, and the ConfigMaps that ship them.

The JSON files are the source: edit a dashboard in Grafana, export it, and replace the file. Grafana's
dashboard sidecar picks up every ConfigMap labelled `grafana_dashboard: "1"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).with_name("dashboards")
SIDECAR_LABEL = {"grafana_dashboard": "1"}


@dataclass(frozen=True)
class Dashboard:
    name: str  # file stem: overview, marketplace, ...
    uid: str
    title: str
    body: Mapping[str, Any]

    @property
    def file_name(self) -> str:
        return f"venta-{self.name}.json"

    def as_json(self) -> str:
        # Compact and key-sorted: the ConfigMap's content (and so the rollout checksum) is stable.
        return json.dumps(self.body, sort_keys=True, separators=(",", ":"))


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[Dashboard]:
    """Every dashboard in `directory`, sorted by name; a file that is not a dashboard is an error."""
    boards = []
    for path in sorted(directory.glob("*.json")):
        try:
            body = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path.name}: not valid JSON: {err}") from err
        missing = [key for key in ("uid", "title", "panels") if key not in body]
        if missing:
            raise ValueError(f"{path.name}: a Grafana dashboard needs {missing}")
        boards.append(Dashboard(path.stem, body["uid"], body["title"], body))
    if not boards:
        raise ValueError(f"no dashboards in {directory}")
    return boards


def panels(body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel of a dashboard, including those nested in collapsed rows."""
    for panel in body.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every query of a dashboard."""
    for panel in panels(body):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("title", ""), target["expr"]


def configmap_data(board: Dashboard) -> dict[str, str]:
    return {board.file_name: board.as_json()}
