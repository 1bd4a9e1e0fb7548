"""Type handlers: pandas and pyarrow assets through the IO manager with real ``materialize``, partitioned and
not, Spark <-> pandas across kinds, the choice by annotation, and the errors for a type no handler takes.

Every comparison is with the input values the assets returned: ids, payload values and float32 vectors
exactly. Collections use the Dot distance, which stores vectors as given (Cosine stores them normalised).
Generated doubles have at most 15 significant digits, the doubles Qdrant gives back exactly (README,
"Values arrive as given"); the last-digit drift of others is Qdrant's and is tested in test_exact_doubles.py.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from dagster import AssetIn, AssetKey, SourceAsset, StaticPartitionsDefinition, asset, materialize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagster_qdrant import (
    ArrowTypeHandler,
    PandasTypeHandler,
    QdrantIOManager,
    QdrantPySparkIOManager,
    QdrantResource,
    QdrantTypeHandler,
)
from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.points.without_spark import read_qdrant_points, write_qdrant_points

LETTERS = StaticPartitionsDefinition(["a", "b"])
METADATA = {"distance": "Dot"}
SETTINGS = settings(
    derandomize=True, max_examples=12, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def manager(qdrant_url: str, qdrant_api_key: str | None) -> QdrantIOManager:
    return QdrantIOManager(qdrant=QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key), progress_interval=3600)


# ----- generated frames -----------------------------------------------------------------------------

_exact_doubles = st.builds(lambda units, scale: units / 10**scale, st.integers(-10**14, 10**14), st.integers(0, 7))
_float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def payload_frames(draw: Any) -> pd.DataFrame:
    """ids, an int, a float (NaN = missing), a string and a bool column (None allowed), float32 vectors."""
    size = draw(st.integers(1, 12))
    ids = draw(st.lists(st.integers(0, 2**63 - 1), min_size=size, max_size=size, unique=True))
    floats = draw(st.lists(st.one_of(st.just(float("nan")), _exact_doubles), min_size=size, max_size=size))
    return pd.DataFrame({
        "id": pd.Series(ids, dtype="int64"),
        "count": pd.Series(draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=size, max_size=size)), dtype="int64"),
        "score": pd.Series(floats, dtype="float64"),
        "label": pd.Series(draw(st.lists(st.none() | st.text(max_size=8), min_size=size, max_size=size)), dtype=object),
        "flag": pd.Series(draw(st.lists(st.none() | st.booleans(), min_size=size, max_size=size)), dtype=object),
        "vector": [
            np.array(draw(st.lists(_float32s, min_size=3, max_size=3)), dtype=np.float32) for _ in range(size)
        ],
    })


def seeded_frame(seed: int, ids: range) -> pd.DataFrame:
    generator = random.Random(seed)
    return pd.DataFrame({
        "id": list(ids),
        "text": [f"document {i} {generator.random()}" for i in ids],
        "rank": [generator.randrange(-1000, 1000) for _ in ids],
        "vector": [np.array([generator.uniform(-9, 9) for _ in range(4)], dtype=np.float32) for _ in ids],
    })


def assert_same_rows(loaded: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same columns and, by id, the same payload values (missing = missing) and the same float32 vectors."""
    assert sorted(loaded.columns) == sorted(expected.columns)
    loaded = loaded.sort_values("id").reset_index(drop=True)[list(expected.columns)]
    expected = expected.sort_values("id").reset_index(drop=True)
    for column in expected.columns:
        if expected[column].isna().all():  # a key null on every point has no type: it loads as missing values
            assert loaded[column].isna().all(), column
        elif column == "vector":
            got = np.stack(loaded[column].to_list())
            assert got.dtype == np.float32 and np.array_equal(got, np.stack(expected[column].to_list()))
        elif expected[column].dtype == object:
            assert loaded[column].astype(object).where(loaded[column].notna(), None).to_list() == \
                expected[column].where(expected[column].notna(), None).to_list(), column
        else:
            pd.testing.assert_series_equal(loaded[column], expected[column], check_names=False)


def captured_load(upstream: str, annotation: Any, captured: list[Any], **options: Any) -> Any:
    """A downstream asset whose input is annotated ``annotation``; it keeps what the IO manager loaded."""

    def body(documents):  # type: ignore[no-untyped-def]
        captured.append(documents)

    body.__annotations__ = {"documents": annotation, "return": None}
    return asset(name=f"{upstream}_reader", ins={"documents": AssetIn(key=AssetKey(upstream))}, **options)(body)


