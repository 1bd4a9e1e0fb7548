"""Parsers for option values, used by options.py.

Each parser takes the option name and a value that is either already native (``10``, ``True``, a dict)
or a Spark string option (``"10"``, ``"true"``, ``'{"must": [...]}'``), returns the native value, and is
idempotent, so parsing twice changes nothing. A value that cannot work raises QdrantConfigError naming
the option, the value and what is allowed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from dagster_qdrant.errors import QdrantConfigError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"", "none", "null"}
_FILTER_KEYS = {"must", "should", "must_not", "min_should"}
_MIN_BATCH_BYTES = 1024


_SECRET_BEARING = frozenset({"api_key", "headers", "qdrant.config"})
"""Options whose text can hold the API key or an auth header: errors never repeat their value."""


def fail(name: str, value: Any, allowed: str) -> QdrantConfigError:
    """The error every parser raises: option, value, what is allowed."""
    if name in _SECRET_BEARING:
        return QdrantConfigError(
            f"Option {name!r} has an invalid value (not shown: it may hold secrets); allowed: {allowed}"
        )
    return QdrantConfigError(f"Option {name!r} has value {value!r}; allowed: {allowed}")


def boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise fail(name, value, "true or false")


def _integer(name: str, value: Any, allowed: str) -> int:
    if isinstance(value, bool):
        raise fail(name, value, allowed)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise fail(name, value, allowed)


def _number(name: str, value: Any, allowed: str) -> float:
    if isinstance(value, bool):
        raise fail(name, value, allowed)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise fail(name, value, allowed) from None
    else:
        raise fail(name, value, allowed)
    if number != number or number in (float("inf"), float("-inf")):
        raise fail(name, value, allowed)
    return number


def positive_int(name: str, value: Any) -> int:
    number = _integer(name, value, "an integer >= 1")
    if number < 1:
        raise fail(name, value, "an integer >= 1")
    return number


def non_negative_int(name: str, value: Any) -> int:
    number = _integer(name, value, "an integer >= 0")
    if number < 0:
        raise fail(name, value, "an integer >= 0")
    return number


def optional_positive_int(name: str, value: Any) -> int | None:
    if _is_none(value):
        return None
    number = _integer(name, value, "an integer >= 1, or None for no limit")
    if number < 1:
        raise fail(name, value, "an integer >= 1, or None for no limit")
    return number


def positive_float(name: str, value: Any) -> float:
    number = _number(name, value, "a number of seconds > 0")
    if number <= 0:
        raise fail(name, value, "a number of seconds > 0")
    return number


def non_negative_float(name: str, value: Any) -> float:
    number = _number(name, value, "a number >= 0")
    if number < 0:
        raise fail(name, value, "a number >= 0")
    return number


def batch_bytes(name: str, value: Any) -> int:
    number = _integer(name, value, f"an integer number of bytes >= {_MIN_BATCH_BYTES}")
    if number < _MIN_BATCH_BYTES:
        raise fail(name, value, f"an integer number of bytes >= {_MIN_BATCH_BYTES}")
    return number


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in _NONE)


def endpoint(name: str, value: Any) -> str:
    allowed = "an http:// or https:// URL with a host, e.g. 'http://localhost:6333'"
    if not isinstance(value, str):
        raise fail(name, value, allowed)
    text = value.strip().rstrip("/")
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise fail(name, value, allowed)
    return text


def collection(name: str, value: Any) -> str:
    allowed = "a non-empty collection name without '/' (at most 255 characters)"
    if not isinstance(value, str) or not value.strip() or "/" in value or len(value) > 255:
        raise fail(name, value, allowed)
    return value


def optional_text(name: str, value: Any) -> str | None:
    """A secret-safe optional string: the message never repeats the value."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise QdrantConfigError(f"Option {name!r} must be a string (got a {type(value).__name__})")
    return value


def json_object(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (str, bytes)):
        try:
            decoded = json.loads(value)
        except ValueError as error:
            raise fail(name, value, f"a JSON object (the text is not valid JSON: {error})") from None
        if isinstance(decoded, dict):
            return decoded
    raise fail(name, value, "a JSON object (a dict, or its JSON text)")


def headers(name: str, value: Any) -> dict[str, str]:
    if _is_none(value):
        return {}
    mapping = json_object(name, value)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise QdrantConfigError(f"Option {name!r} must map header names to string values")
    return mapping


