"""Payload values -> JSON, encoded once per row, never silently changed on the way.

Arrow columns become Python values with ``to_pylist`` (fine for payloads, which are small next to the
vectors), with the few fix-ups JSON needs: maps as objects, nanosecond timestamps as microseconds.
Timestamps and dates are written as RFC 3339 strings by orjson (naive ones as UTC). Types JSON cannot
carry (binary, durations, maps without string keys) are refused by column name before anything is sent.

Two kinds of value would otherwise change without a word, and are refused unless the user chooses:

- NaN and infinities: JSON has no such numbers and orjson writes them as ``null``. They are found per
  column (Arrow, nested too) or, for plain dicts, only in rows whose JSON holds a ``null`` at all.
  ``non_finite="null"`` stores them as null.
- Decimals a double cannot carry to Qdrant and back: Qdrant keeps a payload as serde_json text and parses
  it without serde_json's ``float_roundtrip`` feature (``exact_in_qdrant``). ``decimal_as="string"``
  writes every decimal as its exact text, ``decimal_as="double"`` as the nearest double.
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dagster_qdrant.errors import QdrantDataError
from dagster_qdrant.options import WriteOptions

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS
_MAX_NAMED = 10
_EXACT_POWER = 22
_NON_FINITE_FIX = (
    "JSON has no NaN or infinity (it would be stored as null): replace or drop those values, or write "
    "with non_finite='null' to store them as null"
)


def arrow_payloads(
    batch: pa.RecordBatch, columns: list[str], labels: Sequence[Any], options: WriteOptions
) -> list[bytes]:
    """Each row's payload (the given columns) as JSON bytes; ``labels`` name the rows in errors."""
    if not columns:
        return [b"{}"] * batch.num_rows
    for column in columns:
        problem = _unsupported_type(batch.schema.field(column).type)
        if problem:
            raise QdrantDataError(
                f"Payload column {column!r} has type {batch.schema.field(column).type} ({problem} cannot be a "
                "JSON payload); cast it (e.g. to string) or leave it out with 'payload_fields'"
            )
    if options.non_finite == "error":
        for column in columns:
            _refuse_non_finite(batch.column(column), column, labels)
    arrays = []
    for column in columns:
        array = batch.column(column)
        if pa.types.is_timestamp(array.type) and array.type.unit == "ns":
            array = pc.cast(array, pa.timestamp("us", array.type.tz), safe=False)
        arrays.append(array)
    rows = pa.RecordBatch.from_arrays(arrays, names=columns).to_pylist()
    map_columns = [c for c in columns if _contains_map(batch.schema.field(c).type)]
    for row in rows:
        for column in map_columns:
            row[column] = _maps_to_dicts(row[column], batch.schema.field(column).type)
    return encode_payloads(rows, labels, options, non_finite_checked=True)


# ----- NaN and infinities, by column ------------------------------------------------------------------


def _refuse_non_finite(array: pa.Array, column: str, labels: Sequence[Any]) -> None:
    found = _non_finite_rows(array, column)
    if found is not None:
        path, rows = found
        raise QdrantDataError(
            f"Payload column {path!r} holds NaN or infinite values; {_NON_FINITE_FIX}",
            point_ids=[labels[int(i)] for i in np.flatnonzero(rows)[:_MAX_NAMED]],
        )


def _non_finite_rows(array: pa.Array, path: str) -> tuple[str, np.ndarray] | None:
    """The path of the first nested field holding NaN/inf and a mask of the rows that do, or None."""
    kind = array.type
    if pa.types.is_floating(kind):
        rows = ~np.asarray(pc.fill_null(pc.is_finite(array), True), dtype=bool)
        return (path, rows) if rows.any() else None
    if pa.types.is_dictionary(kind):
        return _non_finite_rows(array.dictionary_decode(), path)
    if pa.types.is_struct(kind):
        for field, child in zip(kind, array.flatten()):  # flatten: parent nulls hide their children
            found = _non_finite_rows(child, f"{path}.{field.name}")
            if found is not None:
                return found
        return None
    if _is_list_like(kind):
        values, parents = _list_values(array)
        found = _non_finite_rows(values, f"{path}[]")
        if found is None:
            return None
        inner, value_rows = found
        value_rows &= np.asarray(array.is_valid(), dtype=bool)[parents]
        rows = np.zeros(len(array), dtype=bool)
        rows[parents[value_rows]] = True
        return (inner, rows) if rows.any() else None
    return None


def _is_list_like(kind: pa.DataType) -> bool:
    return _is_list(kind) or pa.types.is_map(kind)


