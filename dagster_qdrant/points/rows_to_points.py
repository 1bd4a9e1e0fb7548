"""Rows -> Qdrant points, columnar: Arrow record batches (Spark, pandas, pyarrow) or plain dicts.

Everything a row can get wrong is checked here, before any byte is sent: ids (unsigned 64-bit integers
or UUIDs; integers above Spark's long come as ``decimal(20,0)`` or as their digits, the way the reader
returns them), vectors (null, empty, ragged, NaN/inf) and payload values (types JSON cannot carry, NaN,
inexact decimals: payload_to_json.py). Vectors become one float32 matrix per vector name (flattened from the
Arrow list array, no per-row Python), and each row's payload is encoded once by orjson (payload_to_json.py) and
included as an ``orjson.Fragment``: request bodies are then assembled without re-encoding, the exact
payload size of each row is known for byte budgeting, and the same bytes feed the content hash of
generated ids.
"""

from __future__ import annotations

import decimal
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dagster_qdrant.errors import QdrantDataError
from dagster_qdrant.options import WriteOptions
from dagster_qdrant.points.payload_to_json import arrow_payloads, encode_payloads
from dagster_qdrant.points.sparse_vectors import sparse_rows

ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "points.dagster-qdrant")
"""Namespace of the uuid5 ids made from row content when ``id_field`` is None."""
_BYTES_PER_FLOAT = 17  # upper bound of one float32 in JSON ("-0.0000042669335,")
_BYTES_PER_SPARSE_ENTRY = 36  # upper bound of one entry: a u32 index ("4294967295,") and a double ("-2.2250738585072014e-308,")
_EMPTY_SPARSE_BYTES = len(b'{"indices":[],"values":[]}')
_BYTES_PER_ROW = 64  # id, brackets, keys
_ID_LIMIT = 2**64
_UUID_HEX_DIGITS = 32
"""A 32-character string is a UUID in its hex form even when every character is a digit."""
_ID_RULE = "Qdrant ids are unsigned 64-bit integers (0 to 18446744073709551615) or UUIDs"


@dataclass
class PointColumns:
    """Validated points in column form, ready to be cut into requests."""

    ids: list[int | str]
    dense: dict[str, np.ndarray]  # vector name ("" = unnamed) -> (rows, size) float32, C-contiguous
    sparse: dict[str, list[dict[str, list[Any]]]]
    payloads: list[bytes] | None  # each row's payload, already JSON
    row_bytes: np.ndarray  # upper-bound estimate of each row's encoded size
    vector_columns: dict[str, str]  # vector name -> column it came from (for messages)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, start: int, stop: int) -> PointColumns:
        return PointColumns(
            ids=self.ids[start:stop],
            dense={name: matrix[start:stop] for name, matrix in self.dense.items()},
            sparse={name: values[start:stop] for name, values in self.sparse.items()},
            payloads=None if self.payloads is None else self.payloads[start:stop],
            row_bytes=self.row_bytes[start:stop],
            vector_columns=self.vector_columns,
        )

    def vector_sizes(self) -> dict[str, int]:
        return {name: int(matrix.shape[1]) for name, matrix in self.dense.items()}

    def _vectors(self) -> Any:
        if set(self.dense) == {""} and not self.sparse:
            return self.dense[""]
        return {**self.dense, **self.sparse}

    def batch_body(self) -> dict[str, Any]:
        """The column form of upsert: ``{"batch": {"ids", "vectors", "payloads"}}``."""
        batch: dict[str, Any] = {"ids": self.ids, "vectors": self._vectors()}
        if self.payloads is not None:
            batch["payloads"] = [orjson.Fragment(payload) for payload in self.payloads]
        return {"batch": batch}

    def points_body(self) -> dict[str, Any]:
        """The row form of upsert: ``{"points": [{"id", "vector", "payload"}]}``."""
        points = []
        for row, point_id in enumerate(self.ids):
            if set(self.dense) == {""} and not self.sparse:
                vector: Any = self.dense[""][row]
            else:
                vector = {name: matrix[row] for name, matrix in self.dense.items()}
                vector.update({name: values[row] for name, values in self.sparse.items()})
            point: dict[str, Any] = {"id": point_id, "vector": vector}
            if self.payloads is not None:
                point["payload"] = orjson.Fragment(self.payloads[row])
            points.append(point)
        return {"points": points}


