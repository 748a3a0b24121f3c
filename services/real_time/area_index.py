"""Which connections' areas may hold a position: a grid over latitude and longitude.

Matching every update against every connection's areas cost real-time a Python loop over all its
clients per update: with 2,000 clients watching 1 km circles, about 75 us of CPU per delivery, most of
it spent on clients far away. The index files each connection under the grid cells its areas' bounding
boxes overlap (cells of ``CELL_DEGREES``), so an update is tested, exactly as before, only against the
connections filed under its own cell. An area wider than ``MAX_CELLS`` cells (a box of a whole region),
or one past a connection's budget of ``MAX_CELLS`` cells in all, is not filed cell by cell: it is
tested against every update, as all were before. Entries hold the
area itself, so the exact test is the area's own ``contains``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from services.real_time.subscriptions import BBox, Circle

Area = BBox | Circle

CELL_DEGREES = 0.01  # about 1.1 km of latitude; a 1 km circle overlaps 1 to 6 cells
MAX_CELLS = 400  # cells one connection is filed under, at most; beyond, tested against every update
_LON_CELLS = round(360 / CELL_DEGREES)
T = TypeVar("T", bound=Hashable)


def _cell(value: float) -> int:
    return math.floor(value / CELL_DEGREES)


def _lon_cells(box: BBox) -> list[int]:
    first, last = _cell(box.min_lon), _cell(box.max_lon)
    if box.min_lon <= box.max_lon:
        return list(range(first, last + 1))
    # Across the antimeridian: from the west edge to 180, then from -180 to the east edge.
    return list(range(first, _cell(180.0) + 1)) + list(range(_cell(-180.0), last + 1))


def cells_of(box: BBox) -> list[tuple[int, int]] | None:
    """The cells a box overlaps, or None when they are more than MAX_CELLS."""
    rows = _cell(box.max_lat) - _cell(box.min_lat) + 1
    columns = _lon_cells(box)
    if rows * len(columns) > MAX_CELLS:
        return None
    return [
        (row, column % _LON_CELLS)
        for row in range(_cell(box.min_lat), _cell(box.max_lat) + 1)
        for column in columns
    ]


class AreaIndex(Generic[T]):
    """Connections' areas by the cells the areas' boxes overlap; each entry is (connection, area)."""

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], list[tuple[T, Area]]] = {}
        self._filed: dict[T, list[tuple[int, int]]] = {}
        self._wide: dict[T, list[Area]] = {}
        self._wide_entries: list[tuple[T, Area]] = []

    def add(self, client: T, areas: Iterable[Area]) -> None:
        """File ``client``'s areas (replacing what was filed for it before). A connection is filed
        under at most MAX_CELLS cells in all, so memory stays bounded by the connection count
        whatever its subscriptions; beyond that its areas are tested against every update."""
        self.remove(client)
        placed: list[tuple[tuple[T, Area], list[tuple[int, int]]]] = []
        wide: list[Area] = []
        budget = MAX_CELLS
        for area in areas:
            found = cells_of(area if isinstance(area, BBox) else area.box)
            if found is None or len(found) > budget:
                wide.append(area)
            else:
                budget -= len(found)
                placed.append(((client, area), found))
        filed: set[tuple[int, int]] = set()
        for entry, found in placed:
            for cell in found:
                self._cells.setdefault(cell, []).append(entry)  # one tuple per area, shared
            filed.update(found)
        self._filed[client] = list(filed)
        if wide:
            self._wide[client] = wide
            self._wide_entries = [(c, a) for c, areas_ in self._wide.items() for a in areas_]

    def remove(self, client: T) -> None:
        if self._wide.pop(client, None) is not None:
            self._wide_entries = [(c, a) for c, areas_ in self._wide.items() for a in areas_]
        for cell in self._filed.pop(client, ()):
            kept = [entry for entry in self._cells[cell] if entry[0] is not client]
            if kept:
                self._cells[cell] = kept
            else:
                del self._cells[cell]

    def candidates(self, lat: float, lon: float) -> Iterable[tuple[T, Area]]:
        """Every (connection, area) whose area may hold this position (to be tested exactly)."""
        near = self._cells.get((_cell(lat), _cell(lon) % _LON_CELLS), ())
        if not self._wide_entries:
            return near
        return [*self._wide_entries, *near]

    def __len__(self) -> int:
        return len(self._filed.keys() | self._wide.keys())
