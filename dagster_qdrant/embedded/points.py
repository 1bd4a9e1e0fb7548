"""Qdrant's JSON points <-> Qdrant Edge `Point`s and records.

Upsert bodies come in two forms (`PointsList` `{"points": [...]}` and `PointsBatch`
`{"batch": {"ids", "vectors", "payloads"}}`). The batch form of one unnamed dense vector is the hot path
of bulk loads, so it builds `Point`s straight from the parsed lists with no per-point checks in Python:
the engine validates sizes and ids and its message is passed on.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded.errors import bad_json, bad_request
from dagster_qdrant.embedded.filters import id_to_json, parse_point_id


def parse_upsert(body: Any) -> list[edge.Point]:
    """The points of an upsert body, either form."""
    if not isinstance(body, dict):
        raise bad_json("upsert body must be an object with `points` or `batch`")
    if body.get("points") is not None:
        return _points_list(body["points"])
    if body.get("batch") is not None:
        return _points_batch(body["batch"])
    raise bad_json("upsert body must have `points` (a list of points) or `batch` ({ids, vectors, payloads})")


def _points_list(points: Any) -> list[edge.Point]:
    if not isinstance(points, list):
        raise bad_json(f"`points` must be a list, got {type(points).__name__}")
    result = []
    for point in points:
        if not isinstance(point, dict) or "id" not in point:
            raise bad_json(f"each point must be an object with `id`, `vector` and optional `payload`, got {point!r}")
        vector = point.get("vector")
        result.append(_point(point["id"], parse_vector(vector if vector is not None else {}), point.get("payload")))
    return result


def _points_batch(batch: Any) -> list[edge.Point]:
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
        per_point = vectors
    elif isinstance(vectors, dict):
        per_point = _transpose_named(vectors, len(ids))
    elif vectors is None:
        per_point = [{}] * len(ids)
    else:
        raise bad_json("batch `vectors` must be a list of vectors or an object of vector name -> list of vectors")
    try:
        return [edge.Point(point_id, vector, payload) for point_id, vector, payload in zip(ids, per_point, payloads)]
    except (TypeError, ValueError, OverflowError):
        pass  # find the offending point and say which it is
    return [_point(point_id, parse_vector(vector), payload) for point_id, vector, payload in zip(ids, per_point, payloads)]


def _length(value: Any) -> Any:
    return len(value) if isinstance(value, list) else type(value).__name__


def _transpose_named(vectors: dict[str, Any], count: int) -> list[dict[str, Any]]:
    per_point: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, column in vectors.items():
        if not isinstance(column, list) or len(column) != count:
            raise bad_request(f"batch has {count} ids but vector `{name}` has {_length(column)} entries")
        for slot, vector in zip(per_point, column):
            if vector is not None:
                slot[name] = _named_vector(name, vector)
    return per_point


def _point(point_id: Any, vector: Any, payload: Any) -> edge.Point:
    parsed_id = parse_point_id(point_id)
    if payload is not None and not isinstance(payload, dict):
        raise bad_request(f"payload of point {point_id} must be an object, got {type(payload).__name__}")
    try:
        return edge.Point(parsed_id, vector, payload)
    except (TypeError, ValueError, OverflowError) as error:
        raise bad_request(f"point {point_id}: vector must be a list of numbers, a list of lists, or named vectors: {error}") from None


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


def vector_to_json(vector: Any) -> Any:
    """Edge's vector output (list, list of lists, or dict with `SparseVector`s) as Qdrant JSON."""
    if isinstance(vector, dict):
        return {name: _named_to_json(value) for name, value in vector.items()}
    return vector


def _named_to_json(value: Any) -> Any:
    if isinstance(value, edge.SparseVector):
        return {"indices": value.indices, "values": value.values}
    return value


def record_to_json(record: Any) -> dict[str, Any]:
    """A `Record` as Qdrant's `Record` JSON."""
    vector = record.vector
    result: dict[str, Any] = {
        "id": id_to_json(record.id),
        "payload": record.payload,
        "vector": vector_to_json(vector) if vector is not None else None,
    }
    order_value = record.order_value
    if order_value is not None:
        result["order_value"] = order_value
    return result


def scored_to_json(point: Any) -> dict[str, Any]:
    """A `ScoredPoint` as Qdrant's `ScoredPoint` JSON."""
    vector = point.vector
    result: dict[str, Any] = {
        "id": id_to_json(point.id),
        "version": point.version,
        "score": point.score,
        "payload": point.payload,
        "vector": vector_to_json(vector) if vector is not None else None,
    }
    order_value = point.order_value
    if order_value is not None:
        result["order_value"] = order_value
    return result
