"""What a read with an inferred schema met that the schema has no room for, said once per partition.

An inferred schema is a guess from a sample: a payload key or a type the sample did not hold can still
turn up. Nothing of it may vanish silently, so the Arrow builder records each such thing here, by path
(``meta.page`` for a struct field) and by what happened to it:

- a key outside the schema is not read (Spark has no column for it);
- a value that does not fit its column's type (a string in a ``bigint`` column, 2.5 in a ``bigint``
  column, an integer a ``double`` cannot hold exactly) is read as null;
- a value that is not text in a column inferred as text is read as its JSON text.

With ``schema_mismatch="warn"`` the read goes on and ``warning()`` gives one message for the partition
(each path, the count, an example point, and the fix); with ``"error"`` the first page holding any of it
fails the read with the same message. A schema the user gives is a choice, not a guess: reads with one
get no findings object, and a value that does not fit such a schema fails the read as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster_qdrant.errors import QdrantSchemaError

logger = logging.getLogger(__name__)

NOT_READ = "not read: the schema has no column for it"
READ_AS_NULL = "read as null"
READ_AS_TEXT = "read as JSON text"


@dataclass
class _Finding:
    count: int = 0
    example_id: Any = None
    example_value: Any = None


@dataclass
class SchemaFindings:
    """Counts of keys and values outside an inferred schema, for one read partition."""

    mode: str
    """``warn`` or ``error`` (the ``schema_mismatch`` option)."""
    collection: str
    sample: Mapping[str, Any] = field(default_factory=dict)
    """What the schema was inferred from (the ``id`` column's ``INFERRED_METADATA_KEY`` metadata)."""
    partition: int | None = None
    point_id: Any = None
    """The point whose values are being converted: the example a finding names."""
    _found: dict[tuple[str, str, str], _Finding] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self._found)

    def unknown_key(self, path: str, count: int = 1, example_id: Any = None) -> None:
        """``count`` points carry ``path``, which the schema does not have."""
        self._add((path, "", NOT_READ), count, self.point_id if example_id is None else example_id, None)

    def not_fitting(self, path: str, expected: str, value: Any, outcome: str = READ_AS_NULL) -> None:
        """A value of ``path`` does not fit ``expected``; ``outcome`` says what the read makes of it."""
        self._add((path, expected, outcome), 1, self.point_id, value)

    def _add(self, key: tuple[str, str, str], count: int, example_id: Any, value: Any) -> None:
        finding = self._found.get(key)
        if finding is None:
            finding = self._found[key] = _Finding(example_id=example_id, example_value=value)
        finding.count += count

    def check_page(self) -> None:
        """In ``error`` mode, fail as soon as a page held anything outside the schema."""
        if self._found and self.mode == "error":
            raise QdrantSchemaError(self.message(), collection=self.collection)

    def message(self) -> str:
        parts = []
        for (path, expected, outcome), finding in sorted(self._found.items()):
            # What the read made of it only when it went on (warn); an error stops the read there.
            then = f": {outcome}" if self.mode == "warn" else ""
            if outcome == NOT_READ:
                parts.append(f"payload key {path!r} in {finding.count} point(s) (e.g. point {finding.example_id!r}){then}")
                continue
            shown = repr(finding.example_value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            parts.append(
                f"{finding.count} value(s) of {path!r} that are not {expected} (e.g. point "
                f"{finding.example_id!r}: {shown}){then}"
            )
        sampled = self.sample.get("sampled")
        origin = f"inferred from {sampled} sampled point(s)" if sampled is not None else "inferred"
        where = f"collection {self.collection!r}" + (
            f", partition {self.partition}" if self.partition is not None else ""
        )
        return (
            f"Reading {where}: the schema ({origin}) has no room for " + "; ".join(parts) + ". Fix: infer from "
            "more points (option sample_size, e.g. sample_size='all') or pass a schema that holds them; "
            "schema_mismatch='error' makes this an error instead of a warning"
        )

    def warn(self) -> None:
        """Log the partition's findings once (``warn`` mode), if there are any."""
        if self._found and self.mode == "warn":
            logger.warning("%s", self.message())


__all__ = ["NOT_READ", "READ_AS_NULL", "READ_AS_TEXT", "SchemaFindings"]
