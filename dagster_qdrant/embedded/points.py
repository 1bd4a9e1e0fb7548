"""Qdrant's JSON points -> Qdrant Edge `Point`s, validated whole before anything is applied.

Upsert bodies come in two forms (`PointsList` `{"points": [...]}` and `PointsBatch`
`{"batch": {"ids", "vectors", "payloads"}}`). Every point's id, payload and vectors are checked against the
collection's vector config (`vector_schema`) before a single point is written, as Qdrant does. The batch form
of dense vectors is the hot path of bulk loads: its columns are checked with C-level passes and its `Point`s
are built with one `map`, with no Python loop per point; only when the engine's constructor refuses a point
(a bad id or a non-number) are the points built one by one to name the offending one.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded.errors import bad_json, bad_request
from dagster_qdrant.embedded.request_fields import parse_point_id
from dagster_qdrant.embedded.vector_schema import VectorSpec, check_column, check_vector_struct


def parse_upsert(body: Any, specs: dict[str, VectorSpec]) -> list[edge.Point]:
    """The points of an upsert body, either form, all checked against `specs` (see `vector_specs`)."""
    if not isinstance(body, dict):
        raise bad_json("upsert body must be an object with `points` or `batch`")
    if body.get("points") is not None:
        return _points_list(body["points"], specs)
    if body.get("batch") is not None:
        return _points_batch(body["batch"], specs)
    raise bad_json("upsert body must have `points` (a list of points) or `batch` ({ids, vectors, payloads})")


def _points_list(points: Any, specs: dict[str, VectorSpec]) -> list[edge.Point]:
    if not isinstance(points, list):
        raise bad_json(f"`points` must be a list, got {type(points).__name__}")
    result = []
    for point in points:
        if not isinstance(point, dict) or "id" not in point:
            raise bad_json(f"each point must be an object with `id`, `vector` and optional `payload`, got {point!r}")
        vector = point.get("vector")
        if vector is None:  # PointStruct requires `vector` and VectorStruct is not nullable ({} names none)
            raise bad_json(f"missing field `vector` in point {point['id']!r}: give its vector(s), or {{}} for none")
        point_id = parse_point_id(point["id"])
        check_vector_struct(vector, specs, point["id"])
        result.append(_point(point_id, parse_vector(vector), point.get("payload"), point["id"]))
    return result


def _points_batch(batch: Any, specs: dict[str, VectorSpec]) -> list[edge.Point]:
    if not isinstance(batch, dict) or not isinstance(batch.get("ids"), list):
        raise bad_json("`batch` must be an object with `ids` (list), `vectors` and optional `payloads`")
    ids = batch["ids"]
    vectors = batch.get("vectors")
    payloads = batch.get("payloads")
    if payloads is None:
        payloads = [None] * len(ids)
    elif not isinstance(payloads, list) or len(payloads) != len(ids):
        raise bad_request(f"batch has {len(ids)} ids but {_length(payloads)} payloads: give one payload per id")
    if isinstance(vectors, list):
        if len(vectors) != len(ids):
            raise bad_request(f"batch has {len(ids)} ids but {len(vectors)} vectors: give one vector per id")
        check_column("", vectors, ids, specs)
        per_point = vectors
    elif isinstance(vectors, dict):
        for name, column in vectors.items():
            if column is not None:
                if not isinstance(column, list) or len(column) != len(ids):
                    raise bad_request(f"batch has {len(ids)} ids but vector `{name}` has {_length(column)} entries")
                check_column(name, column, ids, specs)
        per_point = _transpose_named(vectors, len(ids))
    elif vectors is None:
        per_point = [{}] * len(ids)
    else:
        raise bad_json("batch `vectors` must be a list of vectors or an object of vector name -> list of vectors")
    if set(map(type, ids)) <= {int, str} and set(map(type, payloads)) <= {dict, type(None)}:
        try:
            return list(map(edge.Point, ids, per_point, payloads))
        except (TypeError, ValueError, OverflowError):
            pass  # find the offending point and say which it is
    return [
        _point(parse_point_id(point_id), vector, payload, point_id)
        for point_id, vector, payload in zip(ids, per_point, payloads)
    ]


def _length(value: Any) -> Any:
    return len(value) if isinstance(value, list) else type(value).__name__


def _transpose_named(vectors: dict[str, Any], count: int) -> list[dict[str, Any]]:
    per_point: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, column in vectors.items():
        if column is None:
            continue
        for slot, vector in zip(per_point, column):
            if vector is not None:
                slot[name] = _named_vector(name, vector)
    return per_point


def _point(point_id: Any, vector: Any, payload: Any, given_id: Any) -> edge.Point:
    """One `Point`; `given_id` is the id as the request spelled it, for the error message."""
    if payload is not None and not isinstance(payload, dict):
        raise bad_request(f"payload of point {given_id} must be an object, got {type(payload).__name__}")
    try:
        return edge.Point(point_id, vector, payload)
    except (TypeError, ValueError, OverflowError):
        shown = repr(vector)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise bad_request(
            f"point {given_id}: vectors must be lists of numbers, lists of such lists, or named vectors; got {shown}"
        ) from None


def parse_vector(vector: Any) -> Any:
    """A `VectorStruct`: dense list, multivector (list of lists), or name -> dense / sparse / multivector."""
    if isinstance(vector, list):
        return vector
    if isinstance(vector, dict):
        return {name: _named_vector(name, value) for name, value in vector.items() if value is not None}
    raise bad_request(f"vector must be a list of numbers or an object of named vectors, got {type(vector).__name__}")


def _named_vector(name: str, value: Any) -> Any:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if "indices" in value and "values" in value:
            return sparse_vector(value, f"sparse vector `{name}`")
        raise bad_request(
            f"vector `{name}`: inference objects (text, image, document) are not supported by the embedded server; "
            "send numbers"
        )
    raise bad_request(f"vector `{name}` must be a list of numbers or {{indices, values}}, got {type(value).__name__}")


def sparse_vector(value: dict[str, Any], where: str) -> edge.SparseVector:
    """`{"indices": [...], "values": [...]}` as an Edge sparse vector."""
    indices, values = value.get("indices"), value.get("values")
    if not isinstance(indices, list) or not isinstance(values, list) or len(indices) != len(values):
        raise bad_request(f"{where}: indices and values must be lists of the same length")
    try:
        return edge.SparseVector(indices, values)
    except (TypeError, ValueError, OverflowError) as error:
        raise bad_request(f"{where}: indices must be unsigned integers and values numbers: {error}") from None
