"""spark.read.format("qdrant"): options, schema inference, Arrow batches and clear errors."""

from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from dagster_qdrant import QDRANT_CONFIG_OPTION, QDRANT_FORMAT, QDRANT_SCHEMA_OPTION
from dagster_qdrant.spark.datasource import QdrantDataSource
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions

CITIES = ["Paris", "Rome", "Oslo", "Lima"]


def _payload(n: int) -> dict:
    payload = {
        "city": CITIES[n % 4],
        "year": 2000 + n,
        "price": n if n % 2 else n + 0.5,  # integers and floats: a double column
        "label": f"L{n}" if n % 3 else n,  # strings and integers: a string column
        "address": {"zip": f"{75000 + n}", "floor": n % 5},
        "tags": [f"t{n % 3}", "all"],
    }
    if n % 5:
        payload["note"] = f"note {n}"
    return payload


@pytest.fixture(scope="module")
def cities(qdrant_url: str, qdrant_api_key: str | None) -> str:
    """A collection of 40 points with integer ids 1..40, written once for every test here."""
    name = f"t_read_cities_{uuid.uuid4().hex[:8]}"
    http = QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key))
    http.create_collection(name, {"vectors": {"size": 2, "distance": "Dot"}})
    points = [{"id": n, "vector": [float(n), 0.5], "payload": _payload(n)} for n in range(1, 41)]
    http.upsert(name, {"points": points}, wait=True)
    return name


def _config(qdrant_url: str, api_key: str | None, collection: str, **options) -> str:
    config = {"endpoint": qdrant_url, "collection": collection, **options}
    if api_key:
        config["api_key"] = api_key
    return json.dumps(config)


def test_config_json_and_per_key_options_read_the_same_typed_columns(spark, qdrant_url, qdrant_api_key, cities) -> None:
    config = _config(
        qdrant_url, qdrant_api_key, cities, with_vectors=True, timeout=20, max_retries=1, backoff_factor=0.1,
        verify=True, headers={"x-client": "spark-tests"}, page_size=16, num_partitions=2,
    )
    by_config = spark.read.format(QDRANT_FORMAT).option(QDRANT_CONFIG_OPTION, config).load()
    per_key = spark.read.format("qdrant").option("endpoint", qdrant_url).option("with_vectors", "true")
    if qdrant_api_key:
        per_key = per_key.option("api_key", qdrant_api_key)
    per_key = per_key.load(cities)
    types = {field.name: field.dataType.simpleString() for field in by_config.schema.fields}
    assert types == {
        "id": "bigint",
        "address": "struct<floor:bigint,zip:string>",
        "city": "string",
        "label": "string",
        "note": "string",
        "price": "double",
        "tags": "array<string>",
        "year": "bigint",
        "vector": "array<float>",
    }
    assert per_key.schema == by_config.schema
    rows = {row.id: row for row in by_config.collect()}
    assert sorted(rows) == list(range(1, 41))
    assert sorted(by_config.collect()) == sorted(per_key.collect())
    assert rows[3].label == "3" and rows[4].label == "L4"
    assert rows[4].price == 4.5 and rows[5].price == 5.0
    assert rows[5].note is None and rows[6].note == "note 6"
    assert rows[7].address.zip == "75007" and rows[7].vector == [7.0, 0.5]


def test_with_payload_and_with_vectors_choose_the_columns(spark, qdrant_url, qdrant_api_key, cities) -> None:
    chosen = spark.read.format("qdrant").option(
        QDRANT_CONFIG_OPTION, _config(qdrant_url, qdrant_api_key, cities, with_payload=["city", "year"])
    ).load()
    assert chosen.columns == ["id", "city", "year"]
    excluded = spark.read.format("qdrant").option(
        QDRANT_CONFIG_OPTION, _config(qdrant_url, qdrant_api_key, cities, with_payload={"exclude": ["label", "tags"]})
    ).load()
    assert excluded.columns == ["id", "address", "city", "note", "price", "year"]
    ids_only = spark.read.format("qdrant").option(
        QDRANT_CONFIG_OPTION, _config(qdrant_url, qdrant_api_key, cities, with_payload=False, with_vectors=True)
    ).load()
    assert ids_only.columns == ["id", "vector"]
    assert ids_only.where("id = 2").collect()[0].vector == [2.0, 0.5]


