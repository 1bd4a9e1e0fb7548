"""Options: defaults, validation of every option, Spark string parsing, secrets kept out of reprs."""

from __future__ import annotations

import json
import pickle

import pytest

from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.options import (
    DEFAULT_MAX_BATCH_BYTES,
    QDRANT_CONFIG_OPTION,
    QDRANT_FORMAT,
    QDRANT_MAX_BODY_BYTES,
    QDRANT_SCHEMA_OPTION,
    ReadOptions,
    WriteOptions,
    build_qdrant_config,
    build_qdrant_write_config,
)

URL = "http://localhost:6333"
SCHEMA = {"type": "struct", "fields": [{"name": "id", "type": "long", "nullable": False, "metadata": {}}]}


def test_constants_are_the_documented_names() -> None:
    assert (QDRANT_FORMAT, QDRANT_CONFIG_OPTION, QDRANT_SCHEMA_OPTION) == ("qdrant", "qdrant.config", "qdrant.schema")
    assert DEFAULT_MAX_BATCH_BYTES < QDRANT_MAX_BODY_BYTES == 32 * 1024 * 1024


def test_read_defaults_match_the_documented_ones() -> None:
    config = build_qdrant_config(URL, "docs")
    assert config == {
        "endpoint": URL,
        "api_key": None,
        "headers": {},
        "timeout": 30.0,
        "connect_timeout": 5.0,
        "max_retries": 3,
        "backoff_factor": 0.5,
        "verify": True,
        "collection": "docs",
        "with_payload": True,
        "with_vectors": False,
        "limit": None,
        "page_size": 512,
        "max_pages": None,
        "filter": None,
        "offset": None,
        "infer_schema": True,
        "num_partitions": None,
        "partitioning": "auto",
        "schema": None,
        "sample_size": 1000,
        "schema_mismatch": "warn",
        "payload_layout": "auto",
        "missing_columns": "error",
    }
    json.dumps(config)


def test_write_defaults_match_the_documented_ones() -> None:
    options = WriteOptions(endpoint=URL, collection="docs")
    assert (options.batch_size, options.max_batch_bytes, options.wait) == (256, DEFAULT_MAX_BATCH_BYTES, True)
    assert (options.id_field, options.vector_field, options.vector_fields) == ("id", "vector", {})
    assert (options.sparse_vector_fields, options.payload_fields, options.create_collection) == ({}, None, False)
    assert (options.distance, options.payload_format, options.write_method) == ("Cosine", "auto", "auto")
    assert options.max_in_flight == 4
    assert options.dense_vector_columns() == {"vector": ""}
    assert options.excluded_from_payload() == {"id", "vector"}


