"""QdrantPySparkIOManager with hand-built contexts: whole-collection swaps, partitions, inputs, failures.

Spark moves the points (its Python workers talk to the Qdrant under test, never under a cassette); tests
check the requests sent from this process as the ``sent`` fixture captures them this run. The one marked
``vcr`` replays tests/cassettes/test_io_manager/ (see tests/cassettes/README.md).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DailyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionKeyRange,
    StaticPartitionsDefinition,
    TableSchema,
    build_input_context,
    build_output_context,
)
from stored_points import every_point

from dagster_qdrant.spark.datasource import QdrantDataSource
from dagster_qdrant.errors import QdrantError
from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
from dagster_qdrant.dagster_io.resources import QdrantResource, QdrantWriteConfig

SCHEMA = "id long, text string, topic string, vector array<float>"
LETTERS = StaticPartitionsDefinition(["a", "b", "c"])


@pytest.fixture
def io_manager(qdrant_url: str, qdrant_api_key: str | None) -> QdrantPySparkIOManager:
    return QdrantPySparkIOManager(
        qdrant=QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key),
        write=QdrantWriteConfig(batch_size=16),
        progress_interval=3600,
    )


def frame(spark: Any, ids: range, topic: str = "t", size: int = 4) -> Any:
    rows = [(i, f"document {i}", topic, [float(i), 1.0, 0.5, float(i % 3)][:size]) for i in ids]
    return spark.createDataFrame(rows, SCHEMA)


def write(io_manager: QdrantPySparkIOManager, name: str, data: Any, **context: Any) -> dict[str, Any]:
    """handle_output as Dagster calls it; returns the output metadata as plain values."""
    with build_output_context(asset_key=name, **context) as output_context:
        io_manager.handle_output(output_context, data)
        logged = output_context.get_logged_metadata()
    return {key: getattr(value, "value", value) for key, value in logged.items()}


def read(io_manager: QdrantPySparkIOManager, name: str, upstream: dict[str, Any] | None = None, **context: Any):
    upstream_context = build_output_context(asset_key=name, definition_metadata=upstream or {})
    with build_input_context(asset_key=name, upstream_output=upstream_context, **context) as input_context:
        return io_manager.load_input(input_context)


def alias_target(http: Any, alias: str) -> str | None:
    return next((a["collection_name"] for a in http.list_aliases() if a["alias_name"] == alias), None)


def payloads(http: Any, collection: str) -> dict[int, dict[str, Any]]:
    points, _ = http.scroll(collection, {"limit": 1000, "with_payload": True})
    return {point["id"]: point["payload"] for point in points}


def test_unpartitioned_output_is_served_through_an_alias_with_table_metadata(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    metadata = write(io_manager, collection_name, frame(spark, range(1, 31)))
    http = io_manager.qdrant.http()
    version = alias_target(http, collection_name)
    assert version is not None and version.startswith(collection_name + "__")
    assert http.count(collection_name) == 30
    assert payloads(http, collection_name)[7] == {"text": "document 7", "topic": "t"}
    assert metadata["dagster/row_count"] == 30
    assert metadata["dagster/table_name"] == collection_name
    assert metadata["dagster/uri"].endswith(f"/collections/{collection_name}")
    assert metadata["collection"] == version and metadata["alias"] == collection_name
    assert metadata["vector_size"] == 4 and metadata["distance"] == "Cosine"
    assert "points_per_second" not in metadata, "30 points measure Spark's start-up, not throughput"
    schema = metadata["dagster/column_schema"]
    assert isinstance(schema, TableSchema)
    assert [(c.name, c.type) for c in schema.columns] == [
        ("id", "bigint"), ("text", "string"), ("topic", "string"), ("vector", "array<float>"),
    ]


def test_rematerializing_replaces_the_collection_and_drops_the_old_version(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    http = io_manager.qdrant.http()
    write(io_manager, collection_name, frame(spark, range(1, 11), topic="old"))
    first = alias_target(http, collection_name)
    write(io_manager, collection_name, frame(spark, range(100, 105), topic="new"))
    second = alias_target(http, collection_name)
    assert second != first
    assert not http.collection_exists(first)
    assert sorted(payloads(http, collection_name)) == [100, 101, 102, 103, 104]
    assert {p["topic"] for p in payloads(http, collection_name).values()} == {"new"}


def test_overwrite_never_exposes_half_written_collection(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    http = io_manager.qdrant.http()
    write(io_manager, collection_name, frame(spark, range(1, 101)))
    seen: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def count_through_alias() -> None:
        reader = QdrantResource(endpoint=io_manager.qdrant.endpoint).http()
        while not stop.is_set():
            try:
                seen.append(reader.count(collection_name, exact=True))
            except QdrantError as error:  # a missing alias would show up here
                failures.append(error)

    thread = threading.Thread(target=count_through_alias)
    thread.start()
    try:
        slow = io_manager.model_copy(update={"write": QdrantWriteConfig(batch_size=5, max_in_flight=1)})
        write(slow, collection_name, frame(spark, range(1000, 1250)))
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert len(seen) > 10, "the reader should have counted many times during the write"
    assert set(seen) <= {100, 250}, f"a reader saw a half-written collection: {sorted(set(seen))}"
    assert seen[-1] == 250 and http.count(collection_name) == 250


def test_failed_write_keeps_the_previous_collection_serving(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    http = io_manager.qdrant.http()
    write(io_manager, collection_name, frame(spark, range(1, 21)))
    served = alias_target(http, collection_name)
    rows = [(i, "fine", "t", [1.0, 2.0, 3.0, 4.0]) for i in range(100, 140)]
    rows.append((999, "broken", "t", [1.0, float("nan"), 3.0, 4.0]))
    broken = spark.createDataFrame(rows, SCHEMA).coalesce(1)
    with pytest.raises(Exception) as failure:
        write(io_manager, collection_name, broken)
    assert "999" in str(failure.value) or "NaN" in str(failure.value).replace("nan", "NaN")
    assert alias_target(http, collection_name) == served
    assert http.count(collection_name) == 20
    leftovers = [a for a in _collections(http) if a.startswith(collection_name + "__") and a != served]
    assert leftovers == [], "the unfinished version should have been dropped"


def _collections(http: Any) -> list[str]:
    return [c["name"] for c in http.request("GET", "/collections")["collections"]]


def test_an_empty_dataframe_leaves_an_empty_collection_behind_the_alias(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    http = io_manager.qdrant.http()
    write(io_manager, collection_name, frame(spark, range(1, 6)))
    metadata = write(io_manager, collection_name, frame(spark, range(0)))
    assert metadata["dagster/row_count"] == 0 and http.count(collection_name) == 0
    assert metadata["vector_size"] == 4, "the empty version keeps the previous vector configuration"


def test_first_materialization_takes_over_a_plain_collection_with_the_name(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    http = io_manager.qdrant.http()
    http.create_collection(collection_name, {"vectors": {"size": 4, "distance": "Cosine"}})
    http.upsert(collection_name, {"points": [{"id": 1, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {}}]})
    write(io_manager, collection_name, frame(spark, range(10, 15)))
    assert alias_target(http, collection_name) is not None
    assert sorted(payloads(http, collection_name)) == [10, 11, 12, 13, 14]


def test_one_partition_is_replaced_and_the_others_are_left_untouched(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    http = io_manager.qdrant.http()
    write(io_manager, collection_name, frame(spark, range(1, 11), "first"), partition_key="a",
          asset_partitions_def=LETTERS)
    metadata = write(io_manager, collection_name, frame(spark, range(11, 21), "first"), partition_key="b",
                     asset_partitions_def=LETTERS)
    assert metadata["dagster/partition_row_count"] == 10 and metadata["dagster/row_count"] == 20
    before_b = {k: v for k, v in payloads(http, collection_name).items() if v["_partition"] == "b"}

    write(io_manager, collection_name, frame(spark, range(1, 4), "second"), partition_key="a",
          asset_partitions_def=LETTERS)
    after = payloads(http, collection_name)
    assert sorted(k for k, v in after.items() if v["_partition"] == "a") == [1, 2, 3]
    assert {v["topic"] for v in after.values() if v["_partition"] == "a"} == {"second"}
    assert {k: v for k, v in after.items() if v["_partition"] == "b"} == before_b

    # The same partition written twice holds the same points once.
    write(io_manager, collection_name, frame(spark, range(11, 21), "first"), partition_key="b",
          asset_partitions_def=LETTERS)
    assert payloads(http, collection_name) == after


def test_load_input_returns_exactly_the_asked_partitions_and_columns(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    for key, ids in {"a": range(1, 6), "b": range(6, 11), "c": range(11, 16)}.items():
        write(io_manager, collection_name, frame(spark, ids, key), partition_key=key, asset_partitions_def=LETTERS)
    loaded = read(
        io_manager, collection_name, asset_partitions_def=LETTERS,
        asset_partition_key_range=PartitionKeyRange("a", "b"), definition_metadata={"columns": ["id", "topic"]},
    )
    assert loaded.columns == ["id", "topic"]
    rows = sorted((row["id"], row["topic"]) for row in loaded.collect())
    assert rows == [(i, "a") for i in range(1, 6)] + [(i, "b") for i in range(6, 11)]

    one = read(io_manager, collection_name, asset_partitions_def=LETTERS, partition_key="c")
    assert sorted(one.columns) == ["id", "text", "topic", "vector"]
    assert sorted(row["id"] for row in one.collect()) == list(range(11, 16))


def test_load_input_round_trips_renamed_columns_and_honours_input_options(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    asset_metadata = {"id_field": "doc_id", "vector_field": "embedding", "distance": "Dot"}
    data = frame(spark, range(1, 9)).withColumnRenamed("id", "doc_id").withColumnRenamed("vector", "embedding")
    metadata = write(io_manager, collection_name, data, definition_metadata=asset_metadata)
    assert metadata["distance"] == "Dot"
    loaded = read(io_manager, collection_name, upstream=asset_metadata)
    assert sorted(loaded.columns) == ["doc_id", "embedding", "text", "topic"]
    assert sorted(tuple(row) for row in loaded.select(*data.columns).collect()) == sorted(
        tuple(row) for row in data.collect()
    )
    filtered = read(
        io_manager, collection_name, upstream=asset_metadata,
        definition_metadata={"with_vectors": False, "filter": {"must": [{"has_id": [1, 2, 3]}]}},
    )
    assert "embedding" not in filtered.columns
    assert sorted(row["doc_id"] for row in filtered.collect()) == [1, 2, 3]


def test_time_window_and_multi_dimensional_partitions_store_their_key(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    http = io_manager.qdrant.http()
    daily = DailyPartitionsDefinition(start_date="2024-05-01", end_date="2024-05-09")
    write(io_manager, collection_name, frame(spark, range(1, 4)), partition_key="2024-05-02",
          asset_partitions_def=daily)
    assert {p["_partition"] for p in payloads(http, collection_name).values()} == {"2024-05-02"}

    multi = MultiPartitionsDefinition({"day": daily, "letter": LETTERS})
    key = MultiPartitionKey({"day": "2024-05-03", "letter": "b"})
    name = collection_name + "_multi"
    write(io_manager, name, frame(spark, range(1, 4)), partition_key=key, asset_partitions_def=multi)
    write(io_manager, name, frame(spark, range(4, 6)), partition_key=MultiPartitionKey(
        {"day": "2024-05-03", "letter": "c"}), asset_partitions_def=multi)
    assert {p["_partition"] for p in payloads(http, name).values()} == {"2024-05-03|b", "2024-05-03|c"}
    loaded = read(io_manager, name, asset_partitions_def=multi, partition_key=key)
    assert sorted(row["id"] for row in loaded.collect()) == [1, 2, 3]


def test_a_column_named_like_the_partition_field_is_refused(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    data = frame(spark, range(1, 3)).withColumnRenamed("topic", "_partition")
    with pytest.raises(QdrantError, match="partition_field"):
        write(io_manager, collection_name, data, partition_key="a", asset_partitions_def=LETTERS)


def test_outputs_that_are_not_spark_dataframes_are_refused(io_manager: QdrantPySparkIOManager) -> None:
    with pytest.raises(QdrantError, match="pyspark.sql.DataFrame"):
        write(io_manager, "not_a_frame", [1, 2, 3])


def test_alias_moves_in_one_atomic_request_then_the_old_version_is_dropped(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's own requests, recorded in-process (version names carry the time, so no cassette)."""
    from dagster_qdrant.http import QdrantHttp

    sent: list[tuple[str, str, Any]] = []
    original = QdrantHttp.request

    def recording(self: QdrantHttp, method: str, path: str, body: Any = None, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, path, body))
        return original(self, method, path, body, *args, **kwargs)

    monkeypatch.setattr(QdrantHttp, "request", recording)
    name = collection_name
    first = write(io_manager, name, frame(spark, range(1, 6)), run_id="11111111-0000-0000-0000-000000000000")
    second = write(io_manager, name, frame(spark, range(1, 8)), run_id="22222222-0000-0000-0000-000000000000")
    v1, v2 = first["collection"], second["collection"]
    assert v1.startswith(f"{name}__") and "_r11111111_" in v1 and "_r22222222_" in v2
    alias_updates = [body for method, path, body in sent if path == "/collections/aliases"]
    assert alias_updates[0] == {"actions": [
        {"create_alias": {"collection_name": v1, "alias_name": name}},
        {"create_alias": {"collection_name": v1, "alias_name": f"{v1}__served"}},
    ]}
    assert alias_updates[1] == {"actions": [
        {"delete_alias": {"alias_name": name}},
        {"create_alias": {"collection_name": v2, "alias_name": name}},
        {"create_alias": {"collection_name": v2, "alias_name": f"{v2}__served"}},
    ]}
    swap = sent.index(("POST", "/collections/aliases", alias_updates[1]))
    drop = sent.index(("DELETE", f"/collections/{v1}", None))
    assert drop > swap, "the old version is dropped only after the alias has moved"


