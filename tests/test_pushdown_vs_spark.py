"""Pushdown against Spark: Qdrant returns, for every pushed filter, exactly the rows Spark itself keeps.

References nobody on the project wrote: Spark's own evaluation of each predicate over a cached copy of
the same rows (read once, with no filter), and Qdrant Edge's own JSON parsing of doubles. Payloads and
predicates are generated from a fixed seed, so a failure repeats; ``-m stress`` runs many more.

The reader is driven the way Spark drives it (``reader(schema)``, ``pushFilters``, a pickle round trip,
``partitions``, ``read``) through ``QdrantReader.push``: on PySpark 4.x ``pushFilters`` itself pushes
nothing (see ``dagster_qdrant.spark.pushdown``), and the query sequences below check that Spark's answers on
one reused DataFrame are then right.
"""

from __future__ import annotations

import pickle
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pyspark import cloudpickle
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.datasource import (
    EqualNullSafe,
    EqualTo,
    Filter,
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

from dagster_qdrant.spark.datasource import QdrantDataSource
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions
from dagster_qdrant.spark.pushdown import _reads_back_exactly, pushdown_is_scan_scoped

SEED = 20261201
POINTS = 240
TWO_53 = 2**53
WORDS = ["", "a", "ab", "abc", "b", "Straße", "straße", "é", "éa", "日本", "日本語", "🙂", "🙂x", "A", "a b"]
BIG = [TWO_53 + d for d in range(-3, 4)] + [-TWO_53 + d for d in range(-3, 4)] + [2**63 - 1, -(2**63), 0]
INDEXES = {"big2": "integer", "s": "keyword", "x": "float", "flag": "bool", "y": "integer"}
"""Some keys are answered from a payload index, the others from the stored payload; ``y`` has the wrong one."""
COMPARISONS = [EqualTo, EqualNullSafe, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual]


def _double(rng: random.Random) -> float | int:
    choice = rng.random()
    if choice < 0.3:
        return round(rng.uniform(-50, 50), rng.randint(0, 2))
    if choice < 0.5:
        return rng.uniform(-1e6, 1e6)  # 16-17 digits: some land an ULP off in Qdrant's parser
    if choice < 0.6:
        return 123456789.12345679
    if choice < 0.75:
        return rng.randint(-20, 20)  # integers in a double column
    return rng.choice([0.0, -0.0, 0.5, 1e-7, 1e22, 1e23, float(TWO_53), 2.0**60])


def _payload(rng: random.Random) -> dict[str, Any]:
    """One point's payload: every key may be missing or null; values of many kinds."""
    values = {
        "n": lambda: rng.randint(-20, 20),
        "big": lambda: rng.choice(BIG),
        "x": lambda: _double(rng),
        "y": lambda: _double(rng),  # indexed as integer: Qdrant would truncate double bounds
        "big2": lambda: rng.choice(BIG),  # indexed as integer
        "s": lambda: rng.choice(WORDS),
        "flag": lambda: rng.random() < 0.5,
        "tags": lambda: rng.sample(WORDS[:6], rng.randint(0, 3)),
        "obj": lambda: {"a": rng.randint(-5, 5), "b": rng.choice(WORDS)},
        "mixed": lambda: rng.choice([1, "1", 2.5, "x", True]),
    }
    payload: dict[str, Any] = {}
    for key, make in values.items():
        roll = rng.random()
        if roll < 0.12:
            continue  # missing
        payload[key] = None if roll < 0.22 else make()
    return payload


def _point_id(rng: random.Random, n: int) -> int | str:
    return str(uuid.UUID(int=rng.getrandbits(128))) if n % 6 == 5 else n * 7


@pytest.fixture(scope="module")
def data(qdrant_url: str, qdrant_api_key: str | None, spark) -> dict[str, Any]:
    """A seeded collection, the Spark schema the data source infers for it, and Spark's own copy of it."""
    rng = random.Random(SEED)
    name = f"t_pushdown_vs_spark_{uuid.uuid4().hex[:8]}"
    http = QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key))
    http.create_collection(name, {"vectors": {"size": 2, "distance": "Dot"}})
    points = [{"id": _point_id(rng, n), "vector": [1.0, 0.5], "payload": _payload(rng)} for n in range(POINTS)]
    http.upsert(name, {"points": points}, wait=True)
    for field, index in INDEXES.items():
        http.create_payload_index(name, field, index)
    options = {"endpoint": qdrant_url, "collection": name, "num_partitions": "3"}
    if qdrant_api_key:
        options["api_key"] = qdrant_api_key
    df = spark.read.format("qdrant").options(**options).load()
    reference = df.localCheckpoint()  # read once, unfiltered; Spark evaluates every predicate on this copy
    assert reference.count() == POINTS
    return {"options": options, "schema": df.schema, "reference": reference, "rng": rng}


