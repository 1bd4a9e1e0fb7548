"""Schema inference sees the whole collection, and a read never drops what its schema has no room for.

The collections here are generated with a seed and written with qdrant-client, and their keys and types
change late in scroll order (where a sample of the first points never looks): a key only the last quarter
of the points carry, integers that become floats or strings, struct fields and list elements that appear
late. Each read through Spark, with an inferred schema, is compared with the values written, widened by
the README's rules (integers in a double column are those numbers; a column of several kinds holds the
JSON text of the non-strings), which the test applies itself.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from typing import Any

import pytest
from pyspark.sql.types import ArrayType, BooleanType, DoubleType, LongType, StringType, StructField, StructType
from qdrant_client import QdrantClient, models

from dagster_qdrant.spark.points_to_arrow import PointBatchBuilder
from dagster_qdrant.spark.datasource import QdrantDataSource, infer_read_schema
from dagster_qdrant.errors import QdrantConfigError, QdrantSchemaError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ReadOptions
from dagster_qdrant.spark.schema import INFERRED_METADATA_KEY
from dagster_qdrant.spark.schema_findings import READ_AS_NULL, SchemaFindings
from dagster_qdrant.spark.schema_sampling import SLICES_PER_SAMPLE, slice_condition

POINTS = 2000
LATE = 1500
"""Points from this position in scroll order on carry the late keys and types: past the first 1,000."""


def _client(url: str, api_key: str | None) -> QdrantClient:
    return QdrantClient(url=url, api_key=api_key, prefer_grpc=False, timeout=60, check_compatibility=False)


def _payload(position: int, rng: random.Random) -> dict[str, Any]:
    """The payload of the point at ``position`` in scroll order: early and late points differ."""
    late = position >= LATE
    payload: dict[str, Any] = {
        "rank": position,
        "amount": rng.randint(-500, 500) + (rng.choice([0.25, 0.5, 0.75]) if late else 0),
        "code": f"c{rng.randint(0, 99)}" if late else rng.randint(0, 99),
        "meta": {"a": rng.randint(0, 9), **({"b": f"b{rng.randint(0, 9)}"} if late else {})},
        "tags": [rng.randint(0, 9) + (0.5 if late and i == 0 else 0) for i in range(rng.randint(0, 3))],
        "items": [
            {"n": rng.randint(0, 9), **({"label": f"l{position}"} if late else {})} for _ in range(rng.randint(1, 2))
        ],
    }
    if late:
        payload["added_later"] = f"x{rng.randint(0, 999)}"
    if position % 7 == 0:
        payload["code"] = None  # nulls stay nulls
    return payload


EXPECTED_TYPES = {
    "added_later": StringType(),
    "amount": DoubleType(),
    "code": StringType(),
    "items": ArrayType(StructType([StructField("label", StringType()), StructField("n", LongType())])),
    "meta": StructType([StructField("a", LongType()), StructField("b", StringType())]),
    "rank": LongType(),
    "tags": ArrayType(DoubleType()),
}
"""What the README's rules make of ``_payload``'s keys, written out by hand."""


def _expected_row(point_id: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The row a read must return for a written point, by the README's widening rules."""
    code = payload["code"]
    return {
        "id": point_id,
        "added_later": payload.get("added_later"),
        "amount": float(payload["amount"]),
        "code": code if code is None or isinstance(code, str) else json.dumps(code),
        "items": [{"label": item.get("label"), "n": item["n"]} for item in payload["items"]],
        "meta": {"a": payload["meta"]["a"], "b": payload["meta"].get("b")},
        "rank": payload["rank"],
        "tags": [float(tag) for tag in payload["tags"]],
    }


def _ids(scheme: str, rng: random.Random) -> list[Any]:
    """Point ids in scroll order: integers ascending, or UUIDs ascending."""
    if scheme == "int":
        return list(range(1, POINTS + 1))
    return sorted((str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(POINTS)), key=uuid.UUID)


