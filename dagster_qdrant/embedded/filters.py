"""Translate Qdrant's JSON filters into Qdrant Edge `Filter`s.

The shapes are the ones in Qdrant's OpenAPI spec (`Filter`, `Condition` and the conditions it names);
`has_id` takes point ids as `request_fields.parse_point_ids` parses them. Clients often send explicit
`null` for absent fields, so `None` always means "not given".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import qdrant_edge as edge

from dagster_qdrant.embedded.errors import bad_json, invalid
from dagster_qdrant.embedded.request_fields import parse_point_ids

INT64_RANGE = range(-(2**63), 2**63)  # Qdrant's `IntPayloadType` (i64)
_FILTER_KEYS = ("must", "should", "must_not", "min_should")


def parse_filter(value: Any) -> edge.Filter | None:
    """A Qdrant `Filter` object (or null) as an Edge `Filter`.

    Values of the wrong type are a 400, as Qdrant's deserializer makes them: where a check below does not name
    the problem first, the engine's constructor refuses the value and its message is passed on.
    """
    try:
        return _filter(value)
    except KeyError as error:
        raise bad_json(f"filter: missing field {error}") from None
    except (TypeError, ValueError, OverflowError) as error:
        raise bad_json(f"filter: {error}") from None


def _filter(value: Any) -> edge.Filter | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_json(f"filter must be an object with must/should/must_not/min_should, got {value!r}")
    unknown = [key for key in value if key not in _FILTER_KEYS and value[key] is not None]
    if unknown:
        raise bad_json(f"unknown filter field(s) {unknown}: expected must, should, must_not, min_should")
    min_should = value.get("min_should")
    return edge.Filter(
        must=_conditions(value.get("must")),
        should=_conditions(value.get("should")),
        must_not=_conditions(value.get("must_not")),
        min_should=_min_should(min_should) if min_should is not None else None,
    )


def _conditions(value: Any) -> list[Any] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [parse_condition(item) for item in items]


def _min_should(value: Any) -> edge.MinShould:
    if not isinstance(value, dict) or "conditions" not in value or "min_count" not in value:
        raise bad_json(f"min_should must be {{conditions: [...], min_count: N}}, got {value!r}")
    min_count = value["min_count"]
    if type(min_count) is not int or min_count < 0:
        raise bad_json(f"min_should.min_count must be an unsigned integer, got {min_count!r}")
    if min_count < 1:
        raise invalid("min_should.min_count: min_count must be greater than 0")
    return edge.MinShould(conditions=_conditions(value["conditions"]) or [], min_count=min_count)


def parse_condition(value: Any) -> Any:
    """One `Condition`: field, is_empty, is_null, has_id, has_vector, slice, nested, or a nested filter."""
    if not isinstance(value, dict):
        raise bad_json(f"a filter condition must be an object, got {value!r}")
    given = {key: item for key, item in value.items() if item is not None}
    if "key" in given:
        return _field_condition(given)
    if "has_id" in given:
        return edge.HasIdCondition(set(parse_point_ids(given["has_id"])))
    if "is_empty" in given:
        return edge.IsEmptyCondition(_key_of(given["is_empty"], "is_empty"))
    if "is_null" in given:
        return edge.IsNullCondition(_key_of(given["is_null"], "is_null"))
    if "has_vector" in given:
        if not isinstance(given["has_vector"], str):
            raise bad_json(f"has_vector must be a vector name, got {given['has_vector']!r}")
        return edge.HasVectorCondition(given["has_vector"])
    if "slice" in given:
        return _slice_condition(given["slice"])
    if "nested" in given:
        nested = given["nested"]
        if not isinstance(nested, dict) or "key" not in nested or "filter" not in nested:
            raise bad_json(f"nested must be {{key, filter}}, got {nested!r}")
        return edge.NestedCondition(nested["key"], _filter(nested["filter"]))
    if any(key in given for key in _FILTER_KEYS) or not given:
        return _filter(given)
    raise bad_json(f"unknown filter condition {value!r}")


def _key_of(value: Any, where: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("key"), str):
        raise bad_json(f"{where} must be {{key: \"field\"}}, got {value!r}")
    return value["key"]


def _slice_condition(value: Any) -> Any:
    if not isinstance(value, dict) or type(value.get("total")) is not int or type(value.get("index")) is not int:
        raise bad_json(f"slice must be {{total: N, index: i}} with integers, got {value!r}")
    total, index = value["total"], value["index"]
    if total < 1:
        raise invalid(f"slice.total: value {total} invalid, must be 1 or larger")
    if not 0 <= index < total:
        raise invalid(f"slice.index: value {index} invalid, must be from 0 to total - 1 ({total - 1})")
    return edge.SliceCondition(total, index)


def _field_condition(value: dict[str, Any]) -> edge.FieldCondition:
    key = value["key"]
    if not isinstance(key, str):
        raise bad_json(f"condition key must be a string, got {key!r}")
    arguments: dict[str, Any] = {}
    if "match" in value:
        arguments["match"] = _match(value["match"])
    if "range" in value:
        arguments["range"] = _range(value["range"])
    if "geo_bounding_box" in value:
        box = value["geo_bounding_box"]
        arguments["geo_bounding_box"] = edge.GeoBoundingBox(_geo_point(box["top_left"]), _geo_point(box["bottom_right"]))
    if "geo_radius" in value:
        radius = value["geo_radius"]
        arguments["geo_radius"] = edge.GeoRadius(_geo_point(radius["center"]), float(radius["radius"]))
    if "geo_polygon" in value:
        polygon = value["geo_polygon"]
        interiors = polygon.get("interiors")
        arguments["geo_polygon"] = edge.GeoPolygon(
            _geo_line(polygon["exterior"]),
            [_geo_line(ring) for ring in interiors] if interiors else None,
        )
    if "values_count" in value:
        arguments["values_count"] = _values_count(value["values_count"])
    for flag in ("is_empty", "is_null"):
        if flag in value:
            if not isinstance(value[flag], bool):
                raise bad_json(f"{flag} of a field condition must be true or false, got {value[flag]!r}")
            arguments[flag] = value[flag]
    if not arguments:
        raise bad_json(f"field condition on {key!r} has nothing to check (match, range, geo_*, values_count, ...)")
    return edge.FieldCondition(key, **arguments)


def _match(value: Any) -> Any:
    if not isinstance(value, dict):
        raise bad_json(f"match must be an object, got {value!r}")
    given = {key: item for key, item in value.items() if item is not None}
    if "value" in given:
        return edge.MatchValue(_match_value(given["value"]))
    if "any" in given:
        return edge.MatchAny(_match_values(given["any"], "any"))
    if "except" in given:
        return edge.MatchExcept(_match_values(given["except"], "except"))
    if "text" in given:
        return edge.MatchText(given["text"])
    if "text_any" in given:
        return edge.MatchTextAny(given["text_any"])
    if "phrase" in given:
        return edge.MatchPhrase(given["phrase"])
    if "prefix" in given:
        return edge.MatchPrefix(given["prefix"])
    if "substring" in given:
        return edge.MatchSubstring(given["substring"])
    raise bad_json(f"unknown match {value!r}: expected value, any, except, text, text_any or phrase")


def _match_value(value: Any) -> Any:
    """A `ValueVariants` (keyword, integer or bool) as Qdrant Edge's `MatchValue` must receive it.

    Qdrant matches `{"value": true}` against booleans only, never the integer 1. The binding
    (qdrant-edge-py 0.9, lib/edge/python/src/types/filter/match.rs, `PyValueVariants`) tries its variants
    in the order String, Integer, Bool, and a Python `bool` is an `int`, so `MatchValue(True)` becomes
    `Integer(1)`. PyO3 extracts `numpy.bool_` as a bool but not as an integer, so a bool is passed as
    `numpy.bool_` to land in the Bool variant.
    """
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, str) or (type(value) is int and value in INT64_RANGE):
        return value
    raise bad_json(f"match.value must be a string, a 64-bit integer or a boolean, got {value!r}")


def _match_values(value: Any, where: str) -> list[Any]:
    """`AnyVariants`: a list of strings or a list of 64-bit integers, never booleans.

    Qdrant's `AnyVariants` has no boolean variant, so `{"any": [true]}` is refused; the binding would take a
    Python `bool` as the integer 1 and match integers instead.
    """
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return value
        if all(type(item) is int and item in INT64_RANGE for item in value):
            return value
    raise bad_json(f"match.{where} must be a list of strings or a list of 64-bit integers, got {value!r}")


def _range(value: Any) -> Any:
    if not isinstance(value, dict):
        raise bad_json(f"range must be an object with gt/gte/lt/lte, got {value!r}")
    bounds = {key: value.get(key) for key in ("gt", "gte", "lt", "lte") if value.get(key) is not None}
    if any(isinstance(bound, str) for bound in bounds.values()):
        if not all(isinstance(bound, str) for bound in bounds.values()):
            raise bad_json(f"range bounds must be all numbers or all datetime strings, got {value!r}")
        return edge.RangeDateTime(**bounds)
    for key, bound in bounds.items():
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            raise bad_json(f"range.{key} must be a number or a datetime string, got {bound!r}")
    return edge.RangeFloat(**{key: float(bound) for key, bound in bounds.items()})


def _values_count(value: Any) -> edge.ValuesCount:
    """`ValuesCount`: bounds are unsigned integers (a bool is not one, though Python says it is an int)."""
    if not isinstance(value, dict):
        raise bad_json(f"values_count must be an object with lt/gt/lte/gte, got {value!r}")
    bounds = {key: value[key] for key in ("lt", "gt", "lte", "gte") if value.get(key) is not None}
    for key, bound in bounds.items():
        if type(bound) is not int or bound < 0:
            raise bad_json(f"values_count.{key} must be an unsigned integer, got {bound!r}")
    return edge.ValuesCount(**bounds)


def _geo_point(value: Any) -> edge.GeoPoint:
    return edge.GeoPoint(lon=float(value["lon"]), lat=float(value["lat"]))


def _geo_line(value: Any) -> list[edge.GeoPoint]:
    """A polygon ring: the spec's `GeoLineString`, an object whose `points` is the list (Qdrant refuses a bare list)."""
    if not isinstance(value, dict) or not isinstance(value.get("points"), list):
        raise bad_json(f"a polygon ring must be {{points: [{{lon, lat}}, ...]}}, got {value!r}")
    return [_geo_point(point) for point in value["points"]]
