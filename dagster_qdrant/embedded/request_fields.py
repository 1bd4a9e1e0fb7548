"""Parse the request fields that are not filters: point ids, payload and vector selectors, limits.

The shapes are the ones in Qdrant's OpenAPI spec (`ExtendedPointId`, `WithPayloadInterface`,
`WithVector`); the status codes are Qdrant's (a wrong type is a 400, an invalid `limit` a 422). Clients
often send explicit `null` for absent fields, so `None` always means "not given".
"""

from __future__ import annotations

import uuid
from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded.errors import bad_json, bad_request, invalid

MAX_POINT_ID = 2**64 - 1


def parse_point_id(value: Any) -> int | str:
    """An unsigned 64-bit integer or a UUID (any spelling), returned as int or lowercase hyphenated UUID."""
    if type(value) is int:
        if 0 <= value <= MAX_POINT_ID:
            return value
        raise bad_request(f"point id {value} is out of range: ids are unsigned 64-bit integers or UUIDs")
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise bad_request(
                f"Unable to parse UUID: {value}: point ids are unsigned integers or UUID strings"
            ) from None
    raise bad_request(f"point id {value!r} is not an unsigned integer or a UUID string")


def parse_point_ids(values: Any) -> list[int | str]:
    """A list of point ids (see `parse_point_id`)."""
    if not isinstance(values, list):
        raise bad_json(f"expected a list of point ids, got {type(values).__name__}")
    return [parse_point_id(value) for value in values]


def id_to_json(point_id: Any) -> int | str:
    """Edge returns ints and `uuid.UUID`s; JSON wants ints and lowercase hyphenated strings."""
    return point_id if type(point_id) is int else str(point_id)


def parse_with_payload(value: Any, default: bool) -> Any:
    """`true`/`false`, a list of keys, or `{"include": [...]}` / `{"exclude": [...]}`."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, list):
        return edge.PayloadSelector.Include([str(key) for key in value])
    if isinstance(value, dict):
        if value.get("include") is not None:
            return edge.PayloadSelector.Include(_string_list(value["include"], "with_payload.include"))
        if value.get("exclude") is not None:
            return edge.PayloadSelector.Exclude(_string_list(value["exclude"], "with_payload.exclude"))
    raise bad_json(f"with_payload must be a bool, a list of keys or {{include|exclude: [...]}}, got {value!r}")


def parse_with_vector(value: Any, default: bool) -> Any:
    """`true`/`false` or a list of vector names."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, list):
        return _string_list(value, "with_vector")
    if isinstance(value, str):
        return [value]
    raise bad_json(f"with_vector must be a bool or a list of vector names, got {value!r}")


def _string_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_json(f"{where} must be a list of strings, got {value!r}")
    return value


def parse_limit(value: Any, default: int) -> int:
    """A `limit`: a positive integer (422 otherwise, as Qdrant validates it)."""
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_json(f"limit must be an integer, got {value!r}")
    if value < 1:
        raise invalid(f"limit: value {value} invalid, must be 1 or larger")
    return value