# --- predicates as Spark hands them to a reader, and as Spark evaluates them ----------------------


def _samples(reference: DataFrame) -> dict[str, list[Any]]:
    rows = reference.select("id", "n", "big", "x", "s", "flag", "obj").collect()
    return {
        "id": [row.id for row in rows] + ["07", "1", str(2**64)],
        "n": [-21, -1, 0, 5, 20, 21, 2**31],
        "big": BIG + [TWO_53 - 4, TWO_53 + 8],
        "x": [row.x for row in rows if row.x is not None] + [2.5, 0.1, 123456789.12345679, 7, TWO_53 + 1],
        "y": [-2.5, 0.5, 1.5, 3.0, 10.25],
        "big2": BIG + [TWO_53 - 4, TWO_53 + 8],
        "s": WORDS + ["c", "日", "Stra", "ab "],
        "flag": [True, False],
        "obj.a": [-6, -1, 0, 3, 5],
        "obj.b": WORDS,
    }


def _literal(rng: random.Random, samples: dict[str, list[Any]], column: str) -> Any:
    value = rng.choice(samples[column])
    if column in ("n", "big", "big2", "obj.a") and rng.random() < 0.05:
        return value + 0.5  # a double literal against an integer column
    return value


def _random_filter(rng: random.Random, samples: dict[str, list[Any]]) -> Filter:
    column = rng.choice(list(samples) + ["tags", "mixed"])
    attribute = tuple(column.split("."))
    kind = rng.random()
    if column in ("tags", "mixed") or kind < 0.1:
        spark_filter: Filter = rng.choice([IsNull, IsNotNull])(attribute)
        if column == "mixed" and rng.random() < 0.5:
            spark_filter = EqualTo(attribute, "1")
    elif kind < 0.25:
        values = tuple(_literal(rng, samples, column) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.1:
            values += (None,)
        spark_filter = In(attribute, values)
    elif column in ("s", "obj.b") and kind < 0.45:
        operator = rng.choice([StringStartsWith, StringStartsWith, StringEndsWith, StringContains])
        spark_filter = operator(attribute, rng.choice(samples[column]))
    else:
        operator = rng.choice(COMPARISONS)
        value = _literal(rng, samples, column)
        if operator is EqualNullSafe and rng.random() < 0.2:
            value = None
        spark_filter = operator(attribute, value)
    roll = rng.random()
    if roll < 0.25:
        return Not(spark_filter)
    if roll < 0.28:
        return Not(Not(spark_filter))
    return spark_filter


def _column(attribute: tuple[str, ...]) -> Column:
    column = F.col(attribute[0])
    for part in attribute[1:]:
        column = column.getField(part)
    return column


def as_column(spark_filter: Filter) -> Column:
    """The Spark expression a filter stands for (the meaning ``pyspark.sql.datasource`` documents)."""
    if isinstance(spark_filter, Not):
        return ~as_column(spark_filter.child)
    column = _column(spark_filter.attribute)
    if isinstance(spark_filter, IsNull):
        return column.isNull()
    if isinstance(spark_filter, IsNotNull):
        return column.isNotNull()
    value = spark_filter.value
    if isinstance(spark_filter, In):
        return column.isin(*[F.lit(item) for item in value])
    operators = {
        EqualTo: lambda: column == F.lit(value),
        EqualNullSafe: lambda: column.eqNullSafe(F.lit(value)),
        GreaterThan: lambda: column > F.lit(value),
        GreaterThanOrEqual: lambda: column >= F.lit(value),
        LessThan: lambda: column < F.lit(value),
        LessThanOrEqual: lambda: column <= F.lit(value),
        StringStartsWith: lambda: column.startswith(value),
        StringEndsWith: lambda: column.endswith(value),
        StringContains: lambda: column.contains(value),
    }
    return operators[type(spark_filter)]()


def _rows_read(reader: Any) -> list[Any]:
    """What Spark's tasks would read: the reader pickled after pushdown, every partition read."""
    shipped = pickle.loads(cloudpickle.dumps(reader))
    ids: list[Any] = []
    for partition in pickle.loads(cloudpickle.dumps(shipped.partitions())):
        for batch in shipped.read(partition):
            ids.extend(batch.column("id").to_pylist())
    return ids


def check_pushed_filters_match_spark(spark, data: dict[str, Any], cases: int) -> None:
    rng = random.Random(SEED + cases)
    reference: DataFrame = data["reference"]
    samples = _samples(reference)
    assert data["schema"]["id"].dataType.simpleString() == "string"  # integer and UUID ids
    source = QdrantDataSource(data["options"])
    reader = source.reader(data["schema"])
    checked: list[tuple[list[Filter], Any, list[Any]]] = []
    filters_seen = filters_pushed = 0
    for _ in range(cases):
        filters = [_random_filter(rng, samples) for _ in range(rng.choice([1, 1, 2, 3]))]
        kept = reader.push(filters)
        assert all(any(k is f for f in filters) for k in kept), "pushFilters must return its own filters"
        pushed = [f for f in filters if not any(f is k for k in kept)]
        filters_seen += len(filters)
        filters_pushed += len(pushed)
        if pushed:
            ids = _rows_read(reader)
            assert len(ids) == len(set(ids)), f"a point was read twice for {pushed}"
            checked.append((pushed, reader.query_filter, ids))
    predicates = [
        F.coalesce(_conjunction(pushed), F.lit(False)).alias(f"p{i}") for i, (pushed, _, _) in enumerate(checked)
    ]
    rows = reference.select("id", *predicates).collect()
    for i, (pushed, query_filter, ids) in enumerate(checked):
        expected = sorted(str(row.id) for row in rows if row[f"p{i}"])
        assert sorted(map(str, ids)) == expected, f"pushed {pushed} as {query_filter}"
    # The comparison proves something only if many filters were pushed (the generator also makes
    # filters that must stay in Spark: arrays, mixed columns, suffixes, doubles Qdrant reads inexactly).
    assert filters_pushed >= 0.4 * filters_seen, (filters_pushed, filters_seen)
    assert len(checked) >= 0.6 * cases


def _conjunction(filters: list[Filter]) -> Column:
    condition = as_column(filters[0])
    for spark_filter in filters[1:]:
        condition = condition & as_column(spark_filter)
    return condition


def test_pushed_filters_select_exactly_the_rows_spark_keeps(spark, data) -> None:
    check_pushed_filters_match_spark(spark, data, cases=300)


@pytest.mark.stress
def test_pushed_filters_select_exactly_the_rows_spark_keeps_many(spark, data) -> None:
    check_pushed_filters_match_spark(spark, data, cases=3000)


def test_pushed_doubles_are_the_doubles_qdrant_reads(qdrant_url, qdrant_api_key, collection_name) -> None:
    """The rule for double literals predicts, value by value, which doubles Qdrant's parser changes."""
    rng = random.Random(SEED)
    values = [rng.uniform(-1e6, 1e6) for _ in range(1500)]
    values += [rng.random() * 10.0 ** rng.randint(-30, 30) for _ in range(1500)]
    http = QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key))
    http.create_collection(collection_name, {"vectors": {"size": 1, "distance": "Dot"}})
    points = [{"id": i, "vector": [1.0], "payload": {"x": v}} for i, v in enumerate(values)]
    http.upsert(collection_name, {"points": points}, wait=True)
    stored, _ = http.scroll(collection_name, {"limit": len(values), "with_payload": True, "with_vector": False})
    read_back = {point["id"]: point["payload"]["x"] for point in stored}
    changed = {i for i, value in enumerate(values) if read_back[i] != value}
    assert changed, "expected Qdrant's best-effort float parsing to change some of these doubles"
    assert changed == {i for i, value in enumerate(values) if not _reads_back_exactly(value)}