def verify(name: str, value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        lowered = value.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        return value
    raise fail(name, value, "true, false, or the path of a CA bundle file")


def _names(name: str, value: Any, allowed: str) -> tuple[str, ...]:
    """A list of names from a list, a JSON list, a comma-separated string or one name."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise fail(name, value, allowed) from None
        else:
            value = [part.strip() for part in text.split(",")]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value) and value:
        return tuple(value)
    raise fail(name, value, allowed)


def with_payload(name: str, value: Any) -> bool | tuple[str, ...] | dict[str, Any]:
    allowed = "true, false, a payload key, a list of keys, or a selector {'include': [...]} / {'exclude': [...]}"
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        if text.startswith("{"):
            value = json_object(name, text)
    if isinstance(value, Mapping):
        selector = dict(value)
        if not selector or not set(selector) <= {"include", "exclude"}:
            raise fail(name, value, allowed)
        for key, keys in selector.items():
            selector[key] = list(_names(name, keys, allowed))
        return selector
    return _names(name, value, allowed)


def with_vectors(name: str, value: Any) -> bool | tuple[str, ...]:
    allowed = "true, false, a vector name, or a list of vector names"
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return _names(name, value, allowed)


def qdrant_filter(name: str, value: Any) -> dict[str, Any] | None:
    if _is_none(value):
        return None
    condition = json_object(name, value)
    unknown = sorted(set(condition) - _FILTER_KEYS)
    if unknown:
        raise fail(name, value, f"a Qdrant filter object with keys among {sorted(_FILTER_KEYS)!r} (found {unknown!r})")
    return condition


def point_id(name: str, value: Any) -> int | str:
    allowed = "an unsigned integer or a UUID string"
    if isinstance(value, bool):
        raise fail(name, value, allowed)
    if isinstance(value, int):
        if 0 <= value < 2**64:
            return value
        raise fail(name, value, allowed)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return point_id(name, int(text))
        try:
            return str(uuid.UUID(text))
        except ValueError:
            pass
    raise fail(name, value, allowed)


def optional_point_id(name: str, value: Any) -> int | str | None:
    return None if _is_none(value) else point_id(name, value)


def spark_schema_json(name: str, value: Any) -> str | None:
    """A Spark schema as its JSON text (``StructType.json()``), kept as text so options stay JSON-able."""
    if _is_none(value):
        return None
    allowed = "a Spark schema as JSON (StructType.json()), e.g. '{\"type\": \"struct\", \"fields\": [...]}'"
    if hasattr(value, "json") and callable(value.json) and hasattr(value, "fields"):
        value = value.json()
    schema = json_object(name, value) if isinstance(value, (str, bytes, Mapping)) else None
    if not schema or schema.get("type") != "struct" or not isinstance(schema.get("fields"), list):
        raise fail(name, value, allowed)
    return json.dumps(schema, separators=(",", ":"))


def optional_column(name: str, value: Any) -> str | None:
    if _is_none(value):
        return None
    if isinstance(value, str) and value.strip():
        return value
    raise fail(name, value, "a column name, or None")


def optional_columns(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return _names(name, value, "a column name, a list of column names, or None for every other column")


def column_mapping(name: str, value: Any) -> dict[str, str]:
    """Column -> vector name, from a dict, JSON, ``"col:name,col2:name2"`` or a list (same names)."""
    allowed = "a mapping column -> vector name, e.g. {'text_vector': 'text'} or 'text_vector:text'"
    if _is_none(value):
        return {}
    if isinstance(value, str) and value.strip().startswith("{"):
        value = json_object(name, value)
    elif isinstance(value, str):  # the text form's spaces around "," and ":" are layout, not part of a name
        pairs = [part.strip() for part in value.split(",") if part.strip()]
        split = (pair.split(":", 1) if ":" in pair else (pair, pair) for pair in pairs)
        value = {column.strip(): vector.strip() for column, vector in split}
    elif isinstance(value, (list, tuple)):
        value = {column: column for column in value}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
    ):
        return dict(value)  # names given as a mapping are kept as given: a column may be named " x"
    raise fail(name, value, allowed)


def sample_size(name: str, value: Any) -> int | str:
    """Points sampled for schema inference: an integer >= 1, or ``"all"`` for every point."""
    allowed = "an integer >= 1, or 'all' to infer the schema from every point"
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    number = _integer(name, value, allowed)
    if number < 1:
        raise fail(name, value, allowed)
    return number


def choice(allowed: tuple[str, ...]) -> Callable[[str, Any], str]:
    """A parser for one of a few names, case-insensitive, returned in its canonical spelling."""

    def parse_choice(name: str, value: Any) -> str:
        if isinstance(value, str):
            for candidate in allowed:
                if candidate.lower() == value.strip().lower():
                    return candidate
        raise fail(name, value, f"one of {list(allowed)!r}")

    return parse_choice