def test_config_round_trips_through_json_and_spark_options() -> None:
    config = build_qdrant_config(URL, "docs", limit=10, with_payload=["a", "b"], filter={"must": []}, offset=5)
    options = ReadOptions.from_spark_options({QDRANT_CONFIG_OPTION: json.dumps(config)})
    assert options.to_config() == config
    assert ReadOptions.from_spark_options(options.spark_options()) == options
    write = WriteOptions(endpoint=URL, collection="docs", vector_fields={"text_vec": "text"})
    assert WriteOptions.from_spark_options(write.spark_options()) == write


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("limit", "10", 10),
        ("limit", "none", None),
        ("page_size", "64", 64),
        ("max_pages", "3", 3),
        ("timeout", "2.5", 2.5),
        ("connect_timeout", "0.5", 0.5),
        ("max_retries", "0", 0),
        ("backoff_factor", "0", 0.0),
        ("verify", "false", False),
        ("verify", "/etc/ssl/ca.pem", "/etc/ssl/ca.pem"),
        ("with_payload", "false", False),
        ("with_payload", "title", ("title",)),
        ("with_payload", "title, body", ("title", "body")),
        ("with_payload", '["title"]', ("title",)),
        ("with_payload", '{"exclude": ["body"]}', {"exclude": ["body"]}),
        ("with_vectors", "true", True),
        ("with_vectors", "text,image", ("text", "image")),
        ("filter", '{"must": [{"key": "k", "match": {"value": 1}}]}', {"must": [{"key": "k", "match": {"value": 1}}]}),
        ("offset", "42", 42),
        ("offset", "6F0C5A8E-2B4D-5C1E-9A7F-3D2B1C0E4F5A", "6f0c5a8e-2b4d-5c1e-9a7f-3d2b1c0e4f5a"),
        ("num_partitions", "4", 4),
        ("partitioning", "Slice", "slice"),
        ("partitioning", " id_range ", "id_range"),
        ("headers", '{"x-team": "search"}', {"x-team": "search"}),
    ],
)
def test_read_string_options_are_parsed(key: str, text: str, expected: object) -> None:
    options = ReadOptions.from_spark_options({"endpoint": URL, "collection": "docs", key: text})
    assert getattr(options, key) == expected


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("batch_size", "256", 256),
        ("max_batch_bytes", "1048576", 1048576),
        ("wait", "no", False),
        ("id_field", "doc_id", "doc_id"),
        ("id_field", "none", None),
        ("vector_field", "embedding", "embedding"),
        ("vector_fields", "text_vec:text,image_vec:image", {"text_vec": "text", "image_vec": "image"}),
        ("vector_fields", '{"text_vec": "text"}', {"text_vec": "text"}),
        ("vector_fields", " text vec : text , b:b ", {"text vec": "text", "b": "b"}),  # text form: layout spaces
        ("vector_fields", '{" text vec": "text "}', {" text vec": "text "}),  # a mapping: names as given
        ("sparse_vector_fields", "bm25", {"bm25": "bm25"}),
        ("payload_fields", "title,body", ("title", "body")),
        ("create_collection", "TRUE", True),
        ("distance", "dot", "Dot"),
        ("payload_format", "Points", "points"),
        ("write_method", "POST", "post"),
        ("max_in_flight", "1", 1),
    ],
)
def test_write_string_options_are_parsed(key: str, text: str, expected: object) -> None:
    options = WriteOptions.from_spark_options({"endpoint": URL, "collection": "docs", key: text})
    assert getattr(options, key) == expected


def test_per_key_options_override_the_config_json_and_keys_are_case_insensitive() -> None:
    config = build_qdrant_config(URL, "docs", limit=10)
    options = ReadOptions.from_spark_options({QDRANT_CONFIG_OPTION: json.dumps(config), "Limit": "3"})
    assert (options.limit, options.page_size) == (3, 3)


def test_spark_path_names_the_collection_and_schema_option_is_read() -> None:
    options = ReadOptions.from_spark_options(
        {"endpoint": URL, "path": "docs", "infer_schema": "false", QDRANT_SCHEMA_OPTION: json.dumps(SCHEMA)}
    )
    assert options.collection == "docs"
    assert json.loads(options.explicit_schema()) == SCHEMA


def test_a_read_config_json_can_feed_a_writer_but_unknown_keys_fail() -> None:
    config = build_qdrant_config(URL, "docs", limit=10)
    write = WriteOptions.from_spark_options({QDRANT_CONFIG_OPTION: json.dumps(config), "batch_size": "7"})
    assert write.batch_size == 7
    with pytest.raises(QdrantConfigError, match="batchsize"):
        WriteOptions.from_spark_options({"endpoint": URL, "collection": "docs", "batchsize": "7"})


def test_page_size_is_clipped_to_limit() -> None:
    assert ReadOptions(endpoint=URL, collection="docs", limit=5).page_size == 5
    assert ReadOptions(endpoint=URL, collection="docs", limit=500, page_size=64).page_size == 64


