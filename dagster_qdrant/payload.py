"""Payload values -> JSON, encoded once per row.

Arrow columns become Python values with ``to_pylist`` (fine for payloads, which are small next to the
vectors), with the few fix-ups JSON needs: maps as objects, nanosecond timestamps as microseconds,
decimals as numbers. Timestamps and dates are written as RFC 3339 strings by orjson (naive ones as UTC).
Types JSON cannot carry (binary, durations, maps without string keys) are refused by column name before
anything is sent.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dagster_qdrant.errors import QdrantDataError

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def arrow_payloads(batch: pa.RecordBatch, columns: list[str], labels: Sequence[Any]) -> list[bytes]:
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
    return encode_payloads(rows, labels)


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
    if hasattr(kind, "value_type") and (pa.types.is_list(kind) or pa.types.is_large_list(kind)
                                       or pa.types.is_fixed_size_list(kind)):
        return _unsupported_type(kind.value_type)
    return None


def _contains_map(kind: pa.DataType) -> bool:
    if pa.types.is_map(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_contains_map(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
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


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError("binary values cannot be JSON payload")
    raise TypeError(f"{type(value).__name__} cannot be JSON payload")


def encode_payloads(rows: list[dict[str, Any]], labels: Sequence[Any]) -> list[bytes]:
    """Each payload dict as JSON bytes; a value JSON cannot carry is named with its field and point."""
    encoded = []
    for label, row in zip(labels, rows):
        try:
            encoded.append(orjson.dumps(row, default=_json_default, option=_JSON_OPTIONS))
        except (TypeError, orjson.JSONEncodeError):
            raise _payload_error(row, label) from None
    return encoded


def _payload_error(row: dict[str, Any], label: Any) -> QdrantDataError:
    for key, value in row.items():
        try:
            orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS)
        except (TypeError, orjson.JSONEncodeError) as error:
            return QdrantDataError(
                f"Payload field {key!r} of point {label!r} cannot be JSON ({error}); convert it (e.g. to a string) "
                "or leave it out with 'payload_fields'",
                point_ids=[label],
            )
    return QdrantDataError(f"Payload of point {label!r} cannot be encoded as JSON", point_ids=[label])


__all__ = ["arrow_payloads", "encode_payloads"]
