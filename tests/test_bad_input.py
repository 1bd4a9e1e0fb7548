"""Bad input is refused with an error that names the problem and the fix, before anything is sent
wherever the problem can be seen first.

Writes go through a ``FaultProxy`` that injects nothing and only records, so "nothing was sent" is
checked by counting the upserts that reached it. Most cases run through ``write_qdrant_points`` (no
Spark, fast); the Spark-only ones (types, schemas, reads) run through the data source.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy, create_collection, free_port, server_count

from dagster_qdrant.spark.registration import check_worker_python
from dagster_qdrant.errors import (
    QdrantConfigError,
    QdrantConnectionError,
    QdrantError,
    QdrantNotFoundError,
    QdrantWriteError,
)
from dagster_qdrant.options import ReadOptions, WriteOptions, build_qdrant_config, build_qdrant_write_config

UPSERT_PATH = r"/collections/[^/]+/points(\?|$)"
DIMENSION = 4


@pytest.fixture
def recorder(qdrant_url: str) -> Iterator[FaultProxy]:
    """A proxy that injects nothing and counts what reaches the server."""
    with FaultProxy(qdrant_url) as proxy:
        yield proxy


def _rows(count: int = 5) -> list[dict[str, Any]]:
    return [{"id": index, "vector": [float(index), 1.0, 0.5, 0.25], "name": f"row {index}"} for index in range(count)]


def _write(rows: Any, endpoint: str, collection: str, **options: Any) -> Any:
    from dagster_qdrant.points.without_spark import write_qdrant_points

    settings: dict[str, Any] = {"create_collection": True, "distance": "Dot", "max_retries": 1, "backoff_factor": 0.01}
    settings.update(options)
    return write_qdrant_points(rows, build_qdrant_write_config(endpoint, collection, **settings))


def _refused(rows: Any, recorder: FaultProxy, collection: str, *words: str, **options: Any) -> QdrantError:
    """Write ``rows``; assert a QdrantError naming ``words`` and that no upsert was sent."""
    with pytest.raises(QdrantError) as raised:
        _write(rows, recorder.url, collection, **options)
    text = str(raised.value).lower()
    for word in words:
        assert word.lower() in text, f"{word!r} missing from the error: {raised.value}"
    assert recorder.count_matching(UPSERT_PATH) == 0, "bad rows must be refused before any upsert is sent"
    if isinstance(raised.value, QdrantWriteError):
        assert raised.value.written == 0
    return raised.value


# --- connection ------------------------------------------------------------------------------------


def test_endpoint_without_scheme_is_refused_with_an_example() -> None:
    for build in (build_qdrant_config, build_qdrant_write_config):
        with pytest.raises(QdrantConfigError) as raised:
            build("localhost:6333", "points")
        assert "endpoint" in str(raised.value) and "http://" in str(raised.value)


def test_unreachable_host_is_a_connection_error_naming_the_endpoint(collection_name: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(QdrantConnectionError) as raised:
        _write(_rows(), endpoint, collection_name, max_retries=2)
    assert endpoint in str(raised.value)
    assert "connect" in str(raised.value).lower()
    assert time.monotonic() - started < 20, "retries against a closed port must stay bounded"


def test_write_to_a_missing_collection_without_create_says_how_to_fix(
    recorder: FaultProxy, collection_name: str
) -> None:
    error = _refused(_rows(), recorder, collection_name, collection_name, "create_collection", create_collection=False)
    assert isinstance(error, QdrantNotFoundError) or error.status == 404


def test_read_of_a_missing_collection_names_it(spark: Any, qdrant_url: str, collection_name: str) -> None:
    from dagster_qdrant.http import QdrantHttp

    with pytest.raises(QdrantNotFoundError) as raised:
        QdrantHttp(ReadOptions(endpoint=qdrant_url, collection=collection_name)).count(collection_name)
    assert collection_name in str(raised.value)
    options = ReadOptions(endpoint=qdrant_url, collection=collection_name).spark_options()
    with pytest.raises(Exception) as raised_in_spark:
        spark.read.format("qdrant").options(**options).load().collect()
    text = str(raised_in_spark.value)
    assert collection_name in text and ("not found" in text.lower() or "404" in text), text[-1500:]


# --- vectors ---------------------------------------------------------------------------------------


def test_vector_size_different_from_the_collection_is_refused(
    recorder: FaultProxy, qdrant_url: str, collection_name: str
) -> None:
    create_collection(qdrant_url, collection_name, 8)
    error = _refused(_rows(), recorder, collection_name, collection_name)
    assert "size 4" in str(error) and "expects size 8" in str(error), str(error)
    assert error.point_ids == [0, 1, 2, 3, 4]
    assert server_count(qdrant_url, collection_name) == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_nan_or_infinite_vector_values_are_refused_naming_the_point(
    bad: float, recorder: FaultProxy, collection_name: str
) -> None:
    rows = _rows()
    rows[3]["vector"] = [1.0, bad, 0.0, 0.0]
    error = _refused(rows, recorder, collection_name)
    assert error.point_ids == [3] and "point ids [3]" in str(error), str(error)
    assert any(word in str(error).lower() for word in ("nan", "inf", "finite")), str(error)


@pytest.mark.parametrize("bad", [None, []], ids=["null", "empty"])
def test_null_or_empty_vectors_are_refused_naming_the_point(
    bad: Any, recorder: FaultProxy, collection_name: str
) -> None:
    rows = _rows()
    rows[2]["vector"] = bad
    error = _refused(rows, recorder, collection_name, "vector")
    assert error.point_ids == [2] and "point ids [2]" in str(error), str(error)


def test_ragged_vectors_in_one_column_are_refused(recorder: FaultProxy, collection_name: str) -> None:
    rows = _rows()
    rows[4]["vector"] = [1.0, 2.0, 3.0]
    error = _refused(rows, recorder, collection_name, "vector")
    assert "[3, 4]" in str(error), f"the error should give both sizes: {error}"
    assert error.point_ids == [4] and "point ids [4]" in str(error), str(error)


# --- ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [-1, "not-a-uuid", 2**64, 1.5], ids=["negative", "not-uuid", "too-big", "float"])
def test_invalid_point_ids_are_refused_naming_the_id(bad_id: Any, recorder: FaultProxy, collection_name: str) -> None:
    rows = _rows()
    rows[1]["id"] = bad_id
    error = _refused(rows, recorder, collection_name)
    text = str(error)
    assert str(bad_id) in text, f"the bad id {bad_id!r} is not named: {text}"
    assert "uuid" in text.lower() or "unsigned" in text.lower() or "integer" in text.lower(), text


def test_duplicate_ids_in_one_write_are_refused(recorder: FaultProxy, collection_name: str) -> None:
    rows = _rows(10)
    rows[7]["id"] = 2
    error = _refused(rows, recorder, collection_name, "duplicate")
    assert error.point_ids == [2] and "'id'): [2]" in str(error), str(error)


def test_uuid_ids_are_accepted_in_any_case(qdrant_url: str, collection_name: str) -> None:
    rows = _rows(2)
    rows[0]["id"] = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    rows[1]["id"] = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert _write(rows, qdrant_url, collection_name).points_written == 2
    assert server_count(qdrant_url, collection_name) == 2


# --- size ------------------------------------------------------------------------------------------


def test_a_row_larger_than_the_request_body_limit_is_refused(recorder: FaultProxy, collection_name: str) -> None:
    rows = _rows(3)
    rows[1]["name"] = "x" * (33 * 1024 * 1024)
    error = _refused(rows, recorder, collection_name, "32")
    assert error.point_ids == [1] and "Point 1 alone" in str(error), str(error)
    assert len(str(error)) < 5000, "the error must not quote the oversized row"


# --- empty input -----------------------------------------------------------------------------------


def test_empty_input_is_a_no_op(recorder: FaultProxy, collection_name: str) -> None:
    report = _write([], recorder.url, collection_name)
    assert report.points_written == 0
    assert recorder.count_matching(UPSERT_PATH) == 0


def test_empty_dataframe_write_is_a_no_op(spark: Any, recorder: FaultProxy, collection_name: str) -> None:
    frame = spark.createDataFrame([], "id long, vector array<float>, name string")
    config = build_qdrant_write_config(recorder.url, collection_name, create_collection=True, distance="Dot")
    frame.write.format("qdrant").options(**WriteOptions.from_mapping(config).spark_options()).mode("append").save()
    assert recorder.count_matching(UPSERT_PATH) == 0


# --- options ---------------------------------------------------------------------------------------


def test_invalid_filter_json_is_refused_naming_the_option(spark: Any, qdrant_url: str, collection_name: str) -> None:
    with pytest.raises(QdrantConfigError) as raised:
        build_qdrant_config(qdrant_url, collection_name, filter='{"must": [')
    assert "filter" in str(raised.value) and "json" in str(raised.value).lower()
    with pytest.raises(QdrantConfigError) as raised:
        build_qdrant_config(qdrant_url, collection_name, filter='{"muts": []}')
    assert "filter" in str(raised.value) and "muts" in str(raised.value)
    create_collection(qdrant_url, collection_name, DIMENSION)
    reader = spark.read.format("qdrant").option("endpoint", qdrant_url).option("collection", collection_name)
    with pytest.raises(Exception) as raised_in_spark:
        reader.option("filter", '{"must": [').load().collect()
    text = str(raised_in_spark.value)
    assert "filter" in text and "json" in text.lower(), text[-1500:]


# --- Spark-only: types and schemas -----------------------------------------------------------------


def test_unsupported_spark_type_is_refused_naming_the_column(
    spark: Any, recorder: FaultProxy, collection_name: str
) -> None:
    frame = spark.sql(
        "SELECT CAST(id AS BIGINT) AS id, array(CAST(1.0 AS FLOAT), CAST(0.0 AS FLOAT)) AS vector, "
        "INTERVAL '1' DAY AS waiting_time FROM range(3)"
    )
    config = build_qdrant_write_config(recorder.url, collection_name, create_collection=True, distance="Dot")
    with pytest.raises(Exception) as raised:
        frame.write.format("qdrant").options(**WriteOptions.from_mapping(config).spark_options()).mode("append").save()
    text = str(raised.value)
    assert "waiting_time" in text, f"the error should name the column: {text[-1500:]}"
    assert recorder.count_matching(UPSERT_PATH) == 0


def test_explicit_schema_that_does_not_match_the_data_names_the_column(
    spark: Any, qdrant_url: str, collection_name: str
) -> None:
    _write(_rows(), qdrant_url, collection_name)
    options = ReadOptions(endpoint=qdrant_url, collection=collection_name).spark_options()
    frame = spark.read.format("qdrant").options(**options).schema("id long, name int").load()
    with pytest.raises(Exception) as raised:
        frame.collect()
    text = str(raised.value)
    assert "name" in text and ("int" in text.lower() or "schema" in text.lower()), text[-1500:]


SPARK_BAD_ROWS = {
    "nan_vector": ("id long, vector array<float>", [(0, [1.0, 0.0]), (1, [float("nan"), 0.0])], ("nan", "vector")),
    "null_vector": ("id long, vector array<float>", [(0, [1.0, 0.0]), (1, None)], ("null", "vector")),
    "ragged_vectors": ("id long, vector array<float>", [(0, [1.0, 0.0]), (1, [1.0, 0.0, 0.5])], ("size", "vector")),
    "negative_id": ("id long, vector array<float>", [(0, [1.0, 0.0]), (-5, [1.0, 0.0])], ("-5", "id")),
}


@pytest.mark.parametrize("case", sorted(SPARK_BAD_ROWS))
def test_bad_rows_in_a_dataframe_are_refused_before_sending(
    case: str, spark: Any, recorder: FaultProxy, collection_name: str
) -> None:
    """The Arrow path of the Spark writer checks rows as strictly as write_qdrant_points does."""
    schema, rows, words = SPARK_BAD_ROWS[case]
    frame = spark.createDataFrame(rows, schema).coalesce(1)
    config = build_qdrant_write_config(recorder.url, collection_name, create_collection=True, distance="Dot")
    with pytest.raises(Exception) as raised:
        frame.write.format("qdrant").options(**WriteOptions.from_mapping(config).spark_options()).mode("append").save()
    text = str(raised.value)
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} missing from: {text[-1500:]}"
    assert "QdrantDataError" in text or "Qdrant" in text
    assert recorder.count_matching(UPSERT_PATH) == 0


def test_local_spark_workers_that_cannot_import_the_package_are_refused_with_the_fix(tmp_path: Path) -> None:
    """A venv that is not activated: Spark's workers would run the system python3, without dagster_qdrant."""
    without_package = tmp_path / "python3"
    without_package.write_text("#!/bin/sh\necho \"No module named 'dagster_qdrant'\" >&2\nexit 1\n")
    without_package.chmod(0o755)
    for python in (str(without_package), str(tmp_path / "missing" / "python3")):
        with pytest.raises(QdrantConfigError, match="cannot import dagster_qdrant") as error:
            check_worker_python(python)
        assert python in str(error.value) and f"PYSPARK_PYTHON={sys.executable}" in str(error.value)
    with_package = tmp_path / "python-with-package"
    with_package.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    with_package.chmod(0o755)
    check_worker_python(str(with_package))
    check_worker_python(sys.executable)