def test_partition_write_deletes_its_points_by_filter_and_indexes_the_partition_field(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str, sent: list[Any]
) -> None:
    """The driver's requests as sent this run, and the points as the live server holds them.

    No cassette: Spark's workers write to the live server while a replayed driver would not, so a
    replay could not show the old points deleted.
    """
    name = collection_name
    write(io_manager, name, frame(spark, range(1, 4)), partition_key="a", asset_partitions_def=LETTERS)
    write(io_manager, name, frame(spark, range(4, 6)), partition_key="a", asset_partitions_def=LETTERS)
    index = [r.body for r in sent if r.method == "PUT" and r.path.startswith(f"/collections/{name}/index")]
    assert index == [{"field_name": "_partition", "field_schema": "keyword"}]
    deletes = [r.body for r in sent if r.path.startswith(f"/collections/{name}/points/delete")]
    assert deletes == [{"filter": {"must": [{"key": "_partition", "match": {"value": "a"}}]}}]
    options = io_manager.qdrant.spark_read_options(name)
    live = spark.read.format("qdrant").options(**options).schema("id long, text string").load()
    assert sorted(row.id for row in live.collect()) == [4, 5], "the partition's old points are gone"


def _conditions(query_filter: dict[str, Any]) -> list[Any]:
    """Every condition of a filter, nested ``must`` groups flattened."""
    found = []
    for condition in query_filter.get("must", []):
        found.extend(_conditions(condition) if "must" in condition else [condition])
    return found


