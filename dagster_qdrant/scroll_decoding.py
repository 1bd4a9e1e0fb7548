"""Scroll responses decoded for the read hot path: dense vectors as numpy arrays, no Python float per number.

A scroll page of 384-d vectors is ~5 KB of JSON numbers per point. Decoding it with orjson makes a Python
float for every number, which the Arrow builder then packs back into a flat buffer: about 40 µs of a Spark
worker's CPU per point. simdjson parses the page into its own tape, and each dense vector is copied out of
it as one float64 buffer (``as_buffer``), so the numbers never become Python objects; ids, payloads and any
other vector kind (sparse, multivector) come out as the same Python values orjson gives.

Anything simdjson refuses (an integer beyond 64 bits, text that is not JSON) is decoded by orjson instead,
so the result, or the error, is what the rest of the client sees everywhere else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import simdjson


def decode_scroll_response(content: bytes) -> Any:
    """The scroll response ``{"result": {"points", "next_page_offset"}, ...}``, dense vectors as arrays."""
    try:
        # a parser per page: one holds a single document, and pages are decoded on several threads
        document = simdjson.Parser().parse(content)
        result = document["result"]
        points = [_point(point) for point in result["points"]]
        next_page_offset = result.get("next_page_offset")
    except (ValueError, TypeError, KeyError, RuntimeError):  # simdjson refused it: orjson decides
        return orjson.loads(content)
    return {"result": {"points": points, "next_page_offset": next_page_offset}, "status": "ok"}


def _point(point: Any) -> dict[str, Any]:
    # keys() then [key]: items() would turn every value into Python objects, vectors included
    return {key: _vector_struct(point[key]) if key == "vector" else _python(point[key]) for key in point.keys()}


def _vector_struct(value: Any) -> Any:
    """The unnamed vector, or name -> vector (dense ones become float64 arrays)."""
    if isinstance(value, simdjson.Object):
        return {name: _named_vector(value[name]) for name in value.keys()}
    return _named_vector(value)


def _named_vector(value: Any) -> Any:
    return _vector(value) if isinstance(value, simdjson.Array) else _python(value)


def _vector(values: Any) -> Any:
    """A flat list of numbers as a float64 array; a multivector (list of lists) as Python lists."""
    if len(values) and isinstance(values[0], simdjson.Array):
        return values.as_list()  # as_buffer would flatten the rows into one vector
    try:
        return np.frombuffer(values.as_buffer(of_type="d"), dtype=np.float64)
    except TypeError:  # not all numbers: left to the schema check, which names the point
        return values.as_list()


def _python(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


__all__ = ["decode_scroll_response"]