def _write_collection(url: str, api_key: str | None, name: str, scheme: str, seed: int) -> dict[Any, dict]:
    rng = random.Random(seed)
    ids = _ids(scheme, rng)
    payloads = {point_id: _payload(position, rng) for position, point_id in enumerate(ids)}
    client = _client(url, api_key)
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    order = list(ids)
    rng.shuffle(order)  # written in any order: scroll order is the id order
    for start in range(0, POINTS, 500):
        batch = order[start : start + 500]
        client.upsert(
            name,
            [models.PointStruct(id=i, vector=[1.0, 0.5], payload=payloads[i]) for i in batch],
            wait=True,
        )
    return payloads


@pytest.fixture(scope="module", params=["int", "uuid"])
def late_collection(request, qdrant_url: str, qdrant_api_key: str | None) -> tuple[str, dict[Any, dict]]:
    """A collection of 2,000 points whose last 500 (in scroll order) carry new keys and types."""
    name = f"t_late_{request.param}_{uuid.uuid4().hex[:8]}"
    return name, _write_collection(qdrant_url, qdrant_api_key, name, request.param, seed=20240503)


def _options(url: str, api_key: str | None, collection: str, **extra: Any) -> dict[str, str]:
    options = {"endpoint": url, "collection": collection, **{k: str(v) for k, v in extra.items()}}
    if api_key:
        options["api_key"] = api_key
    return options


def _rows(frame) -> dict[Any, dict]:
    return {row["id"]: row.asDict(recursive=True) for row in frame.collect()}


def test_keys_and_types_that_change_after_the_first_thousand_points_read_back_as_written(
    spark, qdrant_url, qdrant_api_key, late_collection
) -> None:
    name, payloads = late_collection
    frame = spark.read.format("qdrant").options(**_options(qdrant_url, qdrant_api_key, name, num_partitions=2)).load()
    types = {field.name: field.dataType for field in frame.schema.fields}
    assert types.pop("id") == (LongType() if isinstance(next(iter(payloads)), int) else StringType())
    assert types == EXPECTED_TYPES
    rows = _rows(frame)
    assert len(rows) == POINTS
    assert rows == {point_id: _expected_row(point_id, payload) for point_id, payload in payloads.items()}


def test_the_default_sample_is_spread_over_the_collection_and_about_its_size(
    qdrant_url, qdrant_api_key, late_collection
) -> None:
    name, _ = late_collection
    schema = infer_read_schema(ReadOptions(endpoint=qdrant_url, api_key=qdrant_api_key, collection=name))
    sampled = schema["id"].metadata[INFERRED_METADATA_KEY]["sampled"]
    assert 1000 * 0.85 <= sampled <= 1000 * (1 + 1 / SLICES_PER_SAMPLE) * 1.15
    small = infer_read_schema(
        ReadOptions(endpoint=qdrant_url, api_key=qdrant_api_key, collection=name, sample_size=100)
    )
    assert 70 <= small["id"].metadata[INFERRED_METADATA_KEY]["sampled"] <= 140
    assert "added_later" in small.fieldNames()  # a hundred points, spread: some are among the last 500


def test_sample_size_all_reads_every_point_and_sees_a_key_only_one_point_has(
    spark, qdrant_url, qdrant_api_key, collection_name
) -> None:
    client = _client(qdrant_url, qdrant_api_key)
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    rng = random.Random(7)
    payloads = {i: {"n": rng.randint(0, 100)} for i in range(1, 1501)}
    payloads[rng.randint(1, 1500)]["rare"] = "only here"
    client.upsert(collection_name, [models.PointStruct(id=i, vector=[1.0, 0.0], payload=p) for i, p in payloads.items()])
    options = _options(qdrant_url, qdrant_api_key, collection_name, sample_size="all")
    frame = spark.read.format("qdrant").options(**options).load()
    assert frame.schema["id"].metadata[INFERRED_METADATA_KEY] == {"sampled": 1500, "sample_size": "all"}
    rows = _rows(frame)
    assert rows == {i: {"id": i, "n": p["n"], "rare": p.get("rare")} for i, p in payloads.items()}


