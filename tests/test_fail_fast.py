"""A server that never answers, or a host that accepts no connection, fails a write in seconds, not minutes.

Two stand-ins nobody on the project wrote the behaviour of: the kernel's own TCP. A listening socket whose
connections are accepted and read but never answered (a stopped server, a port-forward to a dead pod),
and a listening socket whose accept queue is full, so the kernel drops new SYNs (a black-holed host).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dagster import DagsterInstance, asset, materialize

from dagster_qdrant import write_qdrant_points
from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
from dagster_qdrant.dagster_io.resources import QdrantResource
from dagster_qdrant.errors import QdrantConnectionError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions
from faultproxy import FaultProxy

WAIT = 1.0
"""connect_timeout in these tests; the default is 5 s."""
MARGIN = 5.0
"""Seconds allowed past WAIT for the client's own work on a loaded machine."""
READ_TIMEOUT = ConnectionOptions(endpoint="http://127.0.0.1:6333").timeout
"""The default read timeout (30 s): before the check, a silent server cost four of them, after Spark's work.
A materialization must fail in less than one, Dagster's own run overhead included."""


class SilentServer:
    """Accepts every connection and reads what arrives, never answering."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.received: list[bytes] = []
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.received.append(data)

    def request_lines(self) -> list[str]:
        with self._lock:
            return [chunk.split(b"\r\n", 1)[0].decode() for chunk in self.received if b"HTTP/1.1\r\n" in chunk]

    def close(self) -> None:
        self._socket.close()
        with self._lock:
            for connection in self._connections:
                connection.close()


class BlackHole:
    """A port whose accept queue is full: the kernel drops new SYNs, so a connect waits and times out."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(0)
        address = self._socket.getsockname()
        self.url = f"http://127.0.0.1:{address[1]}"
        self._fillers: list[socket.socket] = []
        while True:  # fill the queue until a connect no longer gets through
            filler = socket.socket()
            filler.settimeout(0.5)
            try:
                filler.connect(address)
            except (TimeoutError, socket.timeout):
                filler.close()
                break
            self._fillers.append(filler)

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._socket.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def spark_job_ids(spark: Any) -> set[int]:
    """Every job this SparkContext ran (with no job group, as Dagster's steps run them)."""
    return set(spark.sparkContext.statusTracker().getJobIdsForGroup(None))


def materialize_points(spark: Any, endpoint: str, name: str) -> tuple[Exception, float]:
    """Materialize a 100-point Spark asset into ``endpoint``; the error it fails with and the seconds it took."""
    from pyspark.sql import functions

    @asset(name=name, metadata={"id_field": "id", "vector_field": "vector"})
    def points() -> Any:
        return spark.range(100).select("id", functions.array(functions.col("id").cast("float")).alias("vector"))

    manager = QdrantPySparkIOManager(qdrant=QdrantResource(endpoint=endpoint, connect_timeout=WAIT))
    started = time.monotonic()
    with pytest.raises(QdrantConnectionError) as raised:
        materialize([points], resources={"io_manager": manager}, instance=DagsterInstance.ephemeral())
    return raised.value, time.monotonic() - started


def test_a_server_that_never_answers_fails_the_output_in_seconds_before_any_spark_job(
    spark: Any, silent: SilentServer, collection_name: str
) -> None:
    jobs_before = spark_job_ids(spark)
    error, seconds = materialize_points(spark, silent.url, collection_name)
    assert seconds < READ_TIMEOUT
    message = str(error)
    assert silent.url in message and f"within {WAIT}s" in message and "'connect_timeout'" in message
    assert "REST port (6333" in message and "QDRANT_URL" in message
    assert spark_job_ids(spark) == jobs_before, "the check comes before the Spark write"
    assert silent.request_lines() == ["GET / HTTP/1.1"], "one check, not retried; nothing written"


