"""Load: 8 concurrent writers and 8 concurrent readers against one server for a bounded time.

Nothing may be lost or duplicated, no reader may see the point count go backwards while writers only
add, and no request may fail. The fast version runs in the normal suite (about 10 s); the long one,
with faults injected into the writers' upserts, runs with ``-m stress``. Each run writes its figures
to ``load-summary.json`` under pytest's base temp directory (or ``LOAD_SUMMARY``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from waiting import wait_until
from test_reliability import MIXED_RATES, UPSERT_PATH, assert_exactly_stored, make_rows

from dagster_qdrant.options import ConnectionOptions, build_qdrant_write_config

WRITERS = 8
READERS = 8
ROWS_PER_CALL = 150
ID_SPACE_PER_WRITER = 10_000_000


def _writer(endpoint: str, collection: str, number: int, deadline: float, written: list[list[dict[str, Any]]],
            errors: list[BaseException]) -> None:
    """Write calls of ROWS_PER_CALL rows (ids in this writer's own range) until the deadline."""
    from dagster_qdrant.points.without_spark import write_qdrant_points

    config = build_qdrant_write_config(
        endpoint, collection, create_collection=True, distance="Dot", batch_size=50, max_retries=10,
        backoff_factor=0.02, timeout=5,
    )
    call = 0
    try:
        while time.monotonic() < deadline:
            rows = make_rows(ROWS_PER_CALL, seed=number * 1000 + call, start=number * ID_SPACE_PER_WRITER + call * ROWS_PER_CALL)
            report = write_qdrant_points(rows, config)
            assert report.points_written == len(rows)
            written[number].extend(rows)
            call += 1
    except BaseException as error:  # noqa: BLE001 - reported by the test thread
        errors.append(error)


def _reader(endpoint: str, collection: str, deadline: float, counts: list[int], errors: list[BaseException]) -> None:
    """Count and scroll until the deadline; the count seen must never decrease."""
    from dagster_qdrant.http import QdrantHttp

    client = QdrantHttp(ConnectionOptions(endpoint=endpoint, max_retries=5, backoff_factor=0.02, timeout=10))
    last = 0
    try:
        wait_until(lambda: client.collection_exists(collection), deadline - time.monotonic(), f"{collection!r} to exist")
        while time.monotonic() < deadline:
            count = client.count(collection)
            assert count >= last, f"the point count went backwards: {last} -> {count}"
            last = count
            points, _ = client.scroll(collection, {"limit": 64, "with_payload": True, "with_vector": True})
            assert all(point["payload"].get("row") is not None for point in points)
            counts.append(count)
    except BaseException as error:  # noqa: BLE001 - reported by the test thread
        errors.append(error)


def _run_load(url: str, write_endpoint: str, collection: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    written: list[list[dict[str, Any]]] = [[] for _ in range(WRITERS)]
    counts: list[int] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(write_endpoint, collection, number, deadline, written, errors))
        for number in range(WRITERS)
    ] + [threading.Thread(target=_reader, args=(url, collection, deadline, counts, errors)) for _ in range(READERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "a load thread hung"
    assert not errors, f"{len(errors)} thread(s) failed; first: {errors[0]!r}"
    rows = [row for per_writer in written for row in per_writer]
    assert rows, "no writer finished a single call"
    assert counts, "no reader completed a single read"
    outcome = assert_exactly_stored(url, collection, rows)
    return {
        "writers": WRITERS,
        "readers": READERS,
        "seconds": round(elapsed, 1),
        "rows": len(rows),
        "reads": len(counts),
        "points_per_second": round(len(rows) / elapsed),
        **outcome,
    }


def _save(summary: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    target = Path(os.environ.get("LOAD_SUMMARY") or tmp_path_factory.getbasetemp() / "load-summary.json")
    existing = json.loads(target.read_text()) if target.exists() else []
    target.write_text(json.dumps(existing + [summary], indent=2))
    print(json.dumps(summary))


def test_concurrent_writers_and_readers_lose_and_duplicate_nothing(
    qdrant_url: str, collection_name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    summary = _run_load(qdrant_url, qdrant_url, collection_name, seconds=8)
    _save({"test": "load, 8 writers + 8 readers, no faults", **summary}, tmp_path_factory)


@pytest.mark.stress
def test_concurrent_writers_and_readers_under_faults_for_a_minute(
    qdrant_url: str, collection_name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with FaultProxy(
        qdrant_url, methods=("PUT", "POST"), path_pattern=UPSERT_PATH, rates=MIXED_RATES, seed=23,
        retry_after="0", slow_seconds=6.0,
    ) as proxy:
        summary = _run_load(qdrant_url, proxy.url, collection_name, seconds=60)
    _save({"test": "load, 8 writers (through faults) + 8 readers", "faults_injected": proxy.faults_injected(),
           **summary}, tmp_path_factory)


@pytest.mark.stress
def test_writes_survive_the_server_killed_three_times(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """kill -9 and restart (same port, same data) three times during one long write_qdrant_points call."""
    from faultproxy import create_collection, free_port, server_count

    from dagster_qdrant.embedded import start_embedded_qdrant
    from dagster_qdrant.points.without_spark import write_qdrant_points

    port, data = free_port(), tmp_path / "qdrant"
    server = start_embedded_qdrant(data, port=port)
    rows = make_rows(20_000, with_ids=False, seed=99)
    create_collection(server.url, "killed", 8)
    failures: list[BaseException] = []
    with FaultProxy(server.url, methods=("PUT",), path_pattern=UPSERT_PATH, rates={"slow": 1.0}, slow_seconds=0.02) as pacer:
        config = build_qdrant_write_config(
            pacer.url, "killed", id_field=None, distance="Dot", batch_size=50, max_retries=12, backoff_factor=0.2,
            timeout=10,
        )
        writer = threading.Thread(target=lambda: _capture(failures, write_qdrant_points, rows, config))
        writer.start()
        kills = []
        for threshold in (3000, 8000, 14000):
            wait_until(
                lambda: not writer.is_alive() or server_count(server.url, "killed") >= threshold,
                600,
                f"{threshold} points written",
            )
            if not writer.is_alive():
                break
            kills.append(server_count(server.url, "killed"))
            outages = pacer.stats["upstream_down"]
            server.kill()
            # restart once an upsert has met the dead server, so each kill lands mid-write
            wait_until(
                lambda: pacer.stats["upstream_down"] > outages or not writer.is_alive(), 60, "an upsert to meet the outage"
            )
            server = start_embedded_qdrant(data, port=port)
        writer.join(timeout=600)
    try:
        assert not failures, f"the write did not survive: {failures[0]!r}"
        assert len(kills) == 3, f"the write ended after {len(kills)} kill(s): make it longer"
        outcome = assert_exactly_stored(server.url, "killed", rows)
    finally:
        server.stop()
    _save({"test": "write_qdrant_points, embedded server kill -9 + restart x3", "rows": len(rows),
           "kills_after_points": kills, **outcome}, tmp_path_factory)


def _capture(failures: list[BaseException], function: Any, *args: Any) -> None:
    try:
        function(*args)
    except BaseException as error:  # noqa: BLE001 - reported by the test thread
        failures.append(error)