@pytest.mark.vcr
def test_load_input_asks_qdrant_only_for_the_asked_partitions_and_columns(
    spark: Any, io_manager: QdrantPySparkIOManager, sent: list[Any]
) -> None:
    """The data source runs in-process here (in Spark it runs in the Python workers) so its requests are recorded."""
    name = "cassette_letters"
    for key, ids in {"a": range(1, 4), "b": range(4, 7), "c": range(7, 10)}.items():
        write(io_manager, name, frame(spark, ids, key), partition_key=key, asset_partitions_def=LETTERS)
    upstream = build_output_context(asset_key=name)
    with build_input_context(
        asset_key=name, upstream_output=upstream, asset_partitions_def=LETTERS,
        asset_partition_key_range=PartitionKeyRange("a", "b"), definition_metadata={"columns": ["id", "topic"]},
    ) as context:
        options = io_manager.input_read_options(context)
    source = QdrantDataSource(options)
    reader = source.reader(source.schema())
    rows = [row for part in reader.partitions() for batch in reader.read(part) for row in batch.to_pylist()]
    assert sorted((row["id"], row["topic"]) for row in rows) == [
        (1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "b"), (6, "b")
    ]
    scrolls = [r.body for r in sent if r.path.startswith(f"/collections/{name}/points/scroll")]
    assert scrolls, "the reader scrolls the collection"
    for body in scrolls:
        assert {"key": "_partition", "match": {"any": ["a", "b"]}} in _conditions(body["filter"]), "only a and b"
        assert body["with_payload"] in (["topic"], {"include": ["topic"]}), "only the asked payload column"
        assert not body.get("with_vector"), "no vector column was asked for"