# --- query sequences on one DataFrame ---------------------------------------------------------------


def _random_predicate(rng: random.Random, depth: int = 0) -> Column:
    """A Spark predicate over the generated columns: comparisons, IN, NOT IN, <=>, LIKE, NOT, AND, OR."""
    if depth < 2 and rng.random() < 0.35:
        left, right = _random_predicate(rng, depth + 1), _random_predicate(rng, depth + 1)
        return (left & right) if rng.random() < 0.5 else (left | right)
    choice = rng.randrange(10)
    if choice == 0:
        return F.col("s").like(rng.choice(["a%", "日本%", "Stra%", "%b", "é%"]))
    if choice == 1:
        return ~F.col("n").isin(*rng.sample(range(-20, 21), 3))
    if choice == 2:
        return F.col("s").eqNullSafe(rng.choice(WORDS + [None]))
    if choice == 3:
        return F.col("big") > rng.choice(BIG[:-3])
    if choice == 4:
        return F.col("n") >= rng.choice([-2.5, 0.5, 3.0])  # an integer column against a double literal
    if choice == 5:
        return F.col("x") <= rng.choice([0.5, -10.0, 123456789.12345679, 1e22])
    if choice == 6:
        return F.col("flag") == rng.choice([True, False])
    if choice == 7:
        return F.col("obj.a").isNull() if rng.random() < 0.5 else (F.col("obj.a") < 2)
    if choice == 8:
        return ~(F.col("n") == rng.randint(-5, 5))
    return F.col("id").isin(*[str(7 * rng.randrange(POINTS)) for _ in range(5)])