def encode_body(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


# ----- from Arrow -------------------------------------------------------------------------------------


def from_record_batch(batch: pa.RecordBatch, options: WriteOptions, first_row: int = 0) -> PointColumns:
    """Validate one Arrow record batch and turn it into columns; ``first_row`` numbers rows in messages."""
    columns = set(batch.schema.names)
    _require_columns(options, columns)
    payload_columns = _payload_columns(options, batch.schema.names)
    ids = _arrow_ids(batch.column(options.id_field), options.id_field, first_row) if options.id_field else None
    labels = ids if ids is not None else [f"row {first_row + i}" for i in range(batch.num_rows)]
    dense = {
        name: _arrow_matrix(batch.column(column), column, labels)
        for column, name in options.dense_vector_columns().items()
    }
    sparse = {
        name: sparse_rows(batch.column(column).to_pylist(), column, labels)
        for column, name in options.sparse_vector_fields.items()
    }
    payloads = arrow_payloads(batch, payload_columns, labels, options)
    return _assemble(ids, dense, sparse, payloads, options)


def _arrow_ids(array: pa.Array, column: str, first_row: int) -> list[int | str]:
    kind = array.type
    if array.null_count:
        rows = [first_row + i for i, valid in enumerate(array.is_valid().to_pylist()) if not valid]
        raise QdrantDataError(f"Id column {column!r} is null in row(s) {rows[:10]}; every point needs an id")
    if pa.types.is_integer(kind):
        if pa.types.is_signed_integer(kind) and len(array) and pc.min(array).as_py() < 0:
            rows = np.flatnonzero(array.to_numpy() < 0)[:10]
            values = [array[int(i)].as_py() for i in rows]
            raise QdrantDataError(
                f"Id column {column!r} has negative ids {values} (rows {[first_row + int(i) for i in rows]}); "
                "Qdrant ids are unsigned 64-bit integers or UUIDs"
            )
        return array.to_pylist()
    if pa.types.is_decimal(kind):
        return [_decimal_id(value, column, first_row + row) for row, value in enumerate(array.to_pylist())]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return [_text_id(value, column, first_row + row) for row, value in enumerate(array.to_pylist())]
    if pa.types.is_fixed_size_binary(kind) and kind.byte_width == 16:
        return [str(uuid.UUID(bytes=value)) for value in array.to_pylist()]
    raise QdrantDataError(
        f"Id column {column!r} has type {kind}; ids must be unsigned integers (integer or decimal(20,0) "
        "columns, or strings of digits), or UUID strings (cast the column, or set id_field=None to make ids "
        "from the row content)"
    )


def _arrow_matrix(array: pa.Array, column: str, labels: Sequence[Any]) -> np.ndarray:
    kind = array.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
        raise QdrantDataError(
            f"Vector column {column!r} has type {kind}; a vector must be an array of floats "
            "(Spark: array<float>; for ML vectors use pyspark.ml.functions.vector_to_array)"
        )
    if not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise QdrantDataError(f"Vector column {column!r} holds {kind.value_type}, not numbers")
    if array.null_count:
        raise _row_error(f"Vector column {column!r} is null", labels, ~np.asarray(array.is_valid()))
    rows = len(array)
    if pa.types.is_fixed_size_list(kind):
        size = kind.list_size
    else:
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        if rows and (lengths == 0).any():
            raise _row_error(f"Vector column {column!r} has empty vectors", labels, lengths == 0)
        size = int(lengths[0]) if rows else 0
        if rows and (lengths != size).any():
            raise _row_error(
                f"Vector column {column!r} has vectors of different sizes ({sorted(set(lengths.tolist()))[:5]}, "
                f"first row size {size}); every vector of a column must have the same size",
                labels,
                lengths != size,
            )
    values = array.flatten()
    if values.null_count:
        nulls = ~np.asarray(values.is_valid()).reshape(rows, size).all(axis=1)
        raise _row_error(f"Vector column {column!r} has null elements", labels, nulls)
    with np.errstate(over="ignore"):
        flat = values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return _checked_matrix(flat.reshape(rows, size), column, labels)



def from_records(rows: Sequence[Mapping[str, Any]], options: WriteOptions, first_row: int = 0) -> PointColumns:
    """Validate plain dicts (``write_qdrant_points``); payload values are kept as given (nested dicts too)."""
    if not rows:
        return _assemble([] if options.id_field else None, {}, {}, [], options)
    for row_number, row in enumerate(rows, start=first_row):
        if not isinstance(row, Mapping):
            raise QdrantDataError(f"Point {row_number} is a {type(row).__name__}, not a dict of column -> value")
    _require_columns(options, set().union(*(row.keys() for row in rows)))
    ids = None
    if options.id_field:
        ids = [_record_id(row.get(options.id_field), options.id_field, first_row + i) for i, row in enumerate(rows)]
    labels = ids if ids is not None else [f"row {first_row + i}" for i in range(len(rows))]
    dense = {
        name: _record_matrix([row.get(column) for row in rows], column, labels)
        for column, name in options.dense_vector_columns().items()
    }
    sparse = {
        name: sparse_rows([row.get(column) for row in rows], column, labels)
        for column, name in options.sparse_vector_fields.items()
    }
    excluded = options.excluded_from_payload()
    if options.payload_fields is not None:
        keep = options.payload_fields
        payload_rows = [{key: row.get(key) for key in keep if key in row} for row in rows]
    else:
        payload_rows = [{key: value for key, value in row.items() if key not in excluded} for row in rows]
    return _assemble(ids, dense, sparse, encode_payloads(payload_rows, labels, options), options)


def _record_id(value: Any, column: str, row: int) -> int | str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if 0 <= int(value) < _ID_LIMIT:
            return int(value)
        raise QdrantDataError(f"Row {row}: id {value!r} in {column!r} is out of range; {_ID_RULE}")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return _text_id(value, column, row)
    if isinstance(value, decimal.Decimal):
        return _decimal_id(value, column, row)
    if value is None:
        raise QdrantDataError(f"Row {row} has no {column!r}; every point needs an id (or set id_field=None)")
    raise QdrantDataError(
        f"Row {row}: id {value!r} in {column!r} is a {type(value).__name__}; ids must be unsigned integers or UUIDs"
    )


def _decimal_id(value: decimal.Decimal, column: str, row: int) -> int:
    """An integer id from a decimal (Spark's ``decimal(20,0)`` holds every unsigned 64-bit id)."""
    if value.is_finite() and value == value.to_integral_value() and 0 <= value < _ID_LIMIT:
        return int(value)
    raise QdrantDataError(f"Row {row}: id {value} in {column!r} is not a whole number in range; {_ID_RULE}")


def _text_id(value: str, column: str, row: int) -> int | str:
    """An id from text: digits alone are an integer id (how the reader returns ids beyond Spark's long),
    anything else must be a UUID.

    Digits are taken only in their one spelling (no sign, spaces or leading zeros): ``"007"`` and ``"7"``
    would otherwise be one point under two names, and the id would not read back as it was written.
    """
    if value.isascii() and value.isdigit() and len(value) != _UUID_HEX_DIGITS:
        number = int(value)
        if str(number) != value:
            raise QdrantDataError(
                f"Row {row}: id {value!r} in {column!r} has leading zeros; write the integer id as its digits "
                f"alone ({str(number)!r}): {_ID_RULE}"
            )
        if number >= _ID_LIMIT:
            raise QdrantDataError(f"Row {row}: id {value!r} in {column!r} is out of range; {_ID_RULE}")
        return number
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        pass
    digits = value.strip().lstrip("+-")
    if digits.isascii() and digits.isdigit():
        raise QdrantDataError(
            f"Row {row}: id {value!r} in {column!r} is not an id: write an integer id as its digits alone, with "
            f"no sign, spaces or leading zeros; {_ID_RULE}"
        )
    raise QdrantDataError(
        f"Row {row}: id {value!r} in {column!r} is neither an unsigned integer nor a UUID; {_ID_RULE} "
        "(set id_field=None to make UUIDs from the row content)"
    )


def _record_matrix(values: list[Any], column: str, labels: Sequence[Any]) -> np.ndarray:
    missing = np.array([value is None for value in values])
    if missing.any():
        raise _row_error(f"Vector {column!r} is missing or null", labels, missing)
    text = np.array([isinstance(value, (str, bytes, Mapping)) for value in values])
    if text.any():
        raise _row_error(f"Vector {column!r} must be a list or array of numbers, not text or a dict", labels, text)
    try:
        lengths = np.array([len(value) for value in values])
    except TypeError:
        raise QdrantDataError(f"Vector {column!r} must be a list or array of numbers in every row") from None
    if len(values) and (lengths == 0).any():
        raise _row_error(f"Vector {column!r} is empty", labels, lengths == 0)
    if len(values) and (lengths != lengths[0]).any():
        raise _row_error(
            f"Vector {column!r} has different sizes ({sorted(set(lengths.tolist()))[:5]}, first row size "
            f"{lengths[0]}); every vector of a column must have the same size",
            labels,
            lengths != lengths[0],
        )
    try:
        with np.errstate(over="ignore"):
            matrix = np.asarray(values, dtype=np.float32).reshape(len(values), -1 if len(values) else 0)
    except (TypeError, ValueError) as error:
        raise QdrantDataError(f"Vector {column!r} holds values that are not numbers ({error})") from None
    return _checked_matrix(matrix, column, labels)



def _require_columns(options: WriteOptions, columns: set[str]) -> None:
    if options.id_field and options.id_field not in columns:
        raise QdrantDataError(
            f"Id column {options.id_field!r} not found (columns: {sorted(columns)}); set id_field to the id "
            "column, or id_field=None to make ids from the row content"
        )
    vector_columns = list(options.dense_vector_columns()) + list(options.sparse_vector_fields)
    missing = [column for column in vector_columns if column not in columns]
    if missing:
        raise QdrantDataError(
            f"Vector column(s) {missing} not found (columns: {sorted(columns)}); set vector_field, "
            "vector_fields or sparse_vector_fields to the columns holding the vectors"
        )
    if options.payload_fields is not None:
        absent = [column for column in options.payload_fields if column not in columns]
        if absent:
            raise QdrantDataError(f"Payload field(s) {absent} not found (columns: {sorted(columns)})")


def _payload_columns(options: WriteOptions, names: list[str]) -> list[str]:
    if options.payload_fields is not None:
        return list(options.payload_fields)
    excluded = options.excluded_from_payload()
    return [name for name in names if name not in excluded]


def _checked_matrix(matrix: np.ndarray, column: str, labels: Sequence[Any]) -> np.ndarray:
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        raise _row_error(f"Vector column {column!r} has NaN or infinite values", labels, bad)
    return np.ascontiguousarray(matrix)


def _row_error(message: str, labels: Sequence[Any], mask: np.ndarray) -> QdrantDataError:
    bad = [labels[int(i)] for i in np.flatnonzero(mask)[:10]]
    return QdrantDataError(message, point_ids=bad)


def _assemble(
    ids: list[int | str] | None,
    dense: dict[str, np.ndarray],
    sparse: dict[str, list[dict[str, list[Any]]]],
    payloads: list[bytes],
    options: WriteOptions,
) -> PointColumns:
    rows = len(payloads)
    sizes = np.full(rows, _BYTES_PER_ROW, dtype=np.int64)
    sizes += np.fromiter((len(payload) for payload in payloads), np.int64, rows) if rows else 0
    # The points form names every vector of every row, so each name is counted per row.
    for name, matrix in dense.items():
        sizes += _name_bytes(name) + 1 + matrix.shape[1] * _BYTES_PER_FLOAT  # "[", "]", less the last comma
    for name, values in sparse.items():
        entries = np.fromiter((len(v["indices"]) for v in values), np.int64, rows)
        sizes += _name_bytes(name) + _EMPTY_SPARSE_BYTES + entries * _BYTES_PER_SPARSE_ENTRY
    if ids is None:
        ids = _content_ids(dense, sparse, payloads)
    columns = {name: column for column, name in options.dense_vector_columns().items()}
    columns.update({name: column for column, name in options.sparse_vector_fields.items()})
    return PointColumns(ids, dense, sparse, payloads, sizes, columns)


def _name_bytes(name: str) -> int:
    """A vector's name as a key: its JSON text, the colon and the comma after the value."""
    return len(orjson.dumps(name)) + 2


def _content_ids(
    dense: dict[str, np.ndarray], sparse: dict[str, list[dict[str, list[Any]]]], payloads: list[bytes]
) -> list[int | str]:
    """uuid5 of each row's content, so a retried task writes the same points instead of new ones.

    The formula is the README's ("Ids from content"), little-endian on every machine, so that the ids can be
    computed outside this library and stay the same across its versions.
    """
    ids: list[int | str] = []
    for row, payload in enumerate(payloads):
        digest = hashlib.sha1(ID_NAMESPACE.bytes)
        digest.update(payload)
        for name in sorted(dense):
            digest.update(name.encode() + b"\0" + dense[name][row].astype("<f4", copy=False).tobytes())
        for name in sorted(sparse):
            digest.update(name.encode() + b"\0" + orjson.dumps(sparse[name][row]))
        ids.append(str(uuid.UUID(bytes=digest.digest()[:16], version=5)))
    return ids