def test_on_servers_without_slices_the_sample_is_a_uniform_draw_of_the_ids(
    monkeypatch, qdrant_url, qdrant_api_key, late_collection
) -> None:
    name, payloads = late_collection
    monkeypatch.setattr(QdrantHttp, "server_version", lambda self: (1, 18, 0))
    schema = infer_read_schema(ReadOptions(endpoint=qdrant_url, api_key=qdrant_api_key, collection=name))
    assert {field.name: field.dataType for field in schema.fields if field.name != "id"} == EXPECTED_TYPES
    assert schema["id"].metadata[INFERRED_METADATA_KEY]["sampled"] == 1000


def test_a_read_bounded_by_limit_samples_only_the_points_it_returns(qdrant_url, qdrant_api_key, late_collection) -> None:
    name, payloads = late_collection
    first = list(payloads)[:LATE]  # ids in scroll order: the limit stops before the late points
    options = ReadOptions(endpoint=qdrant_url, api_key=qdrant_api_key, collection=name, limit=LATE, sample_size=200)
    schema = infer_read_schema(options)
    assert "added_later" not in schema.fieldNames() and schema["code"].dataType == LongType()
    assert schema["id"].metadata[INFERRED_METADATA_KEY]["sampled"] == 200
    bounded = ReadOptions(endpoint=qdrant_url, api_key=qdrant_api_key, collection=name, offset=first[1200], sample_size=200)
    assert "added_later" in infer_read_schema(bounded).fieldNames()  # from offset on, late points are 500 of 800


# ---------------------------------------------------------------------------------------------------
# What the schema has no room for: points written after the schema was inferred
# ---------------------------------------------------------------------------------------------------


def _grown_collection(url: str, api_key: str | None, name: str) -> dict[int, dict]:
    """100 points with integer ``score``; the caller infers, then ``_grow`` adds points the schema lacks."""
    client = _client(url, api_key)
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    payloads = {i: {"score": i, "meta": {"a": i}} for i in range(1, 101)}
    client.upsert(name, [models.PointStruct(id=i, vector=[1.0, 0.0], payload=p) for i, p in payloads.items()])
    return payloads


def _grow(url: str, api_key: str | None, name: str) -> dict[int, dict]:
    """30 points with a new key, a string and a fraction in the integer column, a new struct field."""
    late = {}
    for i in range(101, 131):
        late[i] = {"score": f"s{i}" if i % 2 else i + 0.5, "surprise": i, "meta": {"a": i, "new": True}}
    _client(url, api_key).upsert(
        name, [models.PointStruct(id=i, vector=[1.0, 0.0], payload=p) for i, p in late.items()], wait=True
    )
    return late


def test_keys_and_values_outside_an_inferred_schema_are_one_warning_per_partition(
    caplog, qdrant_url, qdrant_api_key, collection_name
) -> None:
    _grown_collection(qdrant_url, qdrant_api_key, collection_name)
    source = QdrantDataSource(_options(qdrant_url, qdrant_api_key, collection_name, num_partitions=2, page_size=16))
    reader = source.reader(source.schema())
    _grow(qdrant_url, qdrant_api_key, collection_name)
    with caplog.at_level(logging.WARNING, logger="dagster_qdrant.spark.schema_findings"):
        tables = [list(reader.read(partition)) for partition in reader.partitions()]
    warnings = [record.getMessage() for record in caplog.records if record.name == "dagster_qdrant.spark.schema_findings"]
    assert len(warnings) == len(tables) == 2
    scores = {}
    for batches in tables:
        for batch in batches:
            scores.update(zip(batch.column("id").to_pylist(), batch.column("score").to_pylist()))
    assert len(scores) == 130
    assert all(scores[i] == i for i in range(1, 101)) and all(scores[i] is None for i in range(101, 131))
    surprise = sum(int(message.split("'surprise' in ")[1].split(" ")[0]) for message in warnings)
    not_long = sum(int(message.split(" value(s) of 'score'")[0].rsplit(" ", 1)[-1]) for message in warnings)
    new_field = sum(int(message.split("'meta.new' in ")[1].split(" ")[0]) for message in warnings)
    assert (surprise, not_long, new_field) == (30, 30, 30)
    assert all("sample_size" in message and "read as null" in message for message in warnings)