def _ids(df: DataFrame) -> list[str]:
    return sorted(str(row.id) for row in df.select("id").collect())


STEPS = ["filter", "all", "filter", "limit", "select", "count", "union"]


def _sequence(rng: random.Random, extra: int) -> Iterator[tuple[str, Column]]:
    """Every kind of step once, in an order that catches a filter left behind, then ``extra`` random ones."""
    for step in STEPS:
        yield step, _random_predicate(rng)
    for _ in range(extra):
        yield rng.choice(STEPS), _random_predicate(rng)


def check_query_sequence(spark, data: dict[str, Any], extra: int) -> None:
    rng = random.Random(SEED + extra)
    reference: DataFrame = data["reference"]
    df = spark.read.format("qdrant").options(**data["options"]).load()
    for step, predicate in _sequence(rng, extra):
        if step == "all":
            assert _ids(df) == _ids(reference), step
        elif step == "count":
            assert df.count() == reference.count() == POINTS, step
        elif step == "filter":
            assert _ids(df.where(predicate)) == _ids(reference.where(predicate)), (step, str(predicate))
        elif step == "limit":
            rows = df.where(predicate).limit(5).select("id").collect()
            allowed = set(_ids(reference.where(predicate)))
            assert len(rows) == min(5, len(allowed)) and {str(r.id) for r in rows} <= allowed, (step, str(predicate))
        elif step == "select":
            columns = ["id", "s", "n"]
            assert sorted(map(tuple, df.select(*columns).collect()), key=str) == sorted(
                map(tuple, reference.select(*columns).collect()), key=str
            ), step
        else:  # one query, two scans of the same DataFrame with different filters
            other = _random_predicate(rng)
            got = df.where(predicate).select("id").union(df.where(other).select("id"))
            expected = reference.where(predicate).select("id").union(reference.where(other).select("id"))
            assert _ids(got) == _ids(expected), (step, str(predicate), str(other))


def test_queries_on_one_dataframe_each_see_only_their_own_filters(spark, data) -> None:
    check_query_sequence(spark, data, extra=0)


@pytest.mark.stress
def test_queries_on_one_dataframe_each_see_only_their_own_filters_long(spark, data) -> None:
    check_query_sequence(spark, data, extra=80)


def test_spark_filters_itself_exactly_where_nothing_is_pushed(spark, data) -> None:
    """Spark's plan keeps its own Filter over the scan unless this Spark lets the reader push (n = 3 pushes)."""
    df = spark.read.format("qdrant").options(**data["options"]).load().where(F.col("n") == 3)
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert ("Filter " in plan) != pushdown_is_scan_scoped(), plan
