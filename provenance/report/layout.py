"""A layered layout for a small directed graph: columns by depth, left to right.

Deliberately simple and deterministic (the same graph always gives the same picture, so audit
pages can be compared): every node goes in the column after its deepest input (longest path);
nodes with no inputs move right, to just before the first consumer they share with other
inputs (so a commit or an environment is drawn next to the step that used it, not among the
data sources); and a few barycentre sweeps order each column to reduce crossings. Back edges
of a cycle (which hostile evidence can describe) are ignored for layering and still drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

SWEEPS = 4


@dataclass(frozen=True)
class Box:
    """A placed node: its top-left corner and size."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Placement:
    """Where every node goes, and the size of the whole drawing."""

    boxes: dict[str, Box]
    width: float
    height: float
    layers: dict[str, int]


def _acyclic(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``edges`` without the back edges a depth-first search finds (in the given order)."""
    outgoing: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        outgoing[a].append(b)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for start in ids:
        if start in state:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, index = stack[-1]
            if index < len(outgoing[node]):
                stack[-1] = (node, index + 1)
                following = outgoing[node][index]
                if state.get(following) == 1:
                    back.add((node, following))
                elif following not in state:
                    state[following] = 1
                    stack.append((following, 0))
            else:
                state[node] = 2
                stack.pop()
    return [e for e in edges if e not in back and e[0] != e[1]]


def layers(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The column of every node (see the module docstring)."""
    forward = _acyclic(ids, edges)
    incoming: dict[str, list[str]] = {i: [] for i in ids}
    outgoing: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in forward:
        incoming[b].append(a)
        outgoing[a].append(b)
    layer: dict[str, int] = {}
    remaining = {i: len(incoming[i]) for i in ids}
    ready = [i for i in ids if remaining[i] == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        layer[node] = max((layer[p] + 1 for p in incoming[node]), default=0)
        for following in outgoing[node]:
            remaining[following] -= 1
            if remaining[following] == 0:
                ready.append(following)
    # Nodes with no inputs move right, to just before the first consumer they share with other
    # inputs (a commit or an environment goes beside the step that used it); what hangs off
    # them alone (an environment's own checks) moves with them.
    for node in reversed(order):
        joins = [s for s in outgoing[node] if len(incoming[s]) > 1]
        if not incoming[node] and joins:
            layer[node] = max(layer[node], min(layer[s] for s in joins) - 1)
    for node in order:
        if incoming[node]:
            layer[node] = max(layer[node], *(layer[p] + 1 for p in incoming[node]))
    return layer


def _order(
    ids: Sequence[str], edges: Sequence[tuple[str, str]], layer: Mapping[str, int]
) -> list[list[str]]:
    """Columns of ids, each ordered by barycentre sweeps from the given order."""
    count = max(layer.values(), default=-1) + 1
    columns: list[list[str]] = [[] for _ in range(count)]
    for node in ids:
        columns[layer[node]].append(node)
    neighbours: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        if a != b:
            neighbours[a].append(b)
            neighbours[b].append(a)
    for sweep in range(SWEEPS):
        position = {n: i for column in columns for i, n in enumerate(column)}
        sequence = range(1, count) if sweep % 2 == 0 else range(count - 2, -1, -1)
        for c in sequence:
            side = c - 1 if sweep % 2 == 0 else c + 1

            key = _barycentre(position, neighbours, layer, side)
            columns[c] = sorted(columns[c], key=key)
            position.update({n: i for i, n in enumerate(columns[c])})
    return columns


def _barycentre(
    position: Mapping[str, int],
    neighbours: Mapping[str, list[str]],
    layer: Mapping[str, int],
    side: int,
) -> Callable[[str], tuple[float, int]]:
    """The sort key of a node: the mean position of its neighbours in column ``side`` (its own
    position when it has none there), then its own position (a stable tie-break)."""

    def key(node: str) -> tuple[float, int]:
        near = [position[m] for m in neighbours[node] if layer[m] == side]
        centre = sum(near) / len(near) if near else float(position[node])
        return centre, position[node]

    return key


def place(
    ids: Sequence[str],
    edges: Sequence[tuple[str, str]],
    heights: Mapping[str, float],
    *,
    column_width: float = 214,
    column_gap: float = 40,
    row_gap: float = 18,
    margin: float = 16,
) -> Placement:
    """Boxes for every node: columns by :func:`layers`, stacked and centred vertically."""
    layer = layers(ids, edges)
    columns = _order(ids, edges, layer)
    totals = [sum(heights[n] for n in col) + row_gap * max(len(col) - 1, 0) for col in columns]
    tallest = max(totals, default=0.0)
    boxes: dict[str, Box] = {}
    for c, column in enumerate(columns):
        y = margin + (tallest - totals[c]) / 2
        x = margin + c * (column_width + column_gap)
        for node in column:
            boxes[node] = Box(x, y, column_width, heights[node])
            y += heights[node] + row_gap
    width = 2 * margin + len(columns) * column_width + max(len(columns) - 1, 0) * column_gap
    return Placement(boxes, width, 2 * margin + tallest, dict(layer))


__all__ = ["Box", "Placement", "layers", "place"]
