"""Less common update and read endpoints: update/delete vectors, facets, and `/points/batch`, which
applies a list of update operations in order by reusing the single-operation handlers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded import point_routes
from dagster_qdrant.embedded.errors import bad_json, bad_request
from dagster_qdrant.embedded.filters import parse_filter
from dagster_qdrant.embedded.points import parse_vector
from dagster_qdrant.embedded.request import Request
from dagster_qdrant.embedded.request_fields import parse_limit, parse_point_id, parse_point_ids
from dagster_qdrant.embedded.vector_schema import check_vector_struct, vector_specs


def update_vectors(request: Request) -> Any:
    collection = request.store.resolve(request.path_parameters["collection"])
    body = request.body if isinstance(request.body, dict) else {}
    points = body.get("points")
    if not isinstance(points, list) or not points:
        raise bad_json("missing field `points`: expected a non-empty list of {id, vector}")
    specs = vector_specs(collection.config["params"])
    point_vectors = []
    for point in points:  # all checked before the operation is applied (see vector_schema)
        if not isinstance(point, dict) or "id" not in point or point.get("vector") is None:
            raise bad_json(f"each point must be {{id, vector}}, got {point!r}")
        point_id = parse_point_id(point["id"])
        check_vector_struct(point["vector"], specs, point["id"])
        try:
            point_vectors.append(edge.PointVectors(point_id, parse_vector(point["vector"])))
        except (TypeError, ValueError, OverflowError):
            raise bad_request(f"point {point['id']}: vectors must be lists of numbers or named vectors") from None
    operation = edge.UpdateOperation.update_vectors(point_vectors, parse_filter(body.get("update_filter")))
    return point_routes.update_result(request, collection.update(operation))


def delete_vectors(request: Request) -> Any:
    collection = request.store.resolve(request.path_parameters["collection"])
    body = request.body if isinstance(request.body, dict) else {}
    names = body.get("vector")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise bad_json("missing field `vector`: expected a list of vector names to delete")
    if body.get("points") is not None:
        operation = edge.UpdateOperation.delete_vectors(parse_point_ids(body["points"]), names)
    elif body.get("filter") is not None:
        operation = edge.UpdateOperation.delete_vectors_by_filter(parse_filter(body["filter"]), names)
    else:
        raise bad_json("delete vectors needs `points` (a list of ids) or `filter`")
    return point_routes.update_result(request, collection.update(operation))


def facet(request: Request) -> Any:
    collection = request.store.resolve(request.path_parameters["collection"])
    body = request.body if isinstance(request.body, dict) else {}
    key = body.get("key")
    if not isinstance(key, str):
        raise bad_json("missing field `key`: the payload key to count values of")
    facet_request = edge.FacetRequest(
        key,
        limit=parse_limit(body.get("limit"), 10),
        exact=bool(body.get("exact") or False),
        filter=parse_filter(body.get("filter")),
    )
    response = collection.read("facet", facet_request)
    return {"hits": [{"value": hit.value, "count": hit.count} for hit in response.hits]}


_BATCH_OPERATIONS = {
    "upsert": point_routes.upsert,
    "delete": point_routes.delete_points,
    "set_payload": point_routes.set_payload,
    "overwrite_payload": point_routes.overwrite_payload,
    "delete_payload": point_routes.delete_payload,
    "clear_payload": point_routes.clear_payload,
    "update_vectors": update_vectors,
    "delete_vectors": delete_vectors,
}


def batch(request: Request) -> Any:
    """Apply operations in order; each answers like its own endpoint. A failing one stops the rest."""
    body = request.body if isinstance(request.body, dict) else {}
    operations = body.get("operations")
    if not isinstance(operations, list):
        raise bad_json("missing field `operations`: expected a list of {upsert | delete | set_payload | ...}")
    results = []
    for operation in operations:
        given = {key: value for key, value in operation.items() if value is not None} if isinstance(operation, dict) else {}
        if len(given) != 1 or next(iter(given)) not in _BATCH_OPERATIONS:
            raise bad_json(f"each operation must be one of {sorted(_BATCH_OPERATIONS)}, got {operation!r}")
        kind, content = next(iter(given.items()))
        results.append(_BATCH_OPERATIONS[kind](replace(request, body=content)))
    return results


ROUTES = [
    ("PUT", "/points/vectors", update_vectors),
    ("POST", "/points/vectors/delete", delete_vectors),
    ("POST", "/facet", facet),
    ("POST", "/points/batch", batch),
]