# ----- round trips ----------------------------------------------------------------------------------


@SETTINGS
@given(data=payload_frames())
def test_a_pandas_asset_round_trips_through_the_io_manager(
    manager: QdrantIOManager, collection_name: str, data: pd.DataFrame
) -> None:
    @asset(name=collection_name, metadata=METADATA)
    def documents() -> pd.DataFrame:
        return data

    captured: list[Any] = []
    result = materialize([documents, captured_load(collection_name, pd.DataFrame, captured)],
                         resources={"io_manager": manager})
    assert result.success
    assert result.asset_materializations_for_node(collection_name)[0].metadata["dagster/row_count"].value == len(data)
    assert isinstance(captured[0], pd.DataFrame)
    assert_same_rows(captured[0], data)


@pytest.mark.parametrize("kind", ["pandas", "arrow"])
def test_partitioned_pandas_and_arrow_assets_replace_their_partition_and_load_it_back(
    manager: QdrantIOManager, collection_name: str, kind: str
) -> None:
    frames = {"a": seeded_frame(1, range(1, 9)), "b": seeded_frame(2, range(20, 26))}
    convert = (lambda frame: frame) if kind == "pandas" else (lambda frame: pa.Table.from_pandas(frame))
    annotation = pd.DataFrame if kind == "pandas" else pa.Table

    def documents(context):  # type: ignore[no-untyped-def]
        return convert(frames[context.partition_key])

    documents.__annotations__ = {"return": annotation}
    documents_asset = asset(name=collection_name, metadata=METADATA, partitions_def=LETTERS)(documents)
    for key in ("a", "b"):
        assert materialize([documents_asset], resources={"io_manager": manager}, partition_key=key).success
    frames["a"] = seeded_frame(3, range(5, 12))  # replaced: ids 1-4 go, 9-11 come
    assert materialize([documents_asset], resources={"io_manager": manager}, partition_key="a").success

    for key in ("a", "b"):
        captured: list[Any] = []
        reader = captured_load(collection_name, annotation, captured, partitions_def=LETTERS)
        assert materialize([documents_asset.to_source_asset(), reader], resources={"io_manager": manager},
                           partition_key=key).success
        assert isinstance(captured[0], annotation)
        loaded = captured[0] if kind == "pandas" else captured[0].to_pandas()
        assert_same_rows(loaded, frames[key])


def test_an_arrow_asset_keeps_its_column_types(manager: QdrantIOManager, collection_name: str) -> None:
    table = pa.table({
        "id": pa.array([3, 1, 2], pa.int64()),
        "name": pa.array(["c", None, "b"]),
        "weight": pa.array([0.25, 1.5, None], pa.float64()),
        "vector": pa.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.125]], pa.list_(pa.float32())),
    })

    @asset(name=collection_name, metadata=METADATA)
    def documents() -> pa.Table:
        return table

    captured: list[Any] = []
    assert materialize([documents, captured_load(collection_name, pa.Table, captured)],
                       resources={"io_manager": manager}).success
    loaded = captured[0].sort_by("id")
    assert loaded.schema.field("vector").type == pa.list_(pa.float32())
    assert loaded.select(table.column_names).equals(table.sort_by("id"))


# ----- across kinds ---------------------------------------------------------------------------------


def test_a_spark_asset_loads_as_pandas_and_a_pandas_asset_loads_as_spark(
    spark: Any, qdrant_url: str, qdrant_api_key: str | None, collection_name: str
) -> None:
    manager = QdrantPySparkIOManager(
        qdrant=QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key), progress_interval=3600
    )
    data = seeded_frame(4, range(1, 16))
    spark_rows = [(int(r.id), r.text, int(r.rank), [float(v) for v in r.vector]) for r in data.itertuples()]

    @asset(name=f"{collection_name}_spark", metadata=METADATA)
    def from_spark():  # unannotated, as existing Spark assets are
        return spark.createDataFrame(spark_rows, "id long, text string, rank long, vector array<float>")

    @asset(name=f"{collection_name}_pandas", metadata=METADATA)
    def from_pandas() -> pd.DataFrame:
        return data

    as_pandas: list[Any] = []
    as_spark: list[Any] = []
    readers = [
        captured_load(f"{collection_name}_spark", pd.DataFrame, as_pandas),
        captured_load(f"{collection_name}_pandas", Any, as_spark),  # unannotated: Spark, as before
    ]
    assert materialize([from_spark, from_pandas, *readers], resources={"io_manager": manager}).success
    assert_same_rows(as_pandas[0], data)
    loaded = as_spark[0].toPandas()
    loaded["vector"] = [np.array(vector, dtype=np.float32) for vector in loaded["vector"]]
    assert_same_rows(loaded, data)