def test_schema_mismatch_error_fails_the_read_naming_the_key_and_the_fix(
    spark, qdrant_url, qdrant_api_key, collection_name
) -> None:
    _grown_collection(qdrant_url, qdrant_api_key, collection_name)
    options = _options(qdrant_url, qdrant_api_key, collection_name, schema_mismatch="error")
    frame = spark.read.format("qdrant").options(**options).load()
    assert frame.count() == 100
    _grow(qdrant_url, qdrant_api_key, collection_name)
    with pytest.raises(Exception, match="(?s)payload key 'surprise' in .*sample_size"):
        frame.collect()


def test_warn_mode_through_spark_reads_every_point_and_only_the_unfitting_values_as_null(
    spark, qdrant_url, qdrant_api_key, collection_name
) -> None:
    early = _grown_collection(qdrant_url, qdrant_api_key, collection_name)
    frame = spark.read.format("qdrant").options(**_options(qdrant_url, qdrant_api_key, collection_name)).load()
    late = _grow(qdrant_url, qdrant_api_key, collection_name)
    rows = _rows(frame)
    assert rows == {
        **{i: {"id": i, "score": p["score"], "meta": {"a": i}} for i, p in early.items()},
        **{i: {"id": i, "score": None, "meta": {"a": i}} for i in late},
    }


def test_an_id_the_inferred_schema_cannot_hold_fails_the_read_with_the_sample_size_fix(
    qdrant_url, qdrant_api_key, collection_name
) -> None:
    _grown_collection(qdrant_url, qdrant_api_key, collection_name)
    source = QdrantDataSource(_options(qdrant_url, qdrant_api_key, collection_name, num_partitions=1))
    reader = source.reader(source.schema())
    late_id = str(uuid.UUID(int=5, version=4))
    _client(qdrant_url, qdrant_api_key).upsert(
        collection_name, [models.PointStruct(id=late_id, vector=[1.0, 0.0], payload={"score": 1})]
    )
    with pytest.raises(QdrantSchemaError, match=f"(?s)Point id expects 'bigint' but point '{late_id}'.*sample_size"):
        list(reader.read(reader.partitions()[0]))


def test_a_schema_the_user_gives_is_a_choice_its_other_keys_are_not_reported(
    caplog, qdrant_url, qdrant_api_key, collection_name
) -> None:
    _grown_collection(qdrant_url, qdrant_api_key, collection_name)
    _grow(qdrant_url, qdrant_api_key, collection_name)
    source = QdrantDataSource(_options(qdrant_url, qdrant_api_key, collection_name, num_partitions=1))
    reader = source.reader(StructType([StructField("id", LongType(), False)]))
    assert reader.scroll_request()["with_payload"] is False  # nothing fetched that the schema has no column for
    with caplog.at_level(logging.WARNING):
        [batch] = list(reader.read(reader.partitions()[0]))
    assert batch.num_rows == 130 and not caplog.records


# ---------------------------------------------------------------------------------------------------
# The options
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "parsed"), [("all", "all"), (" ALL ", "all"), ("250", 250), (5000, 5000)])
def test_sample_size_is_a_positive_integer_or_all(given, parsed) -> None:
    assert ReadOptions(endpoint="http://x:6333", collection="c", sample_size=given).sample_size == parsed