# --- concurrent, failed and killed materializations: one version per asset remains ------------------

_MATERIALIZE_SCRIPT = '''
import json, sys, time
from pathlib import Path

endpoint, name, start, count, batch, workdir, rounds = sys.argv[1:]
start, count, batch, rounds, workdir = int(start), int(count), int(batch), int(rounds), Path(workdir)
from pyspark.sql import SparkSession

spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
from dagster import asset, materialize

from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
from dagster_qdrant.dagster_io.resources import QdrantResource, QdrantWriteConfig


@asset(name=name, metadata={"distance": "Dot"})
def documents():
    rows = [(i, f"from {start}", [float(i), 1.0, 0.5, 2.0]) for i in range(start, start + count)]
    return spark.createDataFrame(rows, "id long, text string, vector array<float>")


manager = QdrantPySparkIOManager(
    qdrant=QdrantResource(endpoint=endpoint), write=QdrantWriteConfig(batch_size=batch, max_in_flight=1),
    progress_interval=3600,
)
(workdir / f"ready-{start}").touch()
for round in range(rounds):
    while not (workdir / f"go-{round}").exists():
        time.sleep(0.02)
    result = materialize([documents], resources={"io_manager": manager}, raise_on_error=False)
    served = None
    if result.success:
        served = result.asset_materializations_for_node(name)[0].metadata["collection"].value
    (workdir / f"result-{round}-{start}.json").write_text(json.dumps({"success": result.success, "collection": served}))
'''


