"""Code brought over from spark-fuse's Qdrant data source runs here, and both read each other's points.

References: the two examples of spark-fuse 1.2.0's data source documentation, run as written (import
line changed; endpoint and collection pointed at the test server at run time), their ``df.show(5)``
compared with Spark's own rendering of the input rows; the input payloads themselves for the layouts;
qdrant-client reading what ``write_qdrant_points`` wrote; and, when spark-fuse is installed, spark-fuse
itself writing and reading the same collection. spark-fuse cannot be part of the ``test`` extra: its
declared dependencies pull in torch (sentence-transformers), and a pyproject extra cannot say
``--no-deps``; install it with ``pip install --no-deps spark-fuse==1.2.0`` to run those tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
from typing import Any

import numpy as np
import pytest
from pyspark.sql.types import StructType

from dagster_qdrant import QDRANT_CONFIG_OPTION, QDRANT_FORMAT, QDRANT_SCHEMA_OPTION, build_qdrant_config
from dagster_qdrant import build_qdrant_write_config, write_qdrant_points
from dagster_qdrant.spark_fuse_compat import QdrantCallError
from dagster_qdrant.errors import QdrantConfigError, QdrantSchemaError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions, ReadOptions, WriteOptions

# spark-fuse 1.2.0's documented examples; only the import line differs (spark_fuse.io -> dagster_qdrant).
READ_EXAMPLE = '''
import json
from dagster_qdrant import (
    QDRANT_CONFIG_OPTION,
    QDRANT_FORMAT,
    build_qdrant_config,
    register_qdrant_data_source,
)

register_qdrant_data_source(spark)
config = build_qdrant_config(
    spark,
    endpoint="http://localhost:6333",
    collection="demo",
    with_vectors=True,
    limit=200,
)

df = (
    spark.read.format(QDRANT_FORMAT)
    .option(QDRANT_CONFIG_OPTION, json.dumps(config))
    .load()
)
df.show(5)
'''

WRITE_EXAMPLE = '''
import json
from dagster_qdrant import (
    QDRANT_CONFIG_OPTION,
    QDRANT_FORMAT,
    build_qdrant_write_config,
    register_qdrant_data_source,
)

register_qdrant_data_source(spark)
write_config = build_qdrant_write_config(
    endpoint="http://localhost:6333",
    collection="demo",
    vector_field="embedding",
    payload_fields=["text", "source"],
)

(
    df.write.format(QDRANT_FORMAT)
    .option(QDRANT_CONFIG_OPTION, json.dumps(write_config))
    .mode("append")
    .save()
)
'''


def _run_example(example: str, url: str, collection: str, **names: Any) -> tuple[dict[str, Any], str]:
    """Run an example against ``url``/``collection``; its namespace and what it printed."""
    code = example.replace('"http://localhost:6333"', repr(url)).replace('"demo"', repr(collection))
    assert code.count(repr(url)) == 1 and code.count(repr(collection)) == 1
    namespace = dict(names)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<example>", "exec"), namespace)  # noqa: S102 - the documented example
    return namespace, printed.getvalue()


def _shown(frame: Any, rows: int = 5) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        frame.show(rows)
    return printed.getvalue()


def _http(url: str, key: str | None) -> QdrantHttp:
    return QdrantHttp(ConnectionOptions(endpoint=url, api_key=key))


def _create(url: str, key: str | None, name: str, size: int = 4) -> None:
    # Dot keeps vectors as written (Cosine would normalise them), so read-backs compare exactly.
    _http(url, key).create_collection(name, {"vectors": {"size": size, "distance": "Dot"}})


def _documents(count: int, seed: int = 7) -> list[tuple[int, list[float], str, str]]:
    """(id, embedding, text, source): vector entries are multiples of 1/8, exact as float32."""
    generator = random.Random(seed)
    return [
        (n, [generator.randrange(-16, 16) / 8 for _ in range(4)], f"doc {n}", generator.choice(["web", "pdf"]))
        for n in range(1, count + 1)
    ]


# ---------------------------------------------------------------------------------------------------
# The documented examples
# ---------------------------------------------------------------------------------------------------


def test_the_documented_write_then_read_examples_run_as_written(spark, qdrant_url, qdrant_api_key, collection_name):
    _create(qdrant_url, qdrant_api_key, collection_name)
    documents = _documents(12)
    df = spark.createDataFrame(documents, "id long, embedding array<float>, text string, source string")
    _run_example(WRITE_EXAMPLE, qdrant_url, collection_name, spark=spark, df=df)

    namespace, printed = _run_example(READ_EXAMPLE, qdrant_url, collection_name, spark=spark)

    expected = spark.createDataFrame(
        [(n, source, text, vector) for n, vector, text, source in documents],
        "id long, source string, text string, vector array<float>",
    )
    assert printed == _shown(expected)
    assert namespace["config"]["num_partitions"] == spark.sparkContext.defaultParallelism
    assert namespace["df"].count() == len(documents)


def test_the_read_example_in_spark_fuses_shape_shows_payload_structs(
    spark, qdrant_url, qdrant_api_key, collection_name
):
    _create(qdrant_url, qdrant_api_key, collection_name)
    documents = _documents(8, seed=3)
    write_qdrant_points(
        [{"id": n, "vector": vector, "text": text, "source": source} for n, vector, text, source in documents],
        qdrant_url,
        collection=collection_name,
    )
    example = READ_EXAMPLE.replace("limit=200,", 'limit=200,\n    payload_layout="struct",')
    namespace, printed = _run_example(example, qdrant_url, collection_name, spark=spark)

    expected = spark.createDataFrame(
        [(n, (source, text), vector) for n, vector, text, source in documents],
        "id long, payload struct<source: string, text: string>, vector array<float>",
    )
    assert printed == _shown(expected)
    texts = [row.text for row in namespace["df"].select("payload.text").orderBy("id").collect()]
    assert texts == [text for _, _, text, _ in documents]


# ---------------------------------------------------------------------------------------------------
# Call forms
# ---------------------------------------------------------------------------------------------------


def test_build_qdrant_config_takes_the_reference_form_and_ours(spark) -> None:
    url = "http://localhost:6333"
    ours = build_qdrant_config(url, "demo", limit=10)
    parallelism = spark.sparkContext.defaultParallelism
    for config in (
        build_qdrant_config(spark, endpoint=url, collection="demo", limit=10),
        build_qdrant_config(spark, url, collection="demo", limit=10),
        build_qdrant_config(spark, url, source_config={"collection": "demo", "limit": 10}),
    ):
        assert config == {**ours, "num_partitions": parallelism}
    assert build_qdrant_config(endpoint=url, collection="demo", limit=10) == ours
    assert build_qdrant_config(spark, url, collection="demo", num_partitions=3)["num_partitions"] == 3
    merged = build_qdrant_config(url, "demo", source_config={"headers": {"a": "1"}}, headers={"b": "2"})
    assert merged["headers"] == {"a": "1", "b": "2"}
    assert build_qdrant_write_config(url, collection="demo") == build_qdrant_write_config(url, "demo")
    schema = StructType.fromDDL("id long, payload struct<text: string>")
    given = build_qdrant_config(spark, url, collection="demo", schema=schema, infer_schema=False)
    assert StructType.fromJson(json.loads(ReadOptions.from_mapping(given).explicit_schema())) == schema


@pytest.mark.parametrize(
    "call",
    [
        lambda spark: build_qdrant_config(spark, "http://h:6333", endpoint="http://h:6333", collection="c"),
        lambda spark: build_qdrant_config("http://h:6333", "c", collection="c"),
        lambda spark: build_qdrant_config("http://h:6333", spark, collection="c"),
        lambda spark: build_qdrant_config(42, collection="c"),
        lambda spark: build_qdrant_config(spark, "http://h:6333", "c", "extra"),
    ],
)
def test_build_qdrant_config_names_both_forms_for_any_other_mix(spark, call) -> None:
    with pytest.raises(TypeError, match=r"build_qdrant_config\(endpoint, collection.*build_qdrant_config\(spark"):
        call(spark)


def test_write_qdrant_points_takes_the_reference_form_and_ours(qdrant_url, qdrant_api_key, collection_name) -> None:
    from qdrant_client import QdrantClient

    _create(qdrant_url, qdrant_api_key, collection_name)
    documents = _documents(30, seed=11)
    records = [{"id": n, "vector": v, "text": t, "source": s} for n, v, t, s in documents]
    key = {"api_key": qdrant_api_key} if qdrant_api_key else {}
    reports = [
        write_qdrant_points(records[:10], qdrant_url, collection=collection_name, batch_size=4, **key),
        write_qdrant_points(records[10:20], build_qdrant_write_config(qdrant_url, collection_name, **key)),
        write_qdrant_points(records[20:], endpoint=qdrant_url, collection=collection_name, **key),
    ]
    assert [report.points_written for report in reports] == [10, 10, 10]

    client = QdrantClient(url=qdrant_url, api_key=qdrant_api_key, prefer_grpc=False)
    stored, _ = client.scroll(collection_name, limit=100, with_payload=True, with_vectors=True)
    assert sorted((p.id, p.vector, p.payload["text"], p.payload["source"]) for p in stored) == sorted(documents)


@pytest.mark.parametrize(
    "args, options",
    [
        (("http://h:6333", "c"), {}),
        (("http://h:6333",), {"endpoint": "http://h:6333", "collection": "c"}),
        (({"endpoint": "http://h:6333", "collection": "c"},), {"config": {}}),
        ((3.5,), {"collection": "c"}),
    ],
)
def test_write_qdrant_points_names_both_forms_for_any_other_mix(args, options) -> None:
    with pytest.raises(TypeError, match=r"write_qdrant_points\(points, config.*write_qdrant_points\(points, endpoint"):
        write_qdrant_points([{"id": 1, "vector": [1.0]}], *args, **options)
    assert issubclass(QdrantCallError, QdrantConfigError)


# ---------------------------------------------------------------------------------------------------
# Payload layouts
# ---------------------------------------------------------------------------------------------------


def _payloads(count: int, seed: int) -> list[dict[str, Any]]:
    """Generated payloads of one type per key, some keys absent, nested objects and lists; doubles of at
    most 15 significant digits, which Qdrant gives back exactly."""
    generator = random.Random(seed)
    payloads = []
    for _ in range(count):
        payload: dict[str, Any] = {
            "title": "".join(generator.choice("abcxyzé 日") for _ in range(generator.randrange(0, 9))),
            "rank": generator.randrange(-(2**62), 2**62),
            "score": round(generator.uniform(-1e6, 1e6), 6),
            "flag": generator.random() < 0.5,
            "meta": {"page": generator.randrange(1000), "lang": generator.choice(["en", "fr"])},
            "tags": [generator.choice(["a", "b", "c"]) for _ in range(generator.randrange(4))],
        }
        for key in list(payload):
            if generator.random() < 0.2:
                del payload[key]
        payloads.append(payload)
    return payloads


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _read(spark, url: str, key: str | None, collection: str, schema: str | None = None, **options: Any):
    config = {"endpoint": url, "collection": collection, **options}
    if key:
        config["api_key"] = key
    reader = spark.read.format(QDRANT_FORMAT).option(QDRANT_CONFIG_OPTION, json.dumps(config))
    if schema is not None and schema.startswith("{"):
        reader = reader.option(QDRANT_SCHEMA_OPTION, schema)  # Spark schema JSON, as spark-fuse takes it
    elif schema is not None:
        reader = reader.schema(schema)  # DDL, through Spark's own .schema(...)
    return reader.load()


def test_struct_and_json_layouts_give_back_every_payload_as_written(spark, qdrant_url, qdrant_api_key, collection_name):
    _create(qdrant_url, qdrant_api_key, collection_name, size=2)
    payloads = _payloads(300, seed=5)
    records = [{"id": n, "vector": [float(n), 0.5], **payload} for n, payload in enumerate(payloads)]
    write_qdrant_points(records, qdrant_url, collection=collection_name, api_key=qdrant_api_key)

    struct = _read(spark, qdrant_url, qdrant_api_key, collection_name, payload_layout="struct")
    assert struct.columns == ["id", "payload"]
    back = {row.id: _without_nulls(row.payload.asDict(recursive=True)) for row in struct.collect()}
    assert back == dict(enumerate(payloads))

    text = _read(spark, qdrant_url, qdrant_api_key, collection_name, payload_layout="json")
    assert dict(text.dtypes) == {"id": "bigint", "payload": "string"}
    assert {row.id: json.loads(row.payload) for row in text.collect()} == dict(enumerate(payloads))


def test_a_spark_fuse_schema_json_selects_its_layout_and_a_misnamed_column_is_refused(
    spark, qdrant_url, qdrant_api_key, collection_name
):
    _create(qdrant_url, qdrant_api_key, collection_name)
    documents = _documents(20, seed=2)
    write_qdrant_points(
        [{"id": n, "vector": v, "text": t, "source": s} for n, v, t, s in documents],
        qdrant_url, collection=collection_name, api_key=qdrant_api_key,
    )
    # spark-fuse's inferred shape: id, payload struct (in the points' key order), vector of doubles.
    schema = StructType.fromJson({"type": "struct", "fields": [
        {"name": "id", "type": "long", "nullable": True, "metadata": {}},
        {"name": "payload", "type": {"type": "struct", "fields": [
            {"name": "text", "type": "string", "nullable": True, "metadata": {}},
            {"name": "source", "type": "string", "nullable": True, "metadata": {}},
        ]}, "nullable": True, "metadata": {}},
        {"name": "vector", "type": {"type": "array", "elementType": "double", "containsNull": True},
         "nullable": True, "metadata": {}},
    ]})
    frame = _read(spark, qdrant_url, qdrant_api_key, collection_name, schema.json(), infer_schema=False, with_vectors=True)
    assert frame.schema == schema
    rows = sorted((r.id, r.vector, r.payload.text, r.payload.source) for r in frame.collect())
    assert rows == sorted(documents)

    misnamed = schema.json().replace('"source"', '"sorce"')
    with pytest.raises(Exception, match=r"'sorce' \(did you mean 'source'\?\).*carry the payload key\(s\)"):
        _read(spark, qdrant_url, qdrant_api_key, collection_name, misnamed, with_vectors=True).collect()
    with pytest.raises(Exception, match=r"'vector' \(a vector: read it with with_vectors=True\)"):
        _read(spark, qdrant_url, qdrant_api_key, collection_name, schema.json()).collect()
    nulls = _read(spark, qdrant_url, qdrant_api_key, collection_name, misnamed, with_vectors=True, missing_columns="null")
    assert {row.payload.sorce for row in nulls.collect()} == {None}


def test_a_misnamed_column_of_the_columns_layout_is_refused(spark, qdrant_url, qdrant_api_key, collection_name):
    _create(qdrant_url, qdrant_api_key, collection_name)
    write_qdrant_points(
        [{"id": n, "vector": v, "text": t, "source": s} for n, v, t, s in _documents(5)],
        qdrant_url, collection=collection_name, api_key=qdrant_api_key,
    )
    with pytest.raises(Exception, match=r"'txet' \(did you mean 'text'\?\)"):
        _read(spark, qdrant_url, qdrant_api_key, collection_name, "id long, txet string").collect()
    with pytest.raises(Exception, match=r"'payload'.*payload_layout='struct'"):
        _read(spark, qdrant_url, qdrant_api_key, collection_name, "id long, payload string").collect()
    as_text = _read(spark, qdrant_url, qdrant_api_key, collection_name, "id long, payload string", payload_layout="json")
    assert {json.loads(row.payload)["text"] for row in as_text.collect()} == {f"doc {n}" for n in range(1, 6)}


def test_explicit_layouts_refuse_schemas_that_cannot_hold_them(spark, qdrant_url, qdrant_api_key, collection_name):
    _create(qdrant_url, qdrant_api_key, collection_name)
    with pytest.raises(Exception, match=r"payload_layout='struct' reads the payload into one 'payload' column"):
        _read(spark, qdrant_url, qdrant_api_key, collection_name, "id long, text string", payload_layout="struct").collect()
    with pytest.raises(Exception, match=r"also has \['text'\]"):
        schema = "id long, payload struct<a: string>, text string"
        _read(spark, qdrant_url, qdrant_api_key, collection_name, schema, payload_layout="struct").collect()


def test_filters_on_payload_struct_fields_stay_with_spark(spark, qdrant_url, qdrant_api_key, collection_name) -> None:
    from pyspark.sql.datasource import EqualTo

    from dagster_qdrant.spark.datasource import QdrantDataSource

    _create(qdrant_url, qdrant_api_key, collection_name)
    write_qdrant_points([{"id": 1, "vector": [1.0, 0, 0, 0], "text": "a"}], qdrant_url, collection=collection_name,
                        api_key=qdrant_api_key)
    options = {"endpoint": qdrant_url, "collection": collection_name, "payload_layout": "struct"}
    if qdrant_api_key:
        options["api_key"] = qdrant_api_key
    reader = QdrantDataSource(options).reader(StructType.fromDDL("id long, payload struct<text: string>"))
    on_payload = EqualTo(("payload", "text"), "a")
    assert reader.push([on_payload, EqualTo(("id",), 1)]) == [on_payload]
    assert reader.pushed == [{"has_id": [1]}]


# ---------------------------------------------------------------------------------------------------
# Option names
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, said",
    [
        ("spark.fuse.qdrant.config", r"spark-fuse's key: use QDRANT_CONFIG_OPTION \('qdrant.config'\)"),
        ("spark.fuse.qdrant.schema", r"spark-fuse's key: use QDRANT_SCHEMA_OPTION \('qdrant.schema'\)"),
        ("page_sise", r"'page_sise' \(did you mean 'page_size'\?"),
        ("qdrant.confg", r"did you mean 'qdrant.config'"),
        ("spark.qdrant.limit", r"'spark.qdrant.limit'"),
    ],
)
def test_unknown_option_keys_are_refused_with_the_nearest_known_key(key, said) -> None:
    options = {"endpoint": "http://h:6333", "collection": "c", key: "{}"}
    for direction in (ReadOptions, WriteOptions):
        with pytest.raises(QdrantConfigError, match=said):
            direction.from_spark_options(options)


def test_sparks_own_option_keys_stay_accepted() -> None:
    options = ReadOptions.from_spark_options({"endpoint": "http://h:6333", "path": "docs", "checkpointLocation": "/tmp/x"})
    assert options.collection == "docs"


def test_a_spark_fuse_config_key_fails_the_read_with_its_replacement(spark, qdrant_url, collection_name) -> None:
    config = json.dumps(build_qdrant_config(qdrant_url, collection_name))
    with pytest.raises(Exception, match=r"use QDRANT_CONFIG_OPTION \('qdrant.config'\)") as raised:
        spark.read.format(QDRANT_FORMAT).option("spark.fuse.qdrant.config", config).load()
    assert "Option 'endpoint' is required" not in str(raised.value)


# ---------------------------------------------------------------------------------------------------
# spark-fuse itself (skipped when it is not installed)
# ---------------------------------------------------------------------------------------------------


def _spark_fuse():
    return pytest.importorskip(
        "spark_fuse.io.qdrant",
        reason="spark-fuse is not installed (pip install --no-deps spark-fuse==1.2.0; its declared "
        "dependencies pull in torch, so it is not in the test extra)",
    )


def _as_float32(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """spark-fuse reads vectors as doubles of Qdrant's float32 values, we as float: compare as float32."""
    return sorted(
        ({**row, "vector": np.asarray(row["vector"], dtype=np.float32).tolist()} for row in rows),
        key=lambda row: row["id"],
    )