def test_infer_schema_false_needs_a_schema_only_when_spark_asks() -> None:
    options = ReadOptions(endpoint=URL, collection="docs", infer_schema=False)
    with pytest.raises(QdrantConfigError, match="infer_schema"):
        options.explicit_schema()
    assert ReadOptions(endpoint=URL, collection="docs").explicit_schema() is None


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("endpoint", "localhost:6333", "http:// or https://"),
        ("endpoint", "ftp://host", "http:// or https://"),
        ("collection", "  ", "collection name"),
        ("collection", "a/b", "without '/'"),
        ("timeout", 0, "> 0"),
        ("connect_timeout", 0, "> 0"),
        ("timeout", "soon", "> 0"),
        ("max_retries", -1, ">= 0"),
        ("max_retries", True, ">= 0"),
        ("backoff_factor", -0.1, ">= 0"),
        ("verify", 3, "CA bundle"),
        ("headers", "x-team", "JSON object"),
        ("with_payload", 3, "payload key"),
        ("with_payload", {"only": ["a"]}, "selector"),
        ("with_vectors", 3, "vector name"),
        ("limit", 0, ">= 1"),
        ("limit", -5, ">= 1"),
        ("page_size", 0, ">= 1"),
        ("max_pages", 0, ">= 1"),
        ("filter", "{not json", "not valid JSON"),
        ("filter", {"where": []}, "must"),
        ("filter", "[1, 2]", "JSON object"),
        ("offset", -1, "unsigned integer or a UUID"),
        ("offset", "abc", "unsigned integer or a UUID"),
        ("infer_schema", "maybe", "true or false"),
        ("num_partitions", 0, ">= 1"),
        ("partitioning", "hash", "['auto', 'slice', 'id_range']"),
        ("schema", '{"type": "array"}', "Spark schema"),
    ],
)
def test_every_read_option_is_validated(option: str, value: object, allowed: str) -> None:
    values = {"endpoint": URL, "collection": "docs", option: value}
    with pytest.raises(QdrantConfigError) as caught:
        build_qdrant_config(**values)
    message = str(caught.value)
    assert repr(option) in message and allowed in message
    if option not in ("headers",):
        assert repr(value) in message


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("batch_size", 0, ">= 1"),
        ("max_batch_bytes", 10, ">= 1024"),
        ("wait", "sometimes", "true or false"),
        ("id_field", 5, "column name"),
        ("vector_field", 5, "column name"),
        ("vector_fields", {"col": 1}, "column -> vector name"),
        ("sparse_vector_fields", 7, "column -> vector name"),
        ("payload_fields", [], "column name"),
        ("create_collection", "y?", "true or false"),
        ("distance", "cosinus", "Cosine"),
        ("payload_format", "rows", "batch"),
        ("write_method", "patch", "put"),
        ("max_in_flight", 0, ">= 1"),
    ],
)
def test_every_write_option_is_validated(option: str, value: object, allowed: str) -> None:
    with pytest.raises(QdrantConfigError) as caught:
        build_qdrant_write_config(URL, "docs", **{option: value})
    message = str(caught.value)
    assert repr(option) in message and repr(value) in message and allowed in message


def test_missing_endpoint_or_collection_says_what_to_pass() -> None:
    with pytest.raises(QdrantConfigError, match="'endpoint' is required"):
        ReadOptions.from_spark_options({"collection": "docs"})
    with pytest.raises(QdrantConfigError, match="'collection' is required"):
        WriteOptions.from_spark_options({"endpoint": URL})


def test_write_options_reject_column_conflicts() -> None:
    with pytest.raises(QdrantConfigError, match="No vector column"):
        build_qdrant_write_config(URL, "docs", vector_field=None)
    with pytest.raises(QdrantConfigError, match="also a vector column"):
        build_qdrant_write_config(URL, "docs", id_field="vector")
    with pytest.raises(QdrantConfigError, match="several columns"):
        build_qdrant_write_config(URL, "docs", vector_fields={"a": "v"}, sparse_vector_fields={"b": "v"})


def test_named_vectors_replace_the_default_vector_column() -> None:
    options = WriteOptions(endpoint=URL, collection="docs", vector_fields={"text_vec": "text"})
    assert options.dense_vector_columns() == {"text_vec": "text"}
    sparse_only = WriteOptions(endpoint=URL, collection="docs", vector_field=None, sparse_vector_fields={"bm25": "bm25"})
    assert sparse_only.dense_vector_columns() == {}


def test_api_key_never_shows_in_repr_str_or_errors() -> None:
    secret = "sk-very-secret-123"
    options = ReadOptions(endpoint=URL, collection="docs", api_key=secret, headers={"Authorization": f"Bearer {secret}"})
    config = build_qdrant_write_config(URL, "docs", api_key=secret)
    for text in (repr(options), str(options), repr(config), str(config), f"{config}"):
        assert secret not in text
        assert "***" in text
    assert config["api_key"] == secret  # the dict itself still carries it to the data source
    assert options.request_headers()["api-key"] == secret
    broken_json = json.dumps({"endpoint": URL, "collection": "docs", "api_key": secret})[:-1]
    with pytest.raises(QdrantConfigError) as caught:
        ReadOptions.from_spark_options({QDRANT_CONFIG_OPTION: broken_json})
    assert secret not in str(caught.value)
    with pytest.raises(QdrantConfigError) as caught:
        build_qdrant_config(URL, "docs", headers=f'{{"api-key": "{secret}"')
    assert secret not in str(caught.value)


