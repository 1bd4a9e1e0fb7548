"""Faults survived: transient failures are retried without losing or duplicating a point; permanent
ones stop the write at once with a clear error that says what was and was not written.

Writes go through ``faultproxy.FaultProxy`` (client -> proxy -> embedded Qdrant on loopback), which
injects 503s, 429s with Retry-After, resets, dropped connections (before and after the server applied
the write), slow answers and truncated bodies at seeded rates. Every check reads the server directly,
bypassing both the proxy and the library: the point count equals the rows, no row is stored twice,
and every payload and vector is exactly what was written.

Each fault test adds a line to a JSON summary (``reliability-summary.json`` under pytest's base temp
directory, or the path in ``RELIABILITY_SUMMARY``); docs/reliability.md quotes those figures.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from faultproxy import Canned, FaultProxy, create_collection, free_port, server_count, server_points
from waiting import wait_until

from dagster_qdrant.errors import QdrantError, QdrantWriteError
from dagster_qdrant.options import WriteOptions, build_qdrant_write_config

DIMENSION = 8
UPSERT_PATH = r"/collections/[^/]+/points(\?|$)"
TRANSIENT_FAULTS = ("503", "429", "reset", "drop_before", "drop_after", "slow", "truncate")
MIXED_RATES = {
    "503": 0.05,
    "429": 0.04,
    "reset": 0.03,
    "drop_before": 0.03,
    "drop_after": 0.05,
    "slow": 0.03,
    "truncate": 0.03,
}


# --- rows, checks and the summary ------------------------------------------------------------------


def make_rows(count: int, *, with_ids: bool = True, seed: int = 0, start: int = 0) -> list[dict[str, Any]]:
    """Rows with exact float32 vectors (so equality after a round trip is exact) and a unique ``row`` key."""
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    rows = []
    for index in range(count):
        number = start + index
        row: dict[str, Any] = {
            "vector": [float(value) for value in vectors[index]],
            "row": number,
            "title": f"row {number}",
            "tags": [f"tag{number % 3}", f"group{number % 7}"],
        }
        if with_ids:
            row["id"] = number
        rows.append(row)
    return rows


def assert_exactly_stored(url: str, collection: str, rows: list[dict[str, Any]]) -> dict[str, int]:
    """The server holds each row exactly once with its payload and vector; returns lost/duplicate counts."""
    points = server_points(url, collection)
    by_row = Counter(point["payload"].get("row") for point in points.values())
    duplicates = sum(times - 1 for times in by_row.values() if times > 1)
    expected = {row["row"]: row for row in rows}
    lost = sum(1 for key in expected if key not in by_row)
    assert duplicates == 0, f"{duplicates} rows stored more than once: {[k for k, n in by_row.items() if n > 1][:10]}"
    assert lost == 0, f"{lost} of {len(rows)} rows missing"
    assert len(points) == len(rows), f"{len(points)} points for {len(rows)} rows"
    for point_id, point in points.items():
        row = expected[point["payload"]["row"]]
        if "id" in row:
            assert point_id == row["id"]
        assert point["payload"] == {key: value for key, value in row.items() if key not in ("id", "vector")}
        np.testing.assert_array_equal(
            np.asarray(point["vector"], dtype=np.float32), np.asarray(row["vector"], dtype=np.float32)
        )
    return {"points_written": len(points), "points_lost": lost, "duplicates": duplicates}


_SUMMARY: list[dict[str, Any]] = []


@pytest.fixture(scope="session")
def reliability_summary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """Collects one record per fault run; written as JSON when the session ends."""
    yield _SUMMARY
    if not _SUMMARY:
        return
    target = Path(os.environ.get("RELIABILITY_SUMMARY") or tmp_path_factory.getbasetemp() / "reliability-summary.json")
    target.write_text(json.dumps(_SUMMARY, indent=2))
    print(f"\nreliability summary: {target}")


def record(summary: list[dict[str, Any]], name: str, proxy: FaultProxy | None, rows: int, outcome: dict[str, int], **extra: Any) -> None:
    entry = {
        "test": name,
        "rows": rows,
        "faults_injected": proxy.faults_injected() if proxy else {},
        "requests_through_proxy": proxy.stats["requests"] if proxy else 0,
        **outcome,
        **extra,
    }
    summary.append(entry)
    print(json.dumps(entry))


def ids_in_body(body: bytes) -> list[Any]:
    """Point ids of an upsert body, in either the ``batch`` or the ``points`` form."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if "batch" in data:
        return list(data["batch"].get("ids") or [])
    return [point.get("id") for point in data.get("points", [])]