def _versions(http: Any, alias: str) -> list[str]:
    """Every collection named like a version of ``alias`` (the test's names are unique, nothing else matches)."""
    names = [c["name"] for c in http.request("GET", "/collections")["collections"]]
    return sorted(name for name in names if name.startswith(alias + "__"))


def _start_materializing(tmp_path: Path, url: str, name: str, start: int, count: int, batch: int, rounds: int) -> Any:
    import os
    import subprocess
    import sys

    script = tmp_path / "materialize.py"
    script.write_text(_MATERIALIZE_SCRIPT)
    environment = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.Popen(
        [sys.executable, str(script), url, name, str(start), str(count), str(batch), str(tmp_path), str(rounds)],
        env=environment, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _wait_for(condition: Any, what: str, processes: list[Any], timeout: float = 240.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            if process.poll() not in (None, 0):
                raise AssertionError(f"a materializing process failed: {process.stderr.read().decode()[-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_concurrent_materializations_leave_exactly_one_version(
    tmp_path: Path, qdrant_url: str, collection_name: str, io_manager: QdrantPySparkIOManager
) -> None:
    """Two processes materialize the same asset at the same moment, twice (real Dagster materialize)."""
    import json

    http = io_manager.qdrant.http()
    starts, rounds = (0, 10_000), 2
    processes = [_start_materializing(tmp_path, qdrant_url, collection_name, s, 3000, 50, rounds) for s in starts]
    try:
        _wait_for(lambda: all((tmp_path / f"ready-{s}").exists() for s in starts), "both processes", processes)
        for round in range(rounds):
            (tmp_path / f"go-{round}").touch()
            results = [tmp_path / f"result-{round}-{s}.json" for s in starts]
            _wait_for(lambda: all(path.exists() for path in results), f"round {round}", processes)
            outcomes = [json.loads(path.read_text()) for path in results]
            assert all(outcome["success"] for outcome in outcomes), outcomes
            serving = alias_target(http, collection_name)
            assert _versions(http, collection_name) == [serving], "exactly one version remains"
            assert serving in [outcome["collection"] for outcome in outcomes], "a run served what it wrote"
            texts = {point["payload"]["text"] for point in every_point(http, collection_name, with_vector=False)}
            assert len(texts) == 1 and http.count(collection_name) == 3000, "one run's points, whole"
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_killed_materialization_keeps_the_old_version_and_the_next_run_sweeps_its_leftover(
    tmp_path: Path, spark: Any, qdrant_url: str, collection_name: str, io_manager: QdrantPySparkIOManager
) -> None:
    import os
    import signal

    from dagster import asset, materialize

    http = io_manager.qdrant.http()
    current = {"ids": range(1, 51)}

    @asset(name=collection_name)
    def documents():
        return frame(spark, current["ids"], topic="in process")

    assert materialize([documents], resources={"io_manager": io_manager}).success
    old = alias_target(http, collection_name)
    killed = _start_materializing(tmp_path, qdrant_url, collection_name, 0, 20_000, 20, 1)
    try:
        (tmp_path / "go-0").touch()

        def half_written() -> bool:
            unfinished = [name for name in _versions(http, collection_name) if name != old]
            return bool(unfinished) and http.count(unfinished[0]) >= 200

        _wait_for(half_written, "the other process to write 200 points", [killed])
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    leftover = [name for name in _versions(http, collection_name) if name != old]
    assert alias_target(http, collection_name) == old and len(leftover) == 1
    assert http.count(collection_name) == 50, "the alias keeps serving the old version"

    current["ids"] = range(100, 130)
    assert materialize([documents], resources={"io_manager": io_manager}).success
    serving = alias_target(http, collection_name)
    assert _versions(http, collection_name) == [serving], "the dead run's version was swept"
    assert http.count(collection_name) == 30


def test_every_reader_option_in_the_input_metadata_takes_effect_and_unknown_keys_are_refused(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str, qdrant_url: str
) -> None:
    """Through load_input; the Spark workers' scrolls are seen by a recording proxy in front of the server."""
    import json

    from faultproxy import FaultProxy

    write(io_manager, collection_name, frame(spark, range(1, 21)))
    assert read(io_manager, collection_name, definition_metadata={"limit": 3}).count() == 3
    as_json = read(io_manager, collection_name, definition_metadata={"payload_layout": "json"})
    assert "payload" in as_json.columns and "topic" not in as_json.columns
    assert json.loads(as_json.collect()[0]["payload"])["topic"] == "t"
    with FaultProxy(qdrant_url, keep_bodies=True) as proxy:
        proxied = QdrantPySparkIOManager(qdrant=QdrantResource(endpoint=proxy.url), progress_interval=3600)
        for partitioning in ("id_range", "slice"):
            proxy.requests.clear()
            metadata = {"partitioning": partitioning, "num_partitions": 2}
            assert read(proxied, collection_name, definition_metadata=metadata).count() == 20
            scrolls = [json.loads(r.body) for r in list(proxy.requests) if r.path.endswith("/points/scroll")]
            sliced = [body for body in scrolls if '"slice"' in json.dumps(body.get("filter"))]
            assert scrolls and (bool(sliced) == (partitioning == "slice")), partitioning
    with pytest.raises(QdrantError, match=r"'limt' \(did you mean 'limit'\?\)"):
        read(io_manager, collection_name, definition_metadata={"limt": 3})
    with pytest.raises(QdrantError, match=r"cannot set \['endpoint'\].*QdrantResource"):
        read(io_manager, collection_name, definition_metadata={"endpoint": "http://elsewhere:6333"})