def test_options_pickle_for_spark_executors() -> None:
    options = WriteOptions(endpoint=URL, collection="docs", api_key="k", vector_fields={"a": "b"})
    assert pickle.loads(pickle.dumps(options)) == options


def test_selection_is_the_payload_and_vector_choice_as_request_json() -> None:
    options = ReadOptions(endpoint=URL, collection="docs", with_payload="title", with_vectors=("a", "b"))
    assert options.selection() == {"with_payload": ["title"], "with_vector": ["a", "b"]}
    assert ReadOptions(endpoint=URL, collection="docs").selection() == {"with_payload": True, "with_vector": False}


def test_partitioning_is_a_read_option_in_the_config_json_and_per_key() -> None:
    config = build_qdrant_config(URL, "docs", partitioning="id_range")
    assert config["partitioning"] == "id_range"
    from_json = ReadOptions.from_spark_options({QDRANT_CONFIG_OPTION: json.dumps(config)})
    assert from_json.partitioning == "id_range"
    per_key = ReadOptions.from_spark_options({QDRANT_CONFIG_OPTION: json.dumps(config), "Partitioning": "slice"})
    assert per_key.partitioning == "slice"
    assert WriteOptions.from_spark_options({QDRANT_CONFIG_OPTION: json.dumps({**config, "vector_field": "v"})})
    with pytest.raises(QdrantConfigError, match="partitioning"):
        WriteOptions.from_spark_options({"endpoint": URL, "collection": "docs", "partitioning": "slice"})


# A value other than the default for every declared option, as a program passes it.
NATIVE_VALUES = {
    "endpoint": "https://qdrant.example:6333",
    "api_key": "k-123",
    "headers": {"x-team": "search"},
    "timeout": 2.5,
    "connect_timeout": 1.5,
    "max_retries": 0,
    "backoff_factor": 1.25,
    "verify": "/etc/ssl/ca.pem",
    "collection": "other_docs",
    "with_payload": ["title", "body"],
    "with_vectors": ["text"],
    "limit": 40,
    "page_size": 16,
    "max_pages": 2,
    "filter": {"must": [{"key": "k", "match": {"value": 1}}]},
    "offset": "6f0c5a8e-2b4d-5c1e-9a7f-3d2b1c0e4f5a",
    "infer_schema": False,
    "schema": SCHEMA,
    "sample_size": "all",
    "schema_mismatch": "error",
    "num_partitions": 3,
    "partitioning": "id_range",
    "payload_layout": "json",
    "missing_columns": "null",
    "batch_size": 7,
    "max_batch_bytes": 4096,
    "wait": False,
    "id_field": "key",
    "vector_field": "embedding",
    "vector_fields": {"text_vector": "text"},
    "sparse_vector_fields": {"keywords": "bm25"},
    "payload_fields": ["title"],
    "create_collection": True,
    "distance": "Dot",
    "payload_format": "points",
    "write_method": "post",
    "max_in_flight": 2,
    "non_finite": "null",
    "decimal_as": "string",
}


@pytest.mark.parametrize("options_class", [ReadOptions, WriteOptions])
def test_every_declared_option_travels_as_a_spark_string_and_back(options_class: type) -> None:
    """Each option given as Spark's ``.option(key, text)`` is the value given natively, and the object
    comes back whole from its ``qdrant.config`` form: the string form follows the declarations."""
    names = options_class.option_names()
    assert sorted(set(names) - set(NATIVE_VALUES)) == [], "declared options without a value in this test"
    base = {"endpoint": URL, "collection": "docs"}
    for name in names:
        value = NATIVE_VALUES[name]
        native = options_class.from_mapping({**base, name: value})
        text = value if isinstance(value, str) else json.dumps(value)
        from_text = options_class.from_spark_options({**base, name: text})
        assert getattr(from_text, name) == getattr(native, name) != getattr(
            options_class.from_mapping(base), name
        ), name
        assert options_class.from_spark_options(native.spark_options()) == native, name