def test_a_pandas_collection_written_without_dagster_loads_like_one_the_io_manager_wrote(
    manager: QdrantIOManager, collection_name: str
) -> None:
    """The handler reads what ``write_qdrant_points`` wrote, and writes what ``read_qdrant_points`` reads."""
    data = seeded_frame(5, range(1, 11))

    @asset(name=collection_name, metadata=METADATA)
    def documents() -> pd.DataFrame:
        return data

    assert materialize([documents], resources={"io_manager": manager}).success
    points = {p["id"]: p for p in read_qdrant_points(manager.qdrant.read_config(collection_name, with_vectors=True))}
    assert sorted(points) == list(range(1, 11))
    for row in data.itertuples():
        assert points[row.id]["payload"] == {"text": row.text, "rank": row.rank}
        assert np.array_equal(np.array(points[row.id]["vector"], dtype=np.float32), row.vector)
    direct = f"{collection_name}_direct"
    write_qdrant_points(data, manager.qdrant.write_config(direct, create_collection=True, distance="Dot"))
    captured: list[Any] = []
    source = SourceAsset(key=AssetKey(direct))
    assert materialize([source, captured_load(direct, pd.DataFrame, captured)],
                       resources={"io_manager": manager}).success
    assert_same_rows(captured[0], data)


# ----- choosing the handler -------------------------------------------------------------------------


def test_an_output_no_handler_takes_is_refused_naming_its_type_and_the_supported_ones(
    manager: QdrantIOManager, collection_name: str
) -> None:
    @asset(name=collection_name)
    def documents() -> list:
        return [{"id": 1, "vector": [1.0]}]

    with pytest.raises(QdrantConfigError) as refused:
        materialize([documents], resources={"io_manager": manager})
    message = str(refused.value)
    assert "returned list" in message
    assert "pyspark.sql.DataFrame, pandas.DataFrame, pyarrow.Table" in message and "type_handlers()" in message


def test_an_input_annotated_with_a_type_no_handler_loads_is_refused(
    manager: QdrantIOManager, collection_name: str
) -> None:
    @asset(name=collection_name, metadata=METADATA)
    def documents() -> pd.DataFrame:
        return seeded_frame(6, range(1, 4))

    with pytest.raises(QdrantConfigError, match=r"annotated builtins\.dict|annotated dict.*pandas\.DataFrame"):
        materialize([documents, captured_load(collection_name, dict, [])], resources={"io_manager": manager})
    with pytest.raises(QdrantConfigError, match=r"has no type annotation.*annotate the input"):
        materialize([documents, captured_load(collection_name, Any, [])], resources={"io_manager": manager})


def test_a_spark_only_reader_option_is_refused_for_a_pandas_input(
    manager: QdrantIOManager, collection_name: str
) -> None:
    @asset(name=collection_name, metadata=METADATA)
    def documents() -> pd.DataFrame:
        return seeded_frame(7, range(1, 4))

    @asset(ins={"documents": AssetIn(key=AssetKey(collection_name), metadata={"num_partitions": 4})})
    def reader(documents: pd.DataFrame) -> None:
        pass

    with pytest.raises(QdrantConfigError, match=r"\['num_partitions'\].*Spark reads only"):
        materialize([documents, reader], resources={"io_manager": manager})


