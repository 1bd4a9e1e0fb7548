"""Payload index schemas: Qdrant's `PayloadFieldSchema` JSON <-> Qdrant Edge index parameters.

A payload index's parameters change what a filter matches (a text index's tokenizer, lowercasing,
stopwords, stemmer and phrase matching decide which points `match: {text}` and `match: {phrase}` select),
so every parameter of the spec's `*IndexParams` is handed to the engine, which indexes and matches exactly
as Qdrant does, and `payload_schema[field].params` reports them back. A schema given as a bare type name
(`"text"`) is reported without `params`, as Qdrant reports it.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from dagster_qdrant.embedded.errors import ApiError, bad_json

SCHEMA_TYPES = {
    "keyword": edge.PayloadSchemaType.Keyword,
    "integer": edge.PayloadSchemaType.Integer,
    "float": edge.PayloadSchemaType.Float,
    "geo": edge.PayloadSchemaType.Geo,
    "text": edge.PayloadSchemaType.Text,
    "bool": edge.PayloadSchemaType.Bool,
    "datetime": edge.PayloadSchemaType.Datetime,
    "uuid": edge.PayloadSchemaType.Uuid,
}
PARAMS_CLASSES: dict[str, Any] = {
    "keyword": edge.KeywordIndexParams,
    "integer": edge.IntegerIndexParams,
    "float": edge.FloatIndexParams,
    "geo": edge.GeoIndexParams,
    "text": edge.TextIndexParams,
    "bool": edge.BoolIndexParams,
    "datetime": edge.DatetimeIndexParams,
    "uuid": edge.UuidIndexParams,
}
_COMMON = ("on_disk", "memory", "enable_hnsw")
# The fields of each `*IndexParams` in the OpenAPI spec, besides `type`.
PARAMS_FIELDS: dict[str, tuple[str, ...]] = {
    "keyword": ("is_tenant", *_COMMON, "prefix"),
    "integer": ("lookup", "range", "is_principal", *_COMMON),
    "float": ("is_principal", *_COMMON),
    "geo": _COMMON,
    "text": (
        "tokenizer", "min_token_len", "max_token_len", "lowercase", "ascii_folding", "phrase_matching",
        "stopwords", "on_disk", "memory", "stemmer", "enable_hnsw",
    ),
    "bool": _COMMON,
    "datetime": ("is_principal", *_COMMON),
    "uuid": ("is_tenant", *_COMMON),
}
_BOOLEANS = {
    "is_tenant", "on_disk", "enable_hnsw", "prefix", "lookup", "range", "is_principal", "lowercase",
    "ascii_folding", "phrase_matching",
}
TOKENIZERS = {
    "prefix": edge.TokenizerType.Prefix,
    "whitespace": edge.TokenizerType.Whitespace,
    "word": edge.TokenizerType.Word,
    "multilingual": edge.TokenizerType.Multilingual,
}
MEMORY = {"cold": edge.Memory.Cold, "cached": edge.Memory.Cached, "pinned": edge.Memory.Pinned}


def _members(enum_type: Any) -> dict[str, Any]:
    """The variants of an engine enum by their JSON name (the engine's enums are not iterable)."""
    return {name.lower(): getattr(enum_type, name) for name in dir(enum_type) if name[:1].isupper()}


def enum_name(value: Any) -> str:
    """An engine enum variant's JSON name: `Language.English` -> `english`."""
    return str(value).rsplit(".", 1)[-1].lower()


LANGUAGES = _members(edge.Language)
SNOWBALL_LANGUAGES = _members(edge.SnowballLanguage)
_ENUM_TYPES = (edge.TokenizerType, edge.Memory, edge.Language, edge.SnowballLanguage)


def parse_field_schema(value: Any) -> Any:
    """A `PayloadFieldSchema` (type name or `{type, ...params}`) as the Edge schema `create_field_index` takes."""
    if isinstance(value, str):
        if value not in SCHEMA_TYPES:
            raise _unknown_variant(value, "field_schema", SCHEMA_TYPES)
        return SCHEMA_TYPES[value]
    if not isinstance(value, dict):
        raise bad_json(f"field_schema must be a type name ({', '.join(SCHEMA_TYPES)}) or {{type, ...}}, got {value!r}")
    kind = value.get("type")
    if kind not in PARAMS_CLASSES:
        raise _unknown_variant(kind, "field_schema.type", SCHEMA_TYPES)
    allowed = PARAMS_FIELDS[kind]
    unknown = sorted(key for key in value if key != "type" and key not in allowed)
    if unknown:
        raise bad_json(f"unknown field(s) {unknown} in a `{kind}` index schema, expected {list(allowed)}")
    given = {key: item for key, item in value.items() if key != "type" and item is not None}
    if kind == "integer" and given.get("lookup") is False and given.get("range") is False:
        raise ApiError(422, "Validation error: the 'lookup' and 'range' capabilities can't be both disabled")
    return PARAMS_CLASSES[kind](**{key: _parse_field(key, item) for key, item in given.items()})


def _parse_field(key: str, value: Any) -> Any:
    where = f"field_schema.{key}"
    if key in _BOOLEANS:
        if not isinstance(value, bool):
            raise bad_json(f"invalid type: {value!r}, expected a boolean for `{where}`")
        return value
    if key in ("min_token_len", "max_token_len"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad_json(f"invalid value: {value!r}, expected a non-negative integer for `{where}`")
        return value
    if key == "tokenizer":
        return _variant(value, where, TOKENIZERS)
    if key == "memory":
        return _variant(value, where, MEMORY)
    if key == "stopwords":
        return _parse_stopwords(value)
    if key == "stemmer":
        return _parse_stemmer(value)
    raise bad_json(f"unknown field `{where}`")


def _parse_stopwords(value: Any) -> Any:
    if isinstance(value, str):
        return _variant(value, "field_schema.stopwords", LANGUAGES)
    if not isinstance(value, dict) or set(value) - {"languages", "custom"}:
        raise bad_json(f"stopwords must be a language or {{languages, custom}}, got {value!r}")
    languages, custom = value.get("languages"), value.get("custom")
    if languages is not None and not isinstance(languages, list):
        raise bad_json(f"stopwords.languages must be a list of languages, got {languages!r}")
    if custom is not None and (not isinstance(custom, list) or not all(isinstance(word, str) for word in custom)):
        raise bad_json(f"stopwords.custom must be a list of strings, got {custom!r}")
    return edge.StopwordsSet(
        languages={_variant(language, "stopwords.languages", LANGUAGES) for language in languages}
        if languages is not None
        else None,
        custom=set(custom) if custom is not None else None,
    )


def _parse_stemmer(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "none" and set(value) == {"type"}:
        return edge.DisabledStemmer()
    if isinstance(value, dict) and value.get("type") == "snowball" and set(value) == {"type", "language"}:
        return edge.SnowballParams(_variant(value["language"], "stemmer.language", SNOWBALL_LANGUAGES))
    raise bad_json(f"stemmer must be {{type: snowball, language}} or {{type: none}}, got {value!r}")


def _variant(value: Any, where: str, choices: dict[str, Any]) -> Any:
    if not isinstance(value, str) or value not in choices:
        raise _unknown_variant(value, where, choices)
    return choices[value]


def _unknown_variant(value: Any, where: str, choices: dict[str, Any]) -> ApiError:
    expected = ", ".join(f"`{choice}`" for choice in choices)
    return bad_json(f"unknown variant `{value}` for `{where}`, expected one of {expected}")


def index_info_json(info: Any) -> dict[str, Any]:
    """One `PayloadIndexInfo`: data type, points, and the index's parameters when it was created with some."""
    data_type = enum_name(info.data_type)
    result: dict[str, Any] = {"data_type": data_type}
    if info.params is not None:
        result["params"] = params_json(data_type, info.params)
    result["points"] = info.points
    return result


def params_json(data_type: str, params: Any) -> dict[str, Any]:
    """Edge index parameters as the spec's `*IndexParams` JSON (unset fields left out, as Qdrant does)."""
    result: dict[str, Any] = {"type": data_type}
    for key in PARAMS_FIELDS[data_type]:
        value = getattr(params, key)
        if value is not None:
            result[key] = _field_json(value)
    return result


def _field_json(value: Any) -> Any:
    if isinstance(value, _ENUM_TYPES):
        return enum_name(value)
    if isinstance(value, edge.StopwordsSet):
        stopwords: dict[str, Any] = {}
        if value.languages is not None:
            stopwords["languages"] = sorted(enum_name(language) for language in value.languages)
        if value.custom is not None:
            stopwords["custom"] = sorted(value.custom)
        return stopwords
    if isinstance(value, edge.SnowballParams):
        return {"type": "snowball", "language": enum_name(value.language)}
    if isinstance(value, edge.DisabledStemmer):
        return {"type": "none"}
    return value