def test_a_host_that_accepts_no_connection_fails_the_output_in_seconds(
    spark: Any, black_hole: BlackHole, collection_name: str
) -> None:
    jobs_before = spark_job_ids(spark)
    error, seconds = materialize_points(spark, black_hole.url, collection_name)
    assert seconds < READ_TIMEOUT
    message = str(error)
    assert black_hole.url in message and f"accepted no connection within {WAIT}s" in message
    assert "'connect_timeout'" in message and "after 1 attempt(s)" in message
    assert spark_job_ids(spark) == jobs_before


def test_write_qdrant_points_fails_in_one_connect_timeout_on_a_host_that_accepts_no_connection(
    black_hole: BlackHole,
) -> None:
    started = time.monotonic()
    with pytest.raises(QdrantConnectionError) as raised:
        write_qdrant_points(
            [{"id": 1, "vector": [1.0, 2.0]}],
            endpoint=black_hole.url,
            collection="documents",
            create_collection=True,
            connect_timeout=WAIT,
            max_retries=3,
        )
    seconds = time.monotonic() - started
    assert WAIT <= seconds < WAIT + MARGIN, "one connect timeout: TCP already resent the SYN within it"
    assert f"accepted no connection within {WAIT}s" in str(raised.value) and "after 1 attempt(s)" in str(raised.value)


def test_every_request_waits_connect_timeout_to_connect_and_timeout_to_read(
    black_hole: BlackHole, silent: SilentServer
) -> None:
    started = time.monotonic()
    with pytest.raises(QdrantConnectionError, match="accepted no connection"):
        QdrantHttp(ConnectionOptions(endpoint=black_hole.url, connect_timeout=WAIT, timeout=60.0, max_retries=0)).list_collections()
    assert WAIT <= time.monotonic() - started < WAIT + MARGIN, "connecting waits connect_timeout, not timeout"
    started = time.monotonic()
    with pytest.raises(QdrantConnectionError, match="timed out"):
        QdrantHttp(ConnectionOptions(endpoint=silent.url, connect_timeout=60.0, timeout=WAIT, max_retries=0)).list_collections()
    assert WAIT <= time.monotonic() - started < WAIT + MARGIN, "answering waits timeout, not connect_timeout"


def test_the_check_retries_a_dropped_connection_like_any_request(qdrant_url: str) -> None:
    with FaultProxy(qdrant_url, methods=("GET",), path_pattern=r"^/$", script=["reset", "drop_before"]) as proxy:
        QdrantHttp(ConnectionOptions(endpoint=proxy.url, backoff_factor=0.01)).check_answers()
        assert proxy.count(method="GET", path_contains="/", fault=None) == 1
        assert proxy.faults_injected() == {"reset": 1, "drop_before": 1}


def test_any_answer_passes_the_check(qdrant_url: str) -> None:
    """A 401 or 503 is an answer: the requests that follow report it with their own message and fix."""
    with FaultProxy(qdrant_url, methods=("GET",), script=["503"]) as proxy:
        QdrantHttp(ConnectionOptions(endpoint=proxy.url, max_retries=0)).check_answers()
        assert proxy.faults_injected() == {"503": 1}


def test_write_qdrant_points_fails_in_seconds_on_a_server_that_never_answers(silent: SilentServer) -> None:
    started = time.monotonic()
    with pytest.raises(QdrantConnectionError) as raised:
        write_qdrant_points(
            [{"id": 1, "vector": [1.0, 2.0]}], endpoint=silent.url, collection="documents", connect_timeout=WAIT
        )
    assert WAIT <= time.monotonic() - started < WAIT + MARGIN
    assert f"did not answer GET / within {WAIT}s" in str(raised.value) and silent.url in str(raised.value)
    assert silent.request_lines() == ["GET / HTTP/1.1"], "one check, then nothing"


def test_write_qdrant_points_sends_nothing_for_bad_input_even_the_check(silent: SilentServer) -> None:
    with pytest.raises(Exception, match="vector"):
        write_qdrant_points([{"id": 1, "vector": "not a vector"}], endpoint=silent.url, collection="documents")
    assert silent.request_lines() == []
