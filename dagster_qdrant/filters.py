"""Filter algebra over Qdrant's JSON filters: the one way to say "all of these".

A Qdrant ``Filter`` is an object of clauses (``must``, ``should``, ``must_not``, ``min_should``), and a
filter is also a valid condition inside another filter's clause (the spec's ``Condition`` includes
``Filter``). So "all of these filters and conditions" is one ``must`` clause that lists them; a lone
filter needs no wrapping, a lone condition does. Read planning (a slice of the collection), filter pushdown
(translated Spark filters) and the Dagster IO manager (the asked partitions) all narrow a user's filter
this way, so they build the same request for the same question.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FILTER_CLAUSES = frozenset({"must", "should", "must_not", "min_should"})
"""The keys of a Qdrant ``Filter`` object (openapi ``Filter``)."""


def is_filter(value: Mapping[str, Any]) -> bool:
    """Whether ``value`` is a ``Filter`` (only clause keys) rather than a single field/id/... condition."""
    return bool(value) and set(value) <= FILTER_CLAUSES


def all_of(*parts: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """One filter that a point passes exactly when it passes every one of ``parts``.

    Each part is a filter or a condition; ``None`` and empty parts ask for nothing and are left out. With
    nothing left the result is None (no filter: every point); a single filter is returned as it is.
    """
    present = [dict(part) for part in parts if part]
    if not present:
        return None
    if len(present) == 1 and is_filter(present[0]):
        return present[0]
    return {"must": present}


def match_any(key: str, values: list[Any]) -> dict[str, Any]:
    """The filter "payload ``key`` is one of ``values``": ``match.value`` for one value, ``match.any`` else."""
    if len(values) == 1:
        return {"must": [{"key": key, "match": {"value": values[0]}}]}
    return {"must": [{"key": key, "match": {"any": list(values)}}]}


__all__ = ["FILTER_CLAUSES", "all_of", "is_filter", "match_any"]