def _spark_fuse_read(spark, fuse, url: str, key: str | None, collection: str) -> list[dict[str, Any]]:
    fuse.register_qdrant_data_source(spark)
    config = fuse.build_qdrant_config(spark, endpoint=url, collection=collection, with_vectors=True, api_key=key)
    frame = spark.read.format(fuse.QDRANT_FORMAT).option(fuse.QDRANT_CONFIG_OPTION, json.dumps(config)).load()
    return _as_float32([row.asDict(recursive=True) for row in frame.collect()])


def _our_struct_read(spark, url: str, key: str | None, collection: str) -> list[dict[str, Any]]:
    frame = _read(spark, url, key, collection, with_vectors=True, payload_layout="struct")
    return _as_float32([row.asDict(recursive=True) for row in frame.collect()])


def test_we_read_what_spark_fuse_wrote_as_spark_fuse_reads_it(spark, qdrant_url, qdrant_api_key, collection_name):
    fuse = _spark_fuse()
    _create(qdrant_url, qdrant_api_key, collection_name)
    documents = _documents(40, seed=13)
    records = [{"id": n, "vector": v, "text": t, "source": s, "rank": n * 3} for n, v, t, s in documents]
    assert fuse.write_qdrant_points(records, qdrant_url, collection=collection_name, api_key=qdrant_api_key) == 40

    theirs = _spark_fuse_read(spark, fuse, qdrant_url, qdrant_api_key, collection_name)
    ours = _our_struct_read(spark, qdrant_url, qdrant_api_key, collection_name)
    assert ours == theirs
    assert len(ours) == 40


def test_spark_fuse_reads_what_we_wrote_as_we_read_it(spark, qdrant_url, qdrant_api_key, collection_name):
    fuse = _spark_fuse()
    _create(qdrant_url, qdrant_api_key, collection_name)
    documents = _documents(40, seed=17)
    df = spark.createDataFrame(documents, "id long, embedding array<float>, text string, source string")
    config = build_qdrant_write_config(qdrant_url, collection_name, vector_field="embedding", api_key=qdrant_api_key)
    df.write.format(QDRANT_FORMAT).option(QDRANT_CONFIG_OPTION, json.dumps(config)).mode("append").save()

    theirs = _spark_fuse_read(spark, fuse, qdrant_url, qdrant_api_key, collection_name)
    ours = _our_struct_read(spark, qdrant_url, qdrant_api_key, collection_name)
    assert ours == theirs
    assert [(r["id"], r["payload"]["text"]) for r in ours] == [(n, t) for n, _, t, _ in documents]