def test_a_subclass_adds_a_type_handler(manager: QdrantIOManager, collection_name: str) -> None:
    """The extension point: ``type_handlers()`` returns one more handler, here for lists of dicts."""

    class RecordsHandler(ArrowTypeHandler):
        supported_types = [list]  # type: ignore[assignment]

        def write(self, obj: Any, collection: str, write_options: Any) -> None:
            super().write(pa.Table.from_pylist(obj), collection, write_options)

        def columns(self, obj: Any) -> list[str]:
            return sorted({key for row in obj for key in row})

        def column_schema(self, obj: Any) -> Any:
            return super().column_schema(pa.Table.from_pylist(obj))

        def load(self, source: Any, connection: Any) -> Any:
            return super().load(source, connection).to_pylist()

    class RecordsIOManager(QdrantIOManager):
        def type_handlers(self) -> list[QdrantTypeHandler[Any]]:
            return [*super().type_handlers(), RecordsHandler()]

    rows = [{"id": i, "text": f"t{i}", "vector": [float(i), 0.5]} for i in range(1, 6)]

    @asset(name=collection_name, metadata=METADATA)
    def documents() -> list:
        return rows

    captured: list[Any] = []
    extended = RecordsIOManager(qdrant=manager.qdrant, progress_interval=3600)
    assert materialize([documents, captured_load(collection_name, list, captured)],
                       resources={"io_manager": extended}).success
    assert sorted(captured[0], key=lambda row: row["id"]) == rows
    assert isinstance(PandasTypeHandler(), ArrowTypeHandler)


def test_two_handlers_for_one_type_are_refused(manager: QdrantIOManager, collection_name: str) -> None:
    class Twice(QdrantIOManager):
        def type_handlers(self) -> list[QdrantTypeHandler[Any]]:
            return [*super().type_handlers(), PandasTypeHandler()]

    @asset(name=collection_name, metadata=METADATA)
    def documents() -> pd.DataFrame:
        return seeded_frame(8, range(1, 3))

    with pytest.raises(QdrantConfigError, match=r"two type handlers for pandas\.DataFrame.*only one of them"):
        materialize([documents], resources={"io_manager": Twice(qdrant=manager.qdrant)})


def test_nullable_integers_and_all_null_keys_load_as_pyarrow_makes_them(
    manager: QdrantIOManager, collection_name: str
) -> None:
    """The README's word on nulls in pandas: Int64 with nulls comes back float64 with NaN; an all-null key missing."""
    data = pd.DataFrame({
        "id": [1, 2, 3],
        "n": pd.Series([1, None, 3], dtype="Int64"),
        "nothing": [None, None, None],
        "vector": [np.array([1.0, 2.0], dtype=np.float32)] * 3,
    })

    @asset(name=collection_name, metadata=METADATA)
    def documents() -> pd.DataFrame:
        return data

    captured: list[Any] = []
    assert materialize([documents, captured_load(collection_name, pd.DataFrame, captured)],
                       resources={"io_manager": manager}).success
    loaded = captured[0].sort_values("id").reset_index(drop=True)
    pd.testing.assert_series_equal(loaded["n"], pd.Series([1.0, np.nan, 3.0], name="n"))
    assert loaded["nothing"].isna().all()


_NO_SPARK_SCRIPT = """
import sys
import pandas as pd, numpy as np
from dagster import asset, materialize, AssetIn, AssetKey
from dagster_qdrant import QdrantIOManager, QdrantResource

@asset(name="no_spark", metadata={"distance": "Dot"})
def documents() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2], "vector": [np.ones(2, np.float32)] * 2})

@asset(ins={"documents": AssetIn(key=AssetKey("no_spark"))})
def reader(documents: pd.DataFrame) -> None:
    assert len(documents) == 2

manager = QdrantIOManager(qdrant=QdrantResource(endpoint=sys.argv[1]), progress_interval=3600)
assert materialize([documents, reader], resources={"io_manager": manager}).success
import pyspark
assert pyspark.SparkContext._active_spark_context is None, "a Spark context was started"
assert pyspark.SparkContext._gateway is None, "a JVM was started"
print("no spark")
"""


def test_pandas_assets_start_no_spark(qdrant_url: str, qdrant_api_key: str | None, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "no_spark.py"
    script.write_text(_NO_SPARK_SCRIPT)
    done = subprocess.run([sys.executable, str(script), qdrant_url], capture_output=True, text=True,
                          env={**os.environ, **({"QDRANT_API_KEY": qdrant_api_key} if qdrant_api_key else {})},
                          timeout=300)
    assert done.returncode == 0 and "no spark" in done.stdout, done.stderr[-3000:]
