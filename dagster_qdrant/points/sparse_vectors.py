"""Sparse vector values -> the spec's ``SparseVector`` bodies, checked before anything is sent.

The OpenAPI spec's ``SparseVector`` holds unique ``uint32`` indices and one ``float`` (float32) per index.
Values are kept as the numbers given: a Decimal, text or a bool is refused rather than parsed or rounded,
so that nothing reaches Qdrant changed without a word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dagster_qdrant.errors import QdrantDataError

_U32_MAX = 2**32 - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def sparse_rows(values: list[Any], column: str, labels: Sequence[Any]) -> list[dict[str, list[Any]]]:
    """The sparse vectors of one column, one per row (None: an empty one), or a refusal naming the point."""
    rows = []
    for label, value in zip(labels, values):
        if value is None:
            rows.append({"indices": [], "values": []})
            continue
        indices = list(value.get("indices") or []) if isinstance(value, Mapping) else None
        numbers = list(value.get("values") or []) if isinstance(value, Mapping) else None
        problem = None
        if indices is None or numbers is None:
            problem = "is not a struct/dict with 'indices' and 'values'"
        elif len(indices) != len(numbers):
            problem = f"has {len(indices)} indices but {len(numbers)} values"
        elif any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i <= _U32_MAX for i in indices):
            problem = "has indices that are not unsigned 32-bit integers (Qdrant's sparse indices are u32)"
        elif len(set(indices)) != len(indices):
            problem = "has repeated indices"
        elif kinds := _not_number_kinds(numbers):
            problem = (
                f"has values that are not numbers ({', '.join(kinds)}); they are not converted, so that nothing "
                "is rounded or parsed without a word: cast the values to float (Spark: array<float>)"
            )
        elif (doubles := _float32_range_doubles(numbers)) is None:
            problem = "has NaN or infinite values, or values beyond float32 (Qdrant stores sparse values as float32)"
        if problem:
            raise QdrantDataError(f"Sparse vector column {column!r} {problem} (point {label!r})", point_ids=[label])
        rows.append({"indices": [int(i) for i in indices], "values": doubles.tolist()})
    return rows


def _not_number_kinds(numbers: list[Any]) -> list[str]:
    """The names of the value types that are not int or float (Python or numpy): a bool, a Decimal, text.

    Looked at per type, not per value: a row of a thousand floats has one type to check.
    """
    return sorted(
        kind.__name__
        for kind in set(map(type, numbers))
        if not issubclass(kind, (int, float, np.integer, np.floating)) or issubclass(kind, (bool, np.bool_))
    )


def _float32_range_doubles(numbers: list[Any]) -> np.ndarray | None:
    """The values as the doubles that are sent, or None when one is NaN, infinite or beyond float32's range
    (a larger value would become infinite in Qdrant's float32 storage)."""
    try:
        values = np.asarray(numbers, dtype=np.float64)
    except OverflowError:  # an int beyond a double's range
        return None
    return values if bool((np.abs(values) <= _FLOAT32_MAX).all()) else None  # NaN compares false