def write_config(endpoint: str, collection: str, **options: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "create_collection": True,
        "distance": "Dot",
        "batch_size": 40,
        "max_retries": 6,
        "backoff_factor": 0.01,
        "timeout": 5,
    }
    settings.update(options)
    return build_qdrant_write_config(endpoint, collection, **settings)


def write_points(rows: Any, config: dict[str, Any]) -> Any:
    from dagster_qdrant.points.without_spark import write_qdrant_points

    return write_qdrant_points(rows, config)


# --- the proxy itself ------------------------------------------------------------------------------


def test_fault_proxy_forwards_faithfully_when_no_fault_is_chosen(qdrant_url: str, collection_name: str) -> None:
    import requests

    with FaultProxy(qdrant_url) as proxy:
        direct = requests.get(qdrant_url + "/", timeout=10).json()
        through = requests.get(proxy.url + "/", timeout=10).json()
        assert through["version"] == direct["version"]
        session = requests.Session()
        answer = session.put(
            f"{proxy.url}/collections/{collection_name}", json={"vectors": {"size": 2, "distance": "Dot"}}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        missing = session.get(f"{proxy.url}/collections/{collection_name}_missing", timeout=10)
        assert missing.status_code == 404, "error answers must pass through unchanged"
    assert server_count(qdrant_url, collection_name) == 0
    assert proxy.stats["requests"] == 3 and not proxy.faults_injected()


# --- transient faults: retried, nothing lost, nothing duplicated ---------------------------------


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_write_survives_each_transient_fault_without_loss_or_duplicates(
    fault: str, qdrant_url: str, collection_name: str, reliability_summary: list[dict[str, Any]]
) -> None:
    rows = make_rows(240)
    with FaultProxy(
        qdrant_url,
        methods=("PUT", "POST"),
        path_pattern=UPSERT_PATH,
        script=[fault, fault, None, fault],
        retry_after="0",
        slow_seconds=1.5,
    ) as proxy:
        report = write_points(rows, write_config(proxy.url, collection_name, timeout=0.75, max_in_flight=2))
    assert proxy.faults_injected() == {fault: 3}
    assert report.points_written == len(rows)
    outcome = assert_exactly_stored(qdrant_url, collection_name, rows)
    record(reliability_summary, f"write_qdrant_points, ids given, fault {fault}", proxy, len(rows), outcome,
           rate="3 of the first 4 upserts")


@pytest.mark.parametrize("fault", ("drop_after", "truncate", "slow"))
def test_write_without_ids_is_not_duplicated_when_the_server_applied_a_failed_request(
    fault: str, qdrant_url: str, collection_name: str, reliability_summary: list[dict[str, Any]]
) -> None:
    """The server applied the write but the client saw a failure: the retry must land on the same ids."""
    rows = make_rows(200, with_ids=False)
    with FaultProxy(
        qdrant_url, methods=("PUT", "POST"), path_pattern=UPSERT_PATH, script=[fault] * 4, slow_seconds=1.5
    ) as proxy:
        report = write_points(rows, write_config(proxy.url, collection_name, timeout=0.75, id_field=None))
    assert proxy.faults_injected() == {fault: 4}
    assert report.points_written == len(rows)
    outcome = assert_exactly_stored(qdrant_url, collection_name, rows)
    record(reliability_summary, f"write_qdrant_points, derived ids, fault {fault}", proxy, len(rows), outcome,
           rate="the first 4 upserts")


def test_write_survives_random_faults_at_seeded_rates(
    qdrant_url: str, collection_name: str, reliability_summary: list[dict[str, Any]]
) -> None:
    rows = make_rows(3000, with_ids=False, seed=1)
    with FaultProxy(
        qdrant_url,
        methods=("PUT", "POST"),
        path_pattern=UPSERT_PATH,
        rates=MIXED_RATES,
        seed=7,
        retry_after="0",
        slow_seconds=1.0,
    ) as proxy:
        report = write_points(
            rows, write_config(proxy.url, collection_name, batch_size=50, timeout=0.5, max_retries=10, id_field=None)
        )
    assert sum(proxy.faults_injected().values()) >= 5, f"too few faults to mean anything: {proxy.faults_injected()}"
    assert report.points_written == len(rows)
    outcome = assert_exactly_stored(qdrant_url, collection_name, rows)
    record(reliability_summary, "write_qdrant_points, derived ids, mixed faults", proxy, len(rows), outcome,
           rate=f"{sum(MIXED_RATES.values()):.0%} of upserts (seed 7): {MIXED_RATES}")


def test_retry_after_is_honoured(qdrant_url: str, collection_name: str) -> None:
    rows = make_rows(30)
    with FaultProxy(
        qdrant_url, methods=("PUT",), path_pattern=UPSERT_PATH, script=["429"], retry_after="2"
    ) as proxy:
        started = time.monotonic()
        write_points(rows, write_config(proxy.url, collection_name, backoff_factor=0.01, batch_size=100))
        elapsed = time.monotonic() - started
    assert proxy.faults_injected() == {"429": 1}
    assert 1.9 <= elapsed < 15, f"a 429 with Retry-After: 2 must delay the retry by 2 s (took {elapsed:.2f} s)"
    assert_exactly_stored(qdrant_url, collection_name, rows)


def test_retries_are_bounded_and_end_in_a_clear_error(qdrant_url: str, collection_name: str) -> None:
    rows = make_rows(100)
    with FaultProxy(qdrant_url, methods=("PUT", "POST"), path_pattern=UPSERT_PATH, rates={"503": 1.0}) as proxy:
        with pytest.raises(QdrantError) as raised:
            write_points(rows, write_config(proxy.url, collection_name, max_retries=2, max_in_flight=1, batch_size=50))
    assert proxy.count(fault="503") == 3, "one try and max_retries=2 retries, then stop"
    error = raised.value
    assert error.status == 503 and "503" in str(error)
    assert collection_name in str(error)
    if isinstance(error, QdrantWriteError):
        assert error.written == 0 and error.failed == len(rows)
    assert server_count(qdrant_url, collection_name) == 0


# --- permanent faults: raised at once, with what was and was not written --------------------------


def _reject(message: str, when: Any) -> Any:
    """A proxy rule answering 400 with Qdrant's error shape for upserts whose ids satisfy ``when``."""

    def rule(method: str, path: str, body: bytes) -> Canned | None:
        if when(ids_in_body(body)):
            error = {"status": {"error": f"Wrong input: {message}"}, "time": 0.0}
            return Canned(400, orjson.dumps(error), {"Content-Type": "application/json"})
        return None

    return rule


def test_client_error_is_not_retried_and_names_status_message_collection_and_ids(
    qdrant_url: str, collection_name: str
) -> None:
    rows = make_rows(100)
    rule = _reject("injected bad point", lambda ids: 0 in ids)
    with FaultProxy(qdrant_url, methods=("PUT", "POST"), path_pattern=UPSERT_PATH, rule=rule, keep_bodies=True) as proxy:
        with pytest.raises(QdrantError) as raised:
            write_points(rows, write_config(proxy.url, collection_name, batch_size=50, max_in_flight=1))
    assert proxy.count(fault="canned_400") == 1, "a 400 must never be retried"
    error = raised.value
    text = str(error)
    assert error.status == 400 and "400" in text
    assert "injected bad point" in text, f"the server's message is missing: {text}"
    assert collection_name in text
    assert 0 in (getattr(error, "failed_ids", None) or error.point_ids) and "0" in text


def test_partial_failure_reports_points_written_and_not_written(
    qdrant_url: str, collection_name: str, reliability_summary: list[dict[str, Any]]
) -> None:
    rows = make_rows(500)
    rule = _reject("injected permanent failure", lambda ids: 300 in ids)
    with FaultProxy(qdrant_url, methods=("PUT", "POST"), path_pattern=UPSERT_PATH, rule=rule) as proxy:
        with pytest.raises(QdrantWriteError) as raised:
            write_points(rows, write_config(proxy.url, collection_name, batch_size=50, max_in_flight=1))
    error = raised.value
    stored = server_count(qdrant_url, collection_name)
    assert error.written == stored == 300, f"claimed {error.written}, server holds {stored}"
    assert error.failed == 200
    assert f"{error.written} points written" in str(error) and f"{error.failed} points not written" in str(error)
    assert 300 in error.failed_ids and "injected permanent failure" in str(error)
    record(reliability_summary, "write_qdrant_points, permanent 400 on batch 7 of 10", proxy, len(rows),
           {"points_written": stored, "points_lost": 0, "duplicates": 0}, reported_written=error.written,
           reported_not_written=error.failed)


def test_partial_failure_counts_are_true_with_requests_in_flight(qdrant_url: str, collection_name: str) -> None:
    """Several batches in flight when one fails: the reported counts must still match the server."""
    rows = make_rows(1000)
    rule = _reject("injected permanent failure", lambda ids: 520 in ids)
    with FaultProxy(qdrant_url, methods=("PUT", "POST"), path_pattern=UPSERT_PATH, rule=rule) as proxy:
        with pytest.raises(QdrantWriteError) as raised:
            write_points(rows, write_config(proxy.url, collection_name, batch_size=40, max_in_flight=4))
    error = raised.value
    stored = server_count(qdrant_url, collection_name)
    assert error.written == stored, f"claimed {error.written} written, the server holds {stored}"
    assert error.written + error.failed == len(rows)
    assert 520 in error.failed_ids


# --- Spark: the same guarantees through the data source -------------------------------------------


def _frame(spark: Any, rows: list[dict[str, Any]], partitions: int = 4) -> Any:
    """A DataFrame of ``rows`` (vector array<float>, payload columns) split over ``partitions``."""
    has_ids = "id" in rows[0]
    schema = ("id long, " if has_ids else "") + "vector array<float>, row long, title string, tags array<string>"
    records = [
        (([row["id"]] if has_ids else []) + [row["vector"], row["row"], row["title"], row["tags"]]) for row in rows
    ]
    return spark.createDataFrame(records, schema).repartition(partitions)


def _spark_write(frame: Any, config: dict[str, Any], mode: str = "append") -> None:
    frame.write.format("qdrant").options(**WriteOptions.from_mapping(config).spark_options()).mode(mode).save()


def test_spark_write_survives_random_faults_without_loss_or_duplicates(
    spark: Any, qdrant_url: str, collection_name: str, reliability_summary: list[dict[str, Any]]
) -> None:
    rows = make_rows(1200, with_ids=False, seed=2)
    create_collection(qdrant_url, collection_name, DIMENSION)
    with FaultProxy(
        qdrant_url,
        methods=("PUT", "POST"),
        path_pattern=UPSERT_PATH,
        rates=MIXED_RATES,
        seed=11,
        retry_after="0",
        slow_seconds=1.0,
    ) as proxy:
        config = write_config(proxy.url, collection_name, batch_size=50, timeout=0.5, max_retries=10, id_field=None)
        _spark_write(_frame(spark, rows, partitions=2), config)
    assert sum(proxy.faults_injected().values()) >= 3, proxy.faults_injected()
    outcome = assert_exactly_stored(qdrant_url, collection_name, rows)
    record(reliability_summary, "Spark data source (2 partitions), derived ids, mixed faults", proxy, len(rows),
           outcome, rate=f"{sum(MIXED_RATES.values()):.0%} of upserts (seed 11)")


def test_rewriting_the_same_data_never_duplicates_points(spark: Any, qdrant_url: str, collection_name: str) -> None:
    """A Dagster re-execution or a Spark job re-run writes the same rows again: same ids, no duplicates."""
    rows = make_rows(300, with_ids=False, seed=3)
    config = write_config(qdrant_url, collection_name, id_field=None)
    write_points(rows, config)
    write_points(rows, config)
    frame = _frame(spark, rows, partitions=2)
    _spark_write(frame, config)
    _spark_write(frame, config)
    assert_exactly_stored(qdrant_url, collection_name, rows)


def test_spark_write_survives_the_server_killed_and_restarted(
    spark: Any, tmp_path: Path, collection_name: str, reliability_summary: list[dict[str, Any]]
) -> None:
    """kill -9 of the embedded server in the middle of a Spark write; restarted on the same port and data."""
    from dagster_qdrant.embedded import start_embedded_qdrant

    port = free_port()
    data = tmp_path / "qdrant"
    server = start_embedded_qdrant(data, port=port)
    url = server.url
    rows = make_rows(4000, with_ids=False, seed=4)
    create_collection(url, collection_name, DIMENSION)
    failure: list[BaseException] = []
    # The proxy only paces the upserts (each answer held 20 ms) so the kill lands mid-write.
    with FaultProxy(url, methods=("PUT",), path_pattern=UPSERT_PATH, rates={"slow": 1.0}, slow_seconds=0.02) as pacer:
        config = write_config(
            pacer.url, collection_name, batch_size=25, max_retries=12, backoff_factor=0.2, timeout=10, id_field=None
        )

        def write() -> None:
            try:
                _spark_write(_frame(spark, rows, partitions=2), config)
            except BaseException as error:  # noqa: BLE001 - handed to the test thread
                failure.append(error)

        writer = threading.Thread(target=write)
        writer.start()
        wait_until(
            lambda: not writer.is_alive() or server_count(url, collection_name) >= 400, 120, "400 points written"
        )
        assert writer.is_alive(), "the write finished before the kill: make it longer"
        before_kill = server_count(url, collection_name)
        server.kill()
        # restart only once an upsert has met the dead server, so the kill lands mid-write
        wait_until(lambda: pacer.stats["upstream_down"] or not writer.is_alive(), 60, "an upsert to meet the outage")
        server = start_embedded_qdrant(data, port=port)
        try:
            writer.join(timeout=300)
            assert not writer.is_alive(), "the write never finished after the restart"
            if failure:
                error = failure[0]
                text = str(error)
                assert "Qdrant" in text, f"not a clear error: {text[-1500:]}"
                pytest.fail(f"the write did not survive the restart: {text[-1500:]}")
            outcome = assert_exactly_stored(url, collection_name, rows)
        finally:
            server.stop()
    record(reliability_summary, "Spark data source (2 partitions), embedded server kill -9 + restart", pacer,
           len(rows), outcome, rate=f"1 kill after {before_kill} points")


# --- Dagster: a failed replacement fails the run and keeps the previous version serving ------------


def test_failed_replacement_fails_the_run_with_counts_and_keeps_the_previous_version_serving(
    spark: Any, qdrant_url: str, collection_name: str
) -> None:
    from dagster import asset, materialize

    from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
    from dagster_qdrant.dagster_io.resources import QdrantResource

    first, second = make_rows(120, seed=5), make_rows(120, seed=6, start=1000)
    current = {"rows": first}

    @asset(name=collection_name, metadata={"batch_size": 20, "max_in_flight": 1, "distance": "Dot"})
    def documents():
        return _frame(spark, current["rows"], partitions=1)

    rule = _reject("injected permanent failure", lambda ids: 1060 in ids)
    with FaultProxy(qdrant_url, methods=("PUT", "POST"), path_pattern=UPSERT_PATH, rule=rule) as proxy:
        resource = QdrantResource(endpoint=proxy.url, max_retries=1, backoff_factor=0.01)
        manager = QdrantPySparkIOManager(qdrant=resource)
        assert materialize([documents], resources={"io_manager": manager}).success
        serving_before = {entry["alias_name"]: entry["collection_name"] for entry in _aliases(qdrant_url)}
        assert collection_name in serving_before, "an unpartitioned asset is served through an alias"

        current["rows"] = second
        result = materialize([documents], resources={"io_manager": manager}, raise_on_error=False)
    assert not result.success
    failure = "\n".join(event.message or "" for event in result.all_events if event.is_step_failure)
    failure += "\n".join(
        repr(event.event_specific_data) for event in result.all_events if event.is_step_failure
    )
    assert "injected permanent failure" in failure, failure[-2000:]
    assert "60 points written" in failure and "60 points not written" in failure, failure[-2000:]
    serving_after = {entry["alias_name"]: entry["collection_name"] for entry in _aliases(qdrant_url)}
    assert serving_after[collection_name] == serving_before[collection_name], "the alias moved to a failed write"
    assert_exactly_stored(qdrant_url, collection_name, first)
    leftovers = [name for name in _collections(qdrant_url) if name.startswith(collection_name)]
    assert leftovers == [serving_before[collection_name]], f"the failed version was not dropped: {leftovers}"


def _aliases(url: str) -> list[dict[str, str]]:
    import requests

    return requests.get(f"{url}/aliases", timeout=10).json()["result"]["aliases"]


def _collections(url: str) -> list[str]:
    import requests

    return [entry["name"] for entry in requests.get(f"{url}/collections", timeout=10).json()["result"]["collections"]]


# --- reads: a page cut off or refused is fetched again, nothing lost or repeated -------------------


@pytest.mark.parametrize("fault", ("truncate", "reset", "drop_after", "503"))
def test_read_survives_a_faulty_scroll_page_and_returns_every_point_once(
    fault: str, qdrant_url: str, collection_name: str, reliability_summary: list[dict[str, Any]]
) -> None:
    from dagster_qdrant.spark.datasource import QdrantDataSource

    rows = make_rows(300)
    write_points(rows, write_config(qdrant_url, collection_name))
    with FaultProxy(qdrant_url, methods=("POST",), path_pattern=r"/points/scroll$", script=[None, fault, fault]) as proxy:
        source = QdrantDataSource(
            {"endpoint": proxy.url, "collection": collection_name, "with_vectors": "true", "page_size": "64",
             "num_partitions": "1", "max_retries": "4", "backoff_factor": "0.01", "timeout": "5"}
        )
        reader = source.reader(source.schema())
        batches = [batch for partition in reader.partitions() for batch in reader.read(partition)]
    assert proxy.faults_injected() == {fault: 2}
    read = {row["row"]: row for batch in batches for row in batch.to_pylist()}
    returned = sum(batch.num_rows for batch in batches)
    outcome = {"points_read": returned, "points_lost": len(rows) - len(read), "duplicates": returned - len(read)}
    record(reliability_summary, f"data source read, fault {fault}", proxy, len(rows), outcome,
           rate="2 of the first 3 scroll pages")
    assert returned == len(rows) == len(read), "each point exactly once"
    for row in rows:
        assert np.array_equal(np.float32(read[row["row"]]["vector"]), np.float32(row["vector"]))
