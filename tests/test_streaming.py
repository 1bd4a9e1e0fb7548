"""Structured Streaming into Qdrant: df.writeStream.format("qdrant") with a checkpoint.

The promise under test: a query restarted from its checkpoint after a crash loses no row and
duplicates none, whether the points carry an id column or ids derived from the row content.
A file source feeds the stream, one JSON file per micro-batch, so every batch's rows are known.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from spark_cluster import run_program, start_program, stop_process_group, tail
from stored_points import every_point
from waiting import wait_until

from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions

SCHEMA = "id LONG, vector ARRAY<FLOAT>, text STRING"
ROWS_PER_FILE = 40
DIMENSION = 4


def vector_of(point_id: int) -> list[float]:
    return [((point_id * (k + 3)) % 61) / 4.0 for k in range(DIMENSION)]


def add_json_files(directory: Path, first: int, count: int) -> None:
    """Files ``first`` .. ``first + count - 1``, each a new set of rows; renamed in whole so the
    file source never sees half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(first, first + count):
        lines = []
        for row in range(ROWS_PER_FILE):
            point_id = number * ROWS_PER_FILE + row
            lines.append(json.dumps({"id": point_id, "vector": vector_of(point_id), "text": f"row-{point_id}"}))
        staging = directory.parent / f".{directory.name}-{number}.json"
        staging.write_text("\n".join(lines) + "\n")
        staging.rename(directory / f"part-{number:04d}.json")


def sink_options(url: str, api_key: str | None, collection: str, id_field: str | None) -> dict[str, str]:
    options = {
        "endpoint": url,
        "collection": collection,
        "create_collection": "true",
        "distance": "Euclid",
        "id_field": id_field or "none",
        "batch_size": "16",
    }
    if api_key:
        options["api_key"] = api_key
    return options


def all_points(url: str, api_key: str | None, collection: str) -> list[dict[str, Any]]:
    """Every point, read straight from Qdrant (not through the data source under test)."""
    return every_point(QdrantHttp(ConnectionOptions(endpoint=url, api_key=api_key)), collection)


def assert_each_row_once(points: list[dict[str, Any]], files: int, id_field: str | None) -> None:
    rows = files * ROWS_PER_FILE
    assert len(points) == rows
    point_ids = [point["id"] for point in points]
    assert len(set(point_ids)) == rows
    texts = sorted(point["payload"]["text"] for point in points)
    assert texts == sorted(f"row-{n}" for n in range(rows))
    for point in points:
        row_id = point["id"] if id_field else point["payload"]["id"]
        assert point["vector"] == vector_of(row_id)


def run_stream_until_done(spark: Any, source: Path, checkpoint: Path, options: dict[str, str]) -> list[int]:
    """Run the query with availableNow over whatever files are there; return the batch ids it ran."""
    query = (
        spark.readStream.schema(SCHEMA)
        .option("maxFilesPerTrigger", "1")
        .json(str(source))
        .writeStream.format("qdrant")
        .options(**options)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    assert query.awaitTermination(240), "the stream did not finish within 240 s"
    assert query.exception() is None
    return [progress["batchId"] for progress in query.recentProgress]


def forget_last_commit(checkpoint: Path) -> int:
    """Leave the checkpoint as a crash after the sink wrote a batch but before Spark committed it."""
    commits = sorted(int(path.name) for path in (checkpoint / "commits").iterdir() if path.name.isdigit())
    last = commits[-1]
    (checkpoint / "commits" / str(last)).unlink()
    (checkpoint / "commits" / f".{last}.crc").unlink(missing_ok=True)
    return last


@pytest.mark.parametrize("id_field", ["id", None], ids=["id-column", "derived-ids"])
def test_restart_after_crash_replays_the_batch_without_duplicates(
    spark: Any,
    tmp_path: Path,
    qdrant_url: str,
    qdrant_api_key: str | None,
    collection_name: str,
    id_field: str | None,
) -> None:
    source, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    options = sink_options(qdrant_url, qdrant_api_key, collection_name, id_field)

    add_json_files(source, 0, 3)
    assert run_stream_until_done(spark, source, checkpoint, options) == [0, 1, 2]
    assert_each_row_once(all_points(qdrant_url, qdrant_api_key, collection_name), 3, id_field)

    replayed = forget_last_commit(checkpoint)
    add_json_files(source, 3, 2)
    batches = run_stream_until_done(spark, source, checkpoint, options)

    # Spark did replay the batch whose points were already in Qdrant, then went on with the new files.
    assert batches == [replayed, replayed + 1, replayed + 2]
    assert_each_row_once(all_points(qdrant_url, qdrant_api_key, collection_name), 5, id_field)


@pytest.mark.stress
def test_driver_killed_mid_batch_resumes_without_loss_or_duplicates(
    tmp_path: Path, qdrant_url: str, qdrant_api_key: str | None, collection_name: str
) -> None:
    source, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    add_json_files(source, 0, 8)
    arguments = {
        "input": str(source),
        "checkpoint": str(checkpoint),
        "schema": SCHEMA,
        "options": sink_options(qdrant_url, qdrant_api_key, collection_name, None),
    }
    planned, committed = checkpoint / "offsets" / "2", checkpoint / "commits" / "2"

    # Run the stream in a driver of its own and SIGKILL it (JVM, Python workers and all) as soon as
    # batch 2 is planned: its write is under way and will never be committed by this driver.
    first_log = tmp_path / "first-run.log"
    driver = start_program("file_stream", {**arguments, "forever": True}, first_log)
    try:
        def batch_2_planned() -> bool:
            assert driver.poll() is None, f"the stream ended before it was killed:\n{tail(first_log)}"
            return planned.exists()

        wait_until(batch_2_planned, 240, "batch 2 to be planned")
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        stop_process_group(driver)
    assert not committed.exists(), "batch 2 committed before the kill landed: nothing was interrupted"

    # A new driver on the same checkpoint, with more input arriving meanwhile, finishes the job.
    add_json_files(source, 8, 2)
    # The interrupted batch is replayed as planned; the rest of the input may go in one batch.
    arguments["files_per_batch"] = 100
    result = run_program("file_stream", arguments, tmp_path / "second-run.log", timeout=240)
    assert result["batches"][0] == 2, f"batch 2 was not replayed first: {result['batches']}"
    assert_each_row_once(all_points(qdrant_url, qdrant_api_key, collection_name), 10, None)


def test_complete_output_mode_is_refused_with_a_fix(
    spark: Any, tmp_path: Path, qdrant_url: str, collection_name: str
) -> None:
    add_json_files(tmp_path / "in", 0, 1)
    counts = spark.readStream.schema(SCHEMA).json(str(tmp_path / "in")).groupBy("text").count()
    with pytest.raises(Exception, match="outputMode\\('append'\\)"):
        query = (
            counts.writeStream.format("qdrant")
            .outputMode("complete")
            .options(**sink_options(qdrant_url, None, collection_name, None))
            .option("vector_field", "count")
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination(60)
        raise AssertionError(f"complete mode was accepted: {query.exception()}")


def test_missing_id_column_stops_the_query_at_start(
    spark: Any, tmp_path: Path, qdrant_url: str, collection_name: str
) -> None:
    from pyspark.sql.types import StructType

    from dagster_qdrant.spark.streaming import QdrantStreamWriter

    schema = StructType.fromDDL("key LONG, vector ARRAY<FLOAT>")
    options = sink_options(qdrant_url, None, collection_name, "id")
    with pytest.raises(QdrantConfigError, match="id_field.*'id'.*none to derive"):
        QdrantStreamWriter(options, schema)
