"""df.write.format("qdrant"): what Spark writes, the reader gives back, with the same types."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pyarrow as pa
import pytest
import requests
from pyspark.sql import Row
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from dagster_qdrant.spark.datasource import QdrantArrowWriter, QdrantCommitMessage
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions, WriteOptions

UTC = dt.timezone.utc

DOCS_SCHEMA = StructType(
    [
        StructField("id", LongType(), False),
        StructField("title", StringType()),
        StructField("score", DoubleType()),
        StructField("pages", IntegerType()),
        StructField("draft", BooleanType()),
        StructField("tags", ArrayType(StringType())),
        StructField("author", StructType([StructField("name", StringType()), StructField("age", LongType())])),
        StructField("published", TimestampType()),
        StructField("day", DateType()),
        StructField("vector", ArrayType(FloatType(), containsNull=False)),
    ]
)


def _docs(spark, count: int = 12):
    rows = [
        (
            i,
            f"doc {i}",
            i / 4,
            i * 10,
            i % 2 == 0,
            [f"t{i}", "all"],
            {"name": f"n{i}", "age": 20 + i},
            dt.datetime(2024, 1, 1, 12, 0, i, 250000, tzinfo=UTC),
            dt.date(2024, 2, 1 + i),
            [float(i), 0.5, -1.25],
        )
        for i in range(count)
    ]
    return spark.createDataFrame(rows, DOCS_SCHEMA)


def _config(qdrant_url: str, api_key: str | None, collection: str, **options) -> str:
    config = {"endpoint": qdrant_url, "collection": collection, **options}
    if options.get("create_collection"):
        config["distance"] = "Dot"  # Cosine collections store normalised vectors: Dot keeps them as written
    if api_key:
        config["api_key"] = api_key
    return json.dumps(config)


def test_a_written_dataframe_reads_back_equal_with_its_schema(spark, qdrant_url, qdrant_api_key, collection_name) -> None:
    df = _docs(spark)
    (
        df.write.format("qdrant")
        .option("qdrant.config", _config(qdrant_url, qdrant_api_key, collection_name, create_collection=True))
        .mode("append")
        .save()
    )
    read = (
        spark.read.format("qdrant")
        .schema(DOCS_SCHEMA)
        .option("qdrant.config", _config(qdrant_url, qdrant_api_key, collection_name, with_vectors=True, infer_schema=False))
        .load()
    )
    assert read.schema == DOCS_SCHEMA
    assert sorted(read.collect()) == sorted(df.collect())


def test_inferred_schema_of_written_data_is_typed(spark, qdrant_url, qdrant_api_key, collection_name) -> None:
    _docs(spark, 4).write.format("qdrant").option(
        "qdrant.config", _config(qdrant_url, qdrant_api_key, collection_name, create_collection=True)
    ).mode("append").save()
    read = spark.read.format("qdrant").option(
        "qdrant.config", _config(qdrant_url, qdrant_api_key, collection_name, with_vectors=True)
    ).load()
    types = {field.name: field.dataType.simpleString() for field in read.schema.fields}
    assert types == {
        "id": "bigint",
        "author": "struct<age:bigint,name:string>",
        "day": "string",  # RFC 3339 text on the wire: an explicit schema reads it as a date
        "draft": "boolean",
        "pages": "bigint",
        "published": "string",
        "score": "double",
        "tags": "array<string>",
        "title": "string",
        "vector": "array<float>",
    }
    row = read.where("id = 3").collect()[0]
    assert row.author == Row(age=23, name="n3") and row.vector == [3.0, 0.5, -1.25]
    assert dt.datetime.fromisoformat(row.published) == dt.datetime(2024, 1, 1, 12, 0, 3, 250000, tzinfo=UTC)


def test_named_dense_and_sparse_vectors_round_trip_with_uuid_ids(spark, qdrant_url, qdrant_api_key, collection_name) -> None:
    schema = StructType(
        [
            StructField("id", StringType(), False),
            StructField("title", StringType()),
            StructField("image", ArrayType(FloatType(), containsNull=False)),
            StructField(
                "keywords",
                StructType(
                    [
                        StructField("indices", ArrayType(IntegerType(), containsNull=False), False),
                        StructField("values", ArrayType(FloatType(), containsNull=False), False),
                    ]
                ),
            ),
        ]
    )
    rows = [
        (str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))), f"t{i}", [float(i), 1.0], {"indices": [i, 100 + i], "values": [0.5, 1.5]})
        for i in range(6)
    ]
    df = spark.createDataFrame(rows, schema)
    (
        df.write.format("qdrant")
        .option("endpoint", qdrant_url)
        .option("collection", collection_name)
        .option("vector_fields", "image")
        .option("sparse_vector_fields", "keywords")
        .option("create_collection", "true")
        .option("distance", "Euclid")
        .mode("append")
        .save()
    )
    read = (
        spark.read.format("qdrant")
        .option("endpoint", qdrant_url)
        .option("collection", collection_name)
        .option("with_vectors", "true")
        .load()
    )
    assert read.schema.fieldNames() == ["id", "title", "image", "keywords"]
    assert read.schema["keywords"].dataType == schema["keywords"].dataType
    assert sorted(read.collect()) == sorted(df.collect())
    only_image = (
        spark.read.format("qdrant")
        .option("endpoint", qdrant_url)
        .option("with_vectors", "image")
        .load(collection_name)
    )
    assert only_image.columns == ["id", "title", "image"]
    info = QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key)).collection_info(collection_name)
    assert info["config"]["params"]["vectors"]["image"]["distance"] == "Euclid"


def test_overwrite_replaces_every_point_and_append_upserts(spark, qdrant_url, qdrant_api_key, collection_name) -> None:
    config = _config(
        qdrant_url, qdrant_api_key, collection_name, create_collection=True, batch_size=3, max_in_flight=2,
        max_batch_bytes=4096, wait=True, payload_format="points", write_method="post", timeout=20,
        max_retries=1, backoff_factor=0.1, headers={"x-client": "spark-tests"},
    )
    _docs(spark, 10).write.format("qdrant").option("qdrant.config", config).mode("append").save()
    smaller = _docs(spark, 10).where("id >= 7")
    smaller.write.format("qdrant").option("qdrant.config", config).mode("overwrite").save()
    reader = spark.read.format("qdrant").option("qdrant.config", _config(qdrant_url, qdrant_api_key, collection_name, num_partitions=2))
    assert sorted(row.id for row in reader.load().select("id").collect()) == [7, 8, 9]
    again = _docs(spark, 10).where("id <= 7")
    again.write.format("qdrant").option("qdrant.config", config).mode("append").save()
    assert sorted(row.id for row in reader.load().select("id").collect()) == list(range(10))


def test_each_task_reports_the_points_it_wrote(qdrant_url, qdrant_api_key, collection_name) -> None:
    options = WriteOptions(
        endpoint=qdrant_url,
        api_key=qdrant_api_key,
        collection=collection_name,
        create_collection=True,
        batch_size=7,
        max_in_flight=2,
        wait=True,
        payload_format="batch",
        write_method="put",
        max_batch_bytes=64 * 1024,
        timeout=10,
        max_retries=2,
        backoff_factor=0.1,
        headers={"x-request-source": "tests"},
    )
    batch = pa.RecordBatch.from_pydict(
        {"id": list(range(20)), "name": [f"p{i}" for i in range(20)], "vector": [[1.0, float(i)] for i in range(20)]}
    )
    writer = QdrantArrowWriter(options)
    # two tasks on disjoint rows, as Spark runs them
    first = writer.write(iter([batch.slice(0, 7), batch.slice(7, 5)]))
    second = writer.write(iter([batch.slice(12)]))
    assert isinstance(first, QdrantCommitMessage) and isinstance(second, QdrantCommitMessage)
    assert (first.points_written, second.points_written) == (12, 8) and first.requests >= 2
    writer.commit([first, second])
    held = requests.post(f"{qdrant_url}/collections/{collection_name}/points/count", json={"exact": True},
                         headers={"api-key": qdrant_api_key} if qdrant_api_key else {}).json()["result"]["count"]
    assert writer.points_written == 20 == held


def test_write_options_choose_columns_ids_and_payload(spark, qdrant_url, qdrant_api_key, collection_name) -> None:
    rows = [(f"k{i}", 100 + i, [1.0, float(i)], f"title {i}", i * 3) for i in range(5)]
    df = spark.createDataFrame(rows, "key string, doc_id long, embedding array<float>, title string, secret long")
    (
        df.write.format("qdrant")
        .option("endpoint", qdrant_url)
        .option("collection", collection_name)
        .option("id_field", "doc_id")
        .option("vector_field", "embedding")
        .option("payload_fields", "title,key")
        .option("create_collection", "true")
        .option("verify", "true")
        .option("distance", "Dot")
        .mode("append")
        .save()
    )
    read = spark.read.format("qdrant").option("endpoint", qdrant_url).option("collection", collection_name).load()
    assert read.columns == ["id", "key", "title"]
    assert sorted(tuple(r) for r in read.collect()) == [(100 + i, f"k{i}", f"title {i}") for i in range(5)]


def test_writing_to_a_missing_collection_without_create_collection_is_a_clear_error(spark, qdrant_url, collection_name) -> None:
    df = spark.createDataFrame([(1, [1.0, 2.0])], "id long, vector array<float>")
    with pytest.raises(Exception, match=f"(?s){collection_name}.*create_collection"):
        df.write.format("qdrant").option("endpoint", qdrant_url).option("collection", collection_name).mode("append").save()


def test_an_unsupported_column_type_is_a_clear_error(spark, qdrant_url, collection_name) -> None:
    df = spark.createDataFrame([(1, [1.0, 2.0], bytearray(b"x"))], "id long, vector array<float>, blob binary")
    with pytest.raises(Exception, match="(?s)blob.*binary"):
        (
            df.write.format("qdrant")
            .option("endpoint", qdrant_url)
            .option("collection", collection_name)
            .option("create_collection", "true")
            .mode("append")
            .save()
        )