def _is_list(kind: pa.DataType) -> bool:
    """Every Arrow list type, list views included (Arrow tables may hold them; Spark never sends them)."""
    return (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
            or pa.types.is_list_view(kind) or pa.types.is_large_list_view(kind))


def _list_values(array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The elements under a (possibly sliced) list or map array, and the row of each element."""
    if pa.types.is_fixed_size_list(array.type):
        size = array.type.list_size
        values = array.values.slice(array.offset * size, len(array) * size)
        return values, np.repeat(np.arange(len(array)), size)
    if pa.types.is_list_view(array.type) or pa.types.is_large_list_view(array.type):
        # a view's lists may overlap or come in any order: its elements in row order, with their rows
        return pc.list_flatten(array), np.asarray(pc.list_parent_indices(array))
    offsets = np.asarray(array.offsets, dtype=np.int64)
    children = array.items if pa.types.is_map(array.type) else array.values
    values = children.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    return values, np.repeat(np.arange(len(array)), np.diff(offsets))


# ----- types ------------------------------------------------------------------------------------------


def _unsupported_type(kind: pa.DataType) -> str | None:
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return "binary"
    if pa.types.is_binary_view(kind):
        return "binary"
    if pa.types.is_duration(kind) or pa.types.is_interval(kind) or pa.types.is_union(kind):
        return str(kind)
    if pa.types.is_map(kind):
        if not (pa.types.is_string(kind.key_type) or pa.types.is_large_string(kind.key_type)):
            return "a map without string keys"
        return _unsupported_type(kind.item_type)
    if pa.types.is_struct(kind):
        for index in range(kind.num_fields):
            problem = _unsupported_type(kind.field(index).type)
            if problem:
                return problem
    if pa.types.is_dictionary(kind):
        return _unsupported_type(kind.value_type)
    if _is_list(kind):
        return _unsupported_type(kind.value_type)
    return None


def _contains_map(kind: pa.DataType) -> bool:
    if pa.types.is_map(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_contains_map(kind.field(i).type) for i in range(kind.num_fields))
    if _is_list(kind):
        return _contains_map(kind.value_type)
    return False


def _maps_to_dicts(value: Any, kind: pa.DataType) -> Any:
    """Arrow maps come out of ``to_pylist`` as lists of pairs; JSON wants objects."""
    if value is None or not _contains_map(kind):
        return value
    if pa.types.is_map(kind):
        return {key: _maps_to_dicts(item, kind.item_type) for key, item in value}
    if pa.types.is_struct(kind):
        return {f.name: _maps_to_dicts(value.get(f.name), f.type) for f in kind}
    return [_maps_to_dicts(item, kind.value_type) for item in value]


# ----- what Qdrant gives back exactly ------------------------------------------------------------------


def exact_in_qdrant(value: float) -> bool:
    """True when Qdrant is sure to give ``value`` back bit for bit (a sufficient test, not a necessary one).

    Qdrant stores a payload as serde_json text (the shortest digits that name the double, ryu's format)
    and parses it back without ``float_roundtrip``: the digits become a u64 ``s``, converted to a double,
    then multiplied or divided once by ``10**|e|`` from a table of doubles. When ``s`` is exactly a double
    and ``|e| <= 22`` (so ``10**|e|`` is exact too), that is one correctly rounded operation: the double
    comes back unchanged. Such values are fixed points, so every later rewrite keeps them too.
    """
    if value == 0 or not math.isfinite(value):
        return value == 0
    significand, exponent = serde_json_parts(value)
    return float(significand) == significand and abs(exponent) <= _EXACT_POWER


def serde_json_parts(value: float) -> tuple[int, int]:
    """The (significand, power of ten) serde_json reads from Qdrant's text of a non-zero finite double.

    ryu writes the shortest digits ``m`` with exponent ``k``; a whole number of at most 16 digits is
    written in full with ``.0`` (``1234.0``), which serde_json reads as ``m * 10**(k+1)`` and ``e = -1``.
    """
    _, digits, exponent = decimal.Decimal(repr(abs(value))).normalize().as_tuple()
    significand = int("".join(map(str, digits)))
    if 0 <= exponent and len(digits) + exponent <= 16:
        return significand * 10 ** (exponent + 1), -1
    return significand, int(exponent)


def _decimal_is_exact(value: decimal.Decimal) -> bool:
    """A decimal Qdrant gives back unchanged as a double: the double's shortest text is the decimal itself,
    and Qdrant's parser keeps that double (``exact_in_qdrant``)."""
    number = float(value)
    return math.isfinite(number) and decimal.Decimal(repr(number)) == value and exact_in_qdrant(number)


# ----- encoding ----------------------------------------------------------------------------------------


class _Refused(TypeError):
    """A value the options say not to write; its message names the value and the fix."""


def _json_default(options: WriteOptions) -> Callable[[Any], Any]:
    def default(value: Any) -> Any:
        if isinstance(value, decimal.Decimal):
            return _decimal_json(value, options)
        if isinstance(value, (datetime.datetime, datetime.date)):
            return value.isoformat()
        if isinstance(value, (set, frozenset, tuple)):
            return list(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("binary values cannot be JSON payload")
        raise TypeError(f"{type(value).__name__} cannot be JSON payload")

    return default


def _decimal_json(value: decimal.Decimal, options: WriteOptions) -> Any:
    if not value.is_finite():
        if options.non_finite == "null":
            return None
        raise _Refused(f"decimal {value} is not a number; {_NON_FINITE_FIX}")
    if options.decimal_as == "string":
        return str(value)
    if options.decimal_as == "double" or _decimal_is_exact(value):
        return float(value)
    raise _Refused(
        f"decimal {value} would come back from Qdrant as {float(value)!r}: a double cannot carry it exactly; "
        "write with decimal_as='string' to store its exact text, or decimal_as='double' to accept the rounding"
    )


def encode_payloads(
    rows: list[dict[str, Any]], labels: Sequence[Any], options: WriteOptions, *, non_finite_checked: bool = False
) -> list[bytes]:
    """Each payload dict as JSON bytes; a value JSON cannot carry is named with its field and points.

    ``non_finite_checked``: the rows come from Arrow columns already checked for NaN and infinities.
    """
    default = _json_default(options)
    check_non_finite = options.non_finite == "error" and not non_finite_checked
    encoded = []
    for label, row in zip(labels, rows):
        try:
            data = orjson.dumps(row, default=default, option=_JSON_OPTIONS)
        except (TypeError, orjson.JSONEncodeError):
            raise _payload_error(rows, labels, default) from None
        if check_non_finite and b"null" in data and _non_finite_path(row) is not None:
            raise _non_finite_error(rows, labels)
        encoded.append(data)
    return encoded


def _non_finite_path(value: Any, path: str = "") -> str | None:
    """Where a NaN or infinity sits in a Python payload value (which orjson would write as null)."""
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for item in value:
            found = _non_finite_path(item, f"{path}[]")
            if found is not None:
                return found
    elif isinstance(value, np.ndarray) and value.dtype.kind in "fc" and not np.isfinite(value).all():
        return f"{path}[]"
    elif isinstance(value, np.ndarray) and value.dtype == object:
        return _non_finite_path(value.tolist(), path)
    return None


def _non_finite_error(rows: list[dict[str, Any]], labels: Sequence[Any]) -> QdrantDataError:
    bad = [(label, path) for label, row in zip(labels, rows) if (path := _non_finite_path(row)) is not None]
    return QdrantDataError(
        f"Payload field {bad[0][1]!r} holds NaN or infinite values; {_NON_FINITE_FIX}",
        point_ids=[label for label, _ in bad[:_MAX_NAMED]],
    )


def _payload_error(
    rows: list[dict[str, Any]], labels: Sequence[Any], default: Callable[[Any], Any]
) -> QdrantDataError:
    """Name the first field that cannot be encoded, and the first points whose same field cannot."""

    def problem(value: Any) -> str | None:
        try:
            orjson.dumps(value, default=default, option=_JSON_OPTIONS)
        except (TypeError, orjson.JSONEncodeError) as error:
            if isinstance(error, _Refused) or isinstance(error.__cause__, _Refused):
                return ": " + str(error if isinstance(error, _Refused) else error.__cause__)
            return f" cannot be JSON ({error}); convert it (e.g. to a string) or leave it out with 'payload_fields'"
        return None

    for label, row in zip(labels, rows):
        for key, value in row.items():
            reason = problem(value)
            if reason is not None:
                failing = [other for other, data in zip(labels, rows) if key in data and problem(data[key])]
                return QdrantDataError(
                    f"Payload field {key!r} of point {label!r}{reason}", point_ids=failing[:_MAX_NAMED]
                )
    return QdrantDataError("A payload cannot be encoded as JSON", point_ids=list(labels[:_MAX_NAMED]))


__all__ = ["arrow_payloads", "encode_payloads", "exact_in_qdrant", "serde_json_parts"]
