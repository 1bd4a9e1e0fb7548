"""Filter pushdown: which Spark filters become Qdrant conditions, and that Qdrant then does the filtering."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F
from pyspark.sql.datasource import (
    EqualNullSafe,
    EqualTo,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNotNull,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Not,
    StringContains,
    StringEndsWith,
    StringStartsWith,
)
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    FloatType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from dagster_qdrant.spark.pushdown import FilterTranslator, combine_filters, pushdown_is_scan_scoped
from dagster_qdrant.spark.schema import MIXED_METADATA_KEY

SCHEMA = StructType(
    [
        StructField("id", StringType(), False),
        StructField("city", StringType()),
        StructField("year", LongType()),
        StructField("price", DoubleType()),
        StructField("ratio", FloatType()),
        StructField("sold", BooleanType()),
        StructField("tags", ArrayType(StringType())),
        StructField("when", TimestampType()),
        StructField("mixed", StringType(), metadata={MIXED_METADATA_KEY: True}),
        StructField("address", StructType([StructField("zip", StringType())])),
        StructField("vector", ArrayType(FloatType())),
    ]
)
UUID = "6c1b0f6e-3f5a-4c53-9d3c-1a2b3c4d5e6f"


@pytest.fixture
def translator() -> FilterTranslator:
    return FilterTranslator(SCHEMA, ["vector"], prefix_match=True)


@pytest.mark.parametrize(
    ("spark_filter", "condition"),
    [
        (EqualTo(("city",), "Paris"), {"key": "city", "match": {"value": "Paris"}}),
        (EqualTo(("year",), 2020), {"key": "year", "match": {"value": 2020}}),
        (EqualTo(("sold",), True), {"key": "sold", "match": {"value": True}}),
        (EqualTo(("price",), 2.5), {"key": "price", "range": {"gte": 2.5, "lte": 2.5}}),
        (EqualNullSafe(("city",), "Paris"), {"key": "city", "match": {"value": "Paris"}}),
        (EqualNullSafe(("city",), None), {"is_empty": {"key": "city"}}),
        (In(("city",), ("Paris", "Rome")), {"key": "city", "match": {"any": ["Paris", "Rome"]}}),
        (In(("year",), (1, 2)), {"key": "year", "match": {"any": [1, 2]}}),
        (LessThan(("year",), 5), {"key": "year", "range": {"lt": 5}}),
        (LessThanOrEqual(("price",), 5.5), {"key": "price", "range": {"lte": 5.5}}),
        (GreaterThan(("price",), 1), {"key": "price", "range": {"gt": 1}}),
        (GreaterThanOrEqual(("year",), 3), {"key": "year", "range": {"gte": 3}}),
        (GreaterThan(("year",), 2**53 - 1), {"key": "year", "range": {"gt": 2**53 - 1}}),
        (LessThan(("year",), -(2**53) + 1), {"key": "year", "range": {"lt": -(2**53) + 1}}),
        (EqualTo(("year",), 2**63 - 1), {"key": "year", "match": {"value": 2**63 - 1}}),  # match: integers
        (IsNull(("city",)), {"is_empty": {"key": "city"}}),
        (IsNotNull(("city",)), {"must_not": [{"is_empty": {"key": "city"}}]}),
        (StringStartsWith(("city",), "Pa"), {"key": "city", "match": {"prefix": "Pa"}}),
        (EqualTo(("address", "zip"), "75001"), {"key": "address.zip", "match": {"value": "75001"}}),
        (EqualTo(("id",), "7"), {"has_id": [7]}),
        (EqualTo(("id",), UUID), {"has_id": [UUID]}),
        (In(("id",), ("1", "2", UUID)), {"has_id": [1, 2, UUID]}),
        (Not(EqualTo(("id",), "7")), {"must_not": [{"has_id": [7]}]}),
        (
            Not(EqualTo(("city",), "Paris")),
            {"must": [{"must_not": [{"is_empty": {"key": "city"}}]}], "must_not": [{"key": "city", "match": {"value": "Paris"}}]},
        ),
        (Not(IsNull(("city",))), {"must_not": [{"is_empty": {"key": "city"}}]}),
        (Not(Not(EqualTo(("year",), 1))), {"key": "year", "match": {"value": 1}}),
    ],
)
def test_filters_qdrant_answers_exactly_become_conditions(translator, spark_filter, condition) -> None:
    assert translator.translate(spark_filter) == condition


@pytest.mark.parametrize(
    "spark_filter",
    [
        LessThan(("city",), "M"),  # Qdrant ranges are numeric: no string ordering
        StringEndsWith(("city",), "is"),
        StringContains(("city",), "ar"),  # Qdrant text match is by token, not substring
        EqualTo(("ratio",), 0.1),  # float32 in Spark, double in Qdrant
        EqualTo(("tags",), ["a"]),
        IsNull(("tags",)),  # is_empty is also true for [], which Spark keeps as an empty array
        EqualTo(("when",), "2024-01-01"),
        EqualTo(("mixed",), "5"),  # the text of a number is not what Qdrant stores
        EqualTo(("vector",), [1.0]),
        EqualTo(("id",), "07"),  # not how the id column shows id 7
        EqualTo(("id",), UUID.upper()),
        GreaterThan(("id",), "5"),
        GreaterThan(("year",), 2**60),  # beyond what a double range holds exactly
        GreaterThan(("year",), 2**53),  # Qdrant reads 2^53 + 1 as 2^53, which is not > 2^53
        LessThanOrEqual(("year",), -(2**53)),
        GreaterThan(("year",), 2.5),  # Qdrant's integer index truncates the bound to 2
        GreaterThan(("price",), 123456789.12345679),  # Qdrant's JSON parser reads this an ULP off
        EqualTo(("price",), 123456789.12345679),
        GreaterThan(("price",), 2**53 + 1),  # an integer literal no double holds
        In(("city",), ("Paris", None)),
        EqualTo(("missing",), 1),
        Not(StringEndsWith(("city",), "x")),
    ],
)
def test_filters_without_an_exact_condition_stay_in_spark(translator, spark_filter) -> None:
    assert translator.translate(spark_filter) is None


def test_pushdown_waits_for_a_spark_that_keeps_the_read_plan_per_scan() -> None:
    assert not pushdown_is_scan_scoped("4.1.0") and not pushdown_is_scan_scoped("4.3.0")
    assert pushdown_is_scan_scoped("5.0.0") and pushdown_is_scan_scoped("5.1.0.dev0")


def test_the_reader_pushes_nothing_where_spark_shares_the_read_plan(spark, qdrant_url, collection_name) -> None:
    from dagster_qdrant.spark.datasource import QdrantDataSource

    _write_cities(spark, qdrant_url, collection_name)
    source = QdrantDataSource({"endpoint": qdrant_url, "collection": collection_name})
    reader = source.reader(source.schema())
    filters = [EqualTo(("city",), "Rome")]
    kept = reader.pushFilters(filters)
    if pushdown_is_scan_scoped():
        assert kept == [] and reader.query_filter is not None
    else:
        assert kept == filters and kept[0] is filters[0] and reader.query_filter is None


def test_keys_are_filtered_only_through_a_payload_index_of_their_own_type() -> None:
    indexes = {
        "price": {"data_type": "integer"},  # would truncate 2.5 to 2
        "city": {"data_type": "text"},  # matches tokens
        "year": {"data_type": "integer", "params": {"type": "integer", "lookup": True, "range": True}},
        "sold": {"data_type": "bool"},
    }
    indexed = FilterTranslator(SCHEMA, ["vector"], prefix_match=True, payload_indexes=indexes)
    assert indexed.translate(GreaterThan(("price",), 2.5)) is None
    assert indexed.translate(EqualTo(("city",), "Paris")) is None
    assert indexed.translate(IsNull(("city",))) is None
    assert indexed.translate(GreaterThan(("year",), 3)) == {"key": "year", "range": {"gt": 3}}
    assert indexed.translate(EqualTo(("sold",), True)) == {"key": "sold", "match": {"value": True}}
    no_range = {"year": {"data_type": "integer", "params": {"lookup": True, "range": False}}}
    assert FilterTranslator(SCHEMA, [], prefix_match=True, payload_indexes=no_range).translate(
        GreaterThan(("year",), 3)
    ) is None


def test_prefix_match_is_pushed_only_when_the_server_has_it() -> None:
    older = FilterTranslator(SCHEMA, ["vector"], prefix_match=False)
    assert older.translate(StringStartsWith(("city",), "Pa")) is None


def test_split_keeps_the_filters_spark_must_still_apply(translator) -> None:
    pushed_filter, kept_filter = EqualTo(("year",), 1), StringEndsWith(("city",), "s")
    pushed, kept = translator.split([pushed_filter, kept_filter])
    assert pushed == [{"key": "year", "match": {"value": 1}}]
    assert kept == [kept_filter] and kept[0] is kept_filter


def test_pushed_conditions_are_and_ed_with_the_users_filter() -> None:
    user = {"should": [{"key": "a", "match": {"value": 1}}]}
    condition = {"key": "b", "match": {"value": 2}}
    assert combine_filters(user, conditions=[condition]) == {"must": [user, condition]}
    assert combine_filters(user) == user
    assert combine_filters(None) is None
    assert combine_filters(None, conditions=[condition]) == {"must": [condition]}


# --- end to end: the filter reaches Qdrant ---------------------------------------------------------


def _write_cities(spark, qdrant_url: str, collection: str) -> None:
    rows = [
        (i, city, 2000 + i, float(i) / 2, None if i % 5 == 0 else f"n{i}", [float(i), 1.0])
        for i, city in enumerate(["Paris", "Rome", "Parma", "Oslo"] * 10)
    ]
    df = spark.createDataFrame(rows, "id long, city string, year long, price double, note string, vector array<float>")
    (
        df.write.format("qdrant")
        .option("endpoint", qdrant_url)
        .option("collection", collection)
        .option("create_collection", "true")
        .option("distance", "Dot")
        .mode("append")
        .save()
    )


def _reader_for(spark, qdrant_url: str, collection: str):
    return spark.read.format("qdrant").option(
        "qdrant.config", json.dumps({"endpoint": qdrant_url, "collection": collection})
    )


def test_pushed_filters_are_sent_to_qdrant_and_results_match_spark(spark, qdrant_url, collection_name) -> None:
    _write_cities(spark, qdrant_url, collection_name)
    df = _reader_for(spark, qdrant_url, collection_name).load()
    pushed = (F.col("city") == "Paris") & (F.col("year") >= 2010) & F.col("note").isNotNull()
    rows = df.where(pushed & F.col("note").endswith("2")).collect()  # endswith stays in Spark
    expected = [i for i in range(40) if i % 4 == 0 and 2000 + i >= 2010 and i % 5 != 0 and i % 10 == 2]
    assert sorted(row.id for row in rows) == expected == [12, 32]
    prefix = df.where(F.col("city").startswith("Par")).select("city").collect()
    assert sorted({row.city for row in prefix}) == ["Paris", "Parma"]
    not_equal = df.where(F.col("note") != "n1").count()
    assert not_equal == 40 - 8 - 1  # rows with a null note are not "!= n1" in Spark
    ids = df.where(F.col("id").isin(3, 7, 99)).select("id").collect()
    assert sorted(row.id for row in ids) == [3, 7]


def test_the_reader_sends_the_pushed_conditions_with_every_scroll(qdrant_url, collection_name, spark) -> None:
    """Pushdown is visible in the request: a reader given the filters scrolls only matching points."""
    from dagster_qdrant.spark.datasource import QdrantDataSource

    _write_cities(spark, qdrant_url, collection_name)
    source = QdrantDataSource({"endpoint": qdrant_url, "collection": collection_name})
    reader = source.reader(source.schema())
    kept = reader.push([EqualTo(("city",), "Rome"), StringEndsWith(("city",), "e")])
    assert [type(f) for f in kept] == [StringEndsWith]
    assert reader.query_filter == {"must": [{"key": "city", "match": {"value": "Rome"}}]}
    points = [row for partition in reader.partitions() for batch in reader.read(partition) for row in batch.to_pylist()]
    assert len(points) == 10 and {row["city"] for row in points} == {"Rome"}