@pytest.mark.parametrize("given", [0, -3, "some", True, 2.5, None])
def test_a_bad_sample_size_names_the_option_and_what_is_allowed(given) -> None:
    with pytest.raises(QdrantConfigError, match="'sample_size'.*'all'"):
        ReadOptions(endpoint="http://x:6333", collection="c", sample_size=given)


def test_schema_mismatch_is_warn_or_error() -> None:
    assert ReadOptions(endpoint="http://x:6333", collection="c").schema_mismatch == "warn"
    assert ReadOptions(endpoint="http://x:6333", collection="c", schema_mismatch="ERROR").schema_mismatch == "error"
    with pytest.raises(QdrantConfigError, match="'schema_mismatch'.*'warn', 'error'"):
        ReadOptions(endpoint="http://x:6333", collection="c", schema_mismatch="ignore")


def test_the_slices_taken_hold_at_least_the_sample_size_and_at_most_a_sixteenth_more() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        size = rng.randint(1, 5000)
        total = rng.randint(size + 1, 10_000_000)
        condition, taken = slice_condition(total, size)
        slices = condition["should"][0]["slice"]["total"]
        fraction = taken / slices
        assert fraction * total >= size
        assert fraction * total <= size * (1 + 1 / SLICES_PER_SAMPLE) + total / slices
        assert [c["slice"]["index"] for c in condition["should"]] == list(range(taken))


# ---------------------------------------------------------------------------------------------------
# A value that does not fit its column: reported and null (inferred schema), or an error (given schema)
# ---------------------------------------------------------------------------------------------------

_ODD_VALUES = [
    None, True, False, 0, 7, -3, 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, 1.0, 2.5, -0.25, 1e300,
    "", "text", "7", [1, 2], [1, "a"], [2.5], {"a": 1}, {"a": "x"}, {"a": 1, "b": 2},
]
_COLUMN_TYPES = [
    LongType(), DoubleType(), StringType(), BooleanType(), ArrayType(LongType()),
    StructType([StructField("a", LongType())]),
]


def _kept(value: Any, read: Any, data_type: Any) -> int:
    """How many non-null values of ``value`` the read made null; asserts every other one is exact."""
    if value is None:
        assert read is None
        return 0
    if read is None:
        return 1
    if isinstance(data_type, StringType):
        assert read == value if isinstance(value, str) else json.loads(read) == value
    elif isinstance(data_type, ArrayType):
        return sum(_kept(item, out, data_type.elementType) for item, out in zip(value, read, strict=True))
    elif isinstance(data_type, StructType):
        return _kept(value.get("a"), read["a"], LongType())
    else:
        assert read == value and type(read) is {LongType: int, DoubleType: float, BooleanType: bool}[type(data_type)]
    return 0


def test_no_value_becomes_null_or_rounded_without_a_report() -> None:
    rng = random.Random(5)
    for trial in range(300):
        data_type = rng.choice(_COLUMN_TYPES)
        values = [rng.choice(_ODD_VALUES) for _ in range(rng.randint(1, 8))]
        points = [{"id": i, "payload": {"x": value}} for i, value in enumerate(values)]
        schema = StructType([StructField("id", LongType(), False), StructField("x", data_type)])
        findings = SchemaFindings("warn", "c", {"sampled": 1})
        read = PointBatchBuilder(schema, {}, "c", findings).to_batch(points).column("x").to_pylist()
        nulled = sum(_kept(value, out, data_type) for value, out in zip(values, read))
        reported = sum(f.count for (_, _, outcome), f in findings._found.items() if outcome == READ_AS_NULL)
        assert nulled == reported, (data_type, values, read)
        try:
            given = PointBatchBuilder(schema, {}, "c").to_batch(points).column("x").to_pylist()
        except QdrantSchemaError as error:
            assert "'x'" in str(error)
        else:
            assert sum(_kept(value, out, data_type) for value, out in zip(values, given)) == 0, (data_type, values)
