"""Points endpoints: upsert, retrieve, scroll, count, delete, payload, payload index.

Every handler resolves the collection through the store, so an alias works wherever a collection name does.
Updates are applied before the response in every case; `wait=false` only changes the reported status
to "acknowledged", as Qdrant reports it.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded import query_routes
from dagster_qdrant.embedded.errors import bad_json, bad_request, not_found
from dagster_qdrant.embedded.filters import parse_filter
from dagster_qdrant.embedded.payload_index import parse_field_schema
from dagster_qdrant.embedded.points import parse_upsert
from dagster_qdrant.embedded.request import Request
from dagster_qdrant.embedded.request_fields import (
    parse_limit,
    parse_point_id,
    parse_point_ids,
    parse_with_payload,
    parse_with_vector,
)
from dagster_qdrant.embedded.responses import records_to_json
from dagster_qdrant.embedded.store import Collection
from dagster_qdrant.embedded.vector_schema import vector_specs

UPSERT_CHUNK = 1000  # the engine applies many mid-sized operations faster than one huge one


def _collection(request: Request) -> Collection:
    return request.store.resolve(request.path_parameters["collection"])


def _body(request: Request) -> dict[str, Any]:
    body = request.body
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_json(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def update_result(request: Request, operation_id: int) -> dict[str, Any]:
    wait = request.query.get("wait", "false").lower() in ("true", "1", "yes")
    return {"operation_id": operation_id, "status": "completed" if wait else "acknowledged"}


def upsert(request: Request) -> Any:
    """Check every point first (nothing is written when one is bad), then apply in chunks."""
    collection = _collection(request)
    body = _body(request)
    points = parse_upsert(body, vector_specs(collection.config["params"]))
    condition = parse_filter(body.get("update_filter"))
    operation_id = 0
    for start in range(0, max(len(points), 1), UPSERT_CHUNK):
        chunk = points[start : start + UPSERT_CHUNK]
        operation_id = collection.update(edge.UpdateOperation.upsert_points(chunk, condition))
    return update_result(request, operation_id)


def retrieve(request: Request) -> Any:
    collection = _collection(request)
    body = _body(request)
    if body.get("ids") is None:
        raise bad_json("missing field `ids`: expected {\"ids\": [...], \"with_payload\", \"with_vector\"}")
    ids = parse_point_ids(body["ids"])
    records = collection.read(
        "retrieve",
        ids,
        parse_with_payload(body.get("with_payload"), True),
        parse_with_vector(query_routes.with_vector_field(body), False),
    )
    return records_to_json(records)


def get_point(request: Request) -> Any:
    collection = _collection(request)
    raw = request.path_parameters["point_id"]
    point_id = parse_point_id(int(raw) if raw.isdigit() else raw)
    records = collection.read("retrieve", [point_id], True, True)
    if not records:
        raise not_found(f"No point with id {point_id} found")
    return records_to_json(records)[0]


def scroll(request: Request) -> Any:
    collection = _collection(request)
    body = _body(request)
    limit = parse_limit(body.get("limit"), 10)
    offset = body.get("offset")
    order_by = query_routes.parse_order_by(body.get("order_by"))
    if order_by is not None and offset is not None:
        raise bad_request(
            "Cannot use an `offset` when using `order_by`. The alternative for paging is to use "
            "`order_by.start_from` and a filter to exclude the IDs that you've already seen for the "
            "`order_by.start_from` value"
        )
    scroll_request = edge.ScrollRequest(
        offset=parse_point_id(offset) if offset is not None else None,
        limit=limit,
        filter=parse_filter(body.get("filter")),
        with_payload=parse_with_payload(body.get("with_payload"), True),
        with_vector=parse_with_vector(query_routes.with_vector_field(body), False),
        order_by=order_by,
    )
    records, next_offset = collection.read("scroll", scroll_request)
    return {
        "points": records_to_json(records),
        "next_page_offset": None if next_offset is None or order_by is not None else _id_json(next_offset),
    }


def _id_json(point_id: Any) -> Any:
    return point_id if type(point_id) is int else str(point_id)


def count(request: Request) -> Any:
    collection = _collection(request)
    body = _body(request)
    exact = body.get("exact")
    count_request = edge.CountRequest(exact=True if exact is None else bool(exact), filter=parse_filter(body.get("filter")))
    return {"count": collection.read("count", count_request)}


def _selector(body: dict[str, Any], what: str) -> tuple[list[Any] | None, edge.Filter | None]:
    """A `PointsSelector`: `{"points": [...]}` or `{"filter": {...}}`."""
    if body.get("points") is not None:
        return parse_point_ids(body["points"]), None
    if body.get("filter") is not None:
        return None, parse_filter(body["filter"])
    raise bad_json(f"{what} needs `points` (a list of ids) or `filter`")


def delete_points(request: Request) -> Any:
    collection = _collection(request)
    ids, points_filter = _selector(_body(request), "delete")
    operation = (
        edge.UpdateOperation.delete_points(ids)
        if ids is not None
        else edge.UpdateOperation.delete_points_by_filter(points_filter)
    )
    return update_result(request, collection.update(operation))


def _payload_update(request: Request, overwrite: bool) -> Any:
    collection = _collection(request)
    body = _body(request)
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise bad_json("missing field `payload`: expected an object of payload keys and values")
    ids, points_filter = _selector(body, "set payload")
    key = body.get("key")
    if overwrite:
        operation = (
            edge.UpdateOperation.overwrite_payload(ids, payload, key)
            if ids is not None
            else edge.UpdateOperation.overwrite_payload_by_filter(points_filter, payload, key)
        )
    else:
        operation = (
            edge.UpdateOperation.set_payload(ids, payload, key)
            if ids is not None
            else edge.UpdateOperation.set_payload_by_filter(points_filter, payload, key)
        )
    return update_result(request, collection.update(operation))


def set_payload(request: Request) -> Any:
    return _payload_update(request, overwrite=False)


def overwrite_payload(request: Request) -> Any:
    return _payload_update(request, overwrite=True)


def delete_payload(request: Request) -> Any:
    collection = _collection(request)
    body = _body(request)
    keys = body.get("keys")
    if not isinstance(keys, list):
        raise bad_json("missing field `keys`: expected a list of payload keys to delete")
    ids, points_filter = _selector(body, "delete payload")
    operation = (
        edge.UpdateOperation.delete_payload(ids, keys)
        if ids is not None
        else edge.UpdateOperation.delete_payload_by_filter(points_filter, keys)
    )
    return update_result(request, collection.update(operation))


def clear_payload(request: Request) -> Any:
    collection = _collection(request)
    ids, points_filter = _selector(_body(request), "clear payload")
    operation = (
        edge.UpdateOperation.clear_payload(ids)
        if ids is not None
        else edge.UpdateOperation.clear_payload_by_filter(points_filter)
    )
    return update_result(request, collection.update(operation))


def create_index(request: Request) -> Any:
    collection = _collection(request)
    body = _body(request)
    field_name = body.get("field_name")
    if not isinstance(field_name, str):
        raise bad_json("missing field `field_name`")
    if body.get("field_schema") is None:
        raise bad_json("missing field `field_schema`: the embedded server does not infer index types")
    operation = edge.UpdateOperation.create_field_index(field_name, parse_field_schema(body["field_schema"]))
    return update_result(request, collection.update(operation))


def delete_index(request: Request) -> Any:
    collection = _collection(request)
    operation = edge.UpdateOperation.delete_field_index(request.path_parameters["field"])
    return update_result(request, collection.update(operation))


ROUTES = [
    ("PUT", "/points", upsert),
    ("POST", "/points", retrieve),
    ("GET", r"/points/(?P<point_id>[^/]+)", get_point),
    ("POST", "/points/scroll", scroll),
    ("POST", "/points/count", count),
    ("POST", "/points/delete", delete_points),
    ("POST", "/points/payload", set_payload),
    ("PUT", "/points/payload", overwrite_payload),
    ("POST", "/points/payload/delete", delete_payload),
    ("POST", "/points/payload/clear", clear_payload),
    ("PUT", "/index", create_index),
    ("DELETE", r"/index/(?P<field>[^/]+)", delete_index),
    *query_routes.ROUTES,
]