def test_limit_offset_max_pages_and_page_size_keep_scroll_order_meaning(spark, qdrant_url, qdrant_api_key, cities) -> None:
    def ids(**options) -> list[int]:
        df = spark.read.format("qdrant").option(QDRANT_CONFIG_OPTION, _config(qdrant_url, qdrant_api_key, cities, **options)).load()
        assert df.rdd.getNumPartitions() == 1
        return [row.id for row in df.select("id").collect()]

    assert ids(limit=5, offset=10, num_partitions=4) == [10, 11, 12, 13, 14]
    assert ids(max_pages=2, page_size=3) == [1, 2, 3, 4, 5, 6]


def test_the_filter_option_and_spark_filters_both_apply(spark, qdrant_url, qdrant_api_key, cities) -> None:
    user_filter = {"must": [{"key": "year", "range": {"gte": 2020}}]}
    df = spark.read.format("qdrant").option(
        QDRANT_CONFIG_OPTION, _config(qdrant_url, qdrant_api_key, cities, filter=user_filter)
    ).load()
    rows = df.where((F.col("city") == "Paris") & F.col("note").isNotNull()).select("id").collect()
    assert sorted(row.id for row in rows) == [n for n in range(20, 41) if n % 4 == 0 and n % 5]


def test_an_explicit_schema_in_the_schema_option_reads_only_its_columns(spark, qdrant_url, qdrant_api_key, cities) -> None:
    schema = StructType(
        [StructField("id", StringType(), False), StructField("year", LongType()), StructField("missing", StringType())]
    )
    df = (
        spark.read.format("qdrant")
        .option(
            QDRANT_CONFIG_OPTION,
            _config(qdrant_url, qdrant_api_key, cities, infer_schema=False, missing_columns="null"),
        )
        .option(QDRANT_SCHEMA_OPTION, schema.json())
        .load()
    )
    assert df.schema == schema
    row = df.where("id = '9'").collect()[0]
    assert (row.id, row.year, row.missing) == ("9", 2009, None)


def test_reads_yield_one_arrow_record_batch_per_scroll_page(qdrant_url, qdrant_api_key, cities) -> None:
    options = {"endpoint": qdrant_url, "collection": cities, "page_size": "8", "num_partitions": "1"}
    if qdrant_api_key:
        options["api_key"] = qdrant_api_key
    source = QdrantDataSource(options)
    reader = source.reader(source.schema())
    [partition] = reader.partitions()
    batches = list(reader.read(partition))
    assert all(isinstance(batch, pa.RecordBatch) for batch in batches)
    assert [batch.num_rows for batch in batches] == [8, 8, 8, 8, 8]


def test_infer_schema_false_without_a_schema_is_a_clear_error(spark, qdrant_url, cities) -> None:
    reader = spark.read.format("qdrant").option("endpoint", qdrant_url).option("infer_schema", "false")
    with pytest.raises(Exception, match="infer_schema"):
        reader.load(cities)


def test_reading_a_missing_collection_is_a_clear_error(spark, qdrant_url, collection_name) -> None:
    with pytest.raises(Exception, match=f"Collection '{collection_name}' does not exist"):
        spark.read.format("qdrant").option("endpoint", qdrant_url).load(collection_name)


def test_a_schema_that_does_not_fit_the_points_is_a_clear_error(spark, qdrant_url, cities) -> None:
    df = spark.read.format("qdrant").schema("id long, city long").option("endpoint", qdrant_url).load(cities)
    with pytest.raises(Exception, match="(?s)Column 'city' expects 'bigint' but point .* has '(Paris|Rome|Oslo|Lima)'"):
        df.collect()


def test_a_column_type_json_cannot_fill_is_a_clear_error(spark, qdrant_url, cities) -> None:
    df = spark.read.format("qdrant").schema("id long, year interval day").option("endpoint", qdrant_url).load(cities)
    with pytest.raises(Exception, match="cannot be read from Qdrant JSON"):
        df.collect()


def test_the_api_key_reaches_every_task(spark, tmp_path) -> None:
    from dagster_qdrant.embedded import start_embedded_qdrant

    with start_embedded_qdrant(tmp_path / "secured", api_key="s3cret-key") as server:
        http = QdrantHttp(ConnectionOptions(endpoint=server.url, api_key="s3cret-key"))
        http.create_collection("secured", {"vectors": {"size": 2, "distance": "Dot"}})
        http.upsert("secured", {"points": [{"id": n, "vector": [1.0, 0.0], "payload": {"n": n}} for n in range(6)]})
        reader = spark.read.format("qdrant").option("endpoint", server.url).option("num_partitions", "2")
        df = reader.option("api_key", "s3cret-key").load("secured")
        assert sorted(row.n for row in df.collect()) == list(range(6))
        with pytest.raises(Exception) as refused:
            reader.option("api_key", "wrong").load("secured")
        assert "401" in str(refused.value) and "s3cret-key" not in str(refused.value)
