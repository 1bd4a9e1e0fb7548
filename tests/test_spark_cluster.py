"""format("qdrant") on a real Spark standalone cluster: a master and two workers, each its own JVM.

What this proves that local mode cannot: the data source is pickled to executors in other JVMs and
imported by their Python workers (nothing lives only on the driver), every task reaches Qdrant on its
own, and the points written by several executors arrive exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from spark_cluster import SparkStandaloneCluster, run_program

from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions

pytestmark = pytest.mark.cluster

ROWS = 2000
DIMENSION = 8
PARTITIONS = 4


def expected_vector(point_id: int) -> list[float]:
    """Same formula as the cluster program; multiples of 1/8 survive float32 exactly."""
    return [((point_id * (k + 1)) % 97) / 8.0 for k in range(DIMENSION)]


def test_cluster_writes_and_reads_every_point_exactly_once(
    tmp_path: Path, qdrant_url: str, qdrant_api_key: str | None, collection_name: str
) -> None:
    started = time.monotonic()
    cluster = SparkStandaloneCluster(tmp_path / "cluster", workers=2)
    try:
        # The workers register while the driver starts: the client waits for both executors.
        cluster.start(wait_for_workers=False)
        master_seconds = time.monotonic() - started
        result = run_program(
            "cluster_round_trip",
            {
                "master": cluster.master_url,
                "url": qdrant_url,
                "api_key": qdrant_api_key,
                "collection": collection_name,
                "rows": ROWS,
                "dimension": DIMENSION,
                "partitions": PARTITIONS,
                "executors": 2,
            },
            tmp_path / "client.log",
            timeout=300,
        )
        state = cluster.master_state()
    finally:
        cluster.stop()

    # The work ran in two executors' Python workers, not in the driver.
    assert result["executors"] == 2
    assert len(result["task_parent_pids"]) == 2
    assert result["driver_pid"] not in result["task_parent_pids"]
    assert state["aliveworkers"] == 2
    assert [app["name"] for app in state["completedapps"]] == ["dagster-qdrant-cluster-test"]

    # Qdrant itself, asked directly, holds every point once.
    http = QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key))
    assert http.count(collection_name, exact=True) == ROWS

    # And the data source read them back across partitions, each once, with its vector and payload.
    points = result["points"]
    ids = [point_id for point_id, _, _ in points]
    assert len(ids) == ROWS
    assert sorted(ids) == list(range(ROWS))
    assert result["read_partitions"] == PARTITIONS
    for point_id, vector, text in points:
        assert vector == expected_vector(point_id), point_id
        assert text == f"row-{point_id}"
    print(f"master up in {master_seconds:.1f}s; client {result['timings']}; total {time.monotonic() - started:.1f}s")
