"""Qdrant Edge results (`Record`, `ScoredPoint`) as Qdrant's JSON, with vectors written as float32.

Qdrant stores vectors as float32 and writes each number in float32's shortest form (`0.47318864`). The
engine hands them over as Python floats (float64), whose shortest form is twice as long
(`0.4731886386871338`): responses ~40% bigger and slower to parse for every client. So the vectors of a
whole page are collected, converted to one float32 numpy array with a single `np.fromiter` (no Python work
per number), and each point gets a view of its slice; the HTTP layer serializes those with orjson's numpy
support, which writes float32's shortest form.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

import numpy as np
import qdrant_edge as edge

from dagster_qdrant.embedded.filters import id_to_json


def records_to_json(records: Iterable[Any]) -> list[dict[str, Any]]:
    """`Record`s as Qdrant's `Record` JSON."""
    items = []
    for record in records:
        item = {"id": id_to_json(record.id), "payload": record.payload, "vector": record.vector}
        order_value = record.order_value
        if order_value is not None:
            item["order_value"] = order_value
        items.append(item)
    _vectors_to_float32(items)
    return items


def scored_to_json(points: Iterable[Any]) -> list[dict[str, Any]]:
    """`ScoredPoint`s as Qdrant's `ScoredPoint` JSON."""
    items = []
    for point in points:
        item = {
            "id": id_to_json(point.id),
            "version": point.version,
            "score": point.score,
            "payload": point.payload,
            "vector": point.vector,
        }
        order_value = point.order_value
        if order_value is not None:
            item["order_value"] = order_value
        items.append(item)
    _vectors_to_float32(items)
    return items


def vector_to_json(vector: Any) -> Any:
    """One vector output of the engine as plain Python JSON values (lists and dicts, no numpy)."""
    if isinstance(vector, dict):
        return {name: _sparse_to_json(value) for name, value in vector.items()}
    return vector


def _sparse_to_json(value: Any) -> Any:
    if isinstance(value, edge.SparseVector):
        return {"indices": value.indices, "values": value.values}
    return value


class _Float32Slots:
    """Float lists found in many points, converted together and put back as float32 views."""

    def __init__(self) -> None:
        self.slots: list[tuple[Any, Any, int, int, tuple[int, int] | None]] = []
        self.parts: list[Iterable[float]] = []
        self.total = 0

    def add(self, container: Any, key: Any, values: list[Any]) -> None:
        """A dense vector, a sparse vector's values, or a multivector (list of equal-length lists)."""
        if values and type(values[0]) is list:
            rows, size = len(values), len(values[0])
            if sum(map(len, values)) != rows * size:
                return  # not a matrix; left as Python lists
            self._add(container, key, chain.from_iterable(values), rows * size, (rows, size))
        else:
            self._add(container, key, values, len(values), None)

    def _add(self, container: Any, key: Any, values: Iterable[Any], count: int, shape: tuple[int, int] | None) -> None:
        self.slots.append((container, key, self.total, count, shape))
        self.parts.append(values)
        self.total += count

    def convert(self) -> None:
        if not self.slots:
            return
        flat = np.fromiter(chain.from_iterable(self.parts), dtype=np.float32, count=self.total)
        for container, key, start, count, shape in self.slots:
            part = flat[start : start + count]
            container[key] = part if shape is None else part.reshape(shape)


def _vectors_to_float32(items: list[dict[str, Any]]) -> None:
    slots = _Float32Slots()
    for item in items:
        vector = item["vector"]
        if vector is None:
            continue
        if type(vector) is dict:
            for name, value in vector.items():
                if isinstance(value, edge.SparseVector):
                    sparse = {"indices": value.indices, "values": value.values}
                    vector[name] = sparse
                    slots.add(sparse, "values", sparse["values"])
                else:
                    slots.add(vector, name, value)
        else:
            slots.add(item, "vector", vector)
    slots.convert()
