"""Shared fixtures: one embedded Qdrant (or the server named by QDRANT_URL), one local SparkSession, the
library's client on it (``http``) and qdrant-client on it (``embedded``), the requests a test sent
(``sent``), the cassette settings of every module that replays recorded exchanges (``vcr_config``), and
the check that a replayed cassette was played whole. Cassettes live in tests/cassettes/<test module>/,
pytest-recording's default folder.

Set QDRANT_URL (and QDRANT_API_KEY) to run the whole suite against any real Qdrant instead.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from dagster_qdrant.http import QdrantHttp


@pytest.fixture(scope="session")
def qdrant_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the Qdrant under test: QDRANT_URL, or an embedded server owned by this session."""
    external = os.environ.get("QDRANT_URL")
    if external:
        yield external.rstrip("/")
        return
    from dagster_qdrant.embedded import start_embedded_qdrant

    server = start_embedded_qdrant(tmp_path_factory.mktemp("qdrant-data"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def in_process_qdrant_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded server's handlers on a loopback port, served by a thread of this process: tests of the
    collection lifecycle use it so that mutation testing, which starts no server process, runs them."""
    from dagster_qdrant.embedded.server import QdrantHttpServer
    from dagster_qdrant.embedded.store import Store

    store = Store(tmp_path_factory.mktemp("in_process") / "qdrant")
    server = QdrantHttpServer(store, 0, None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    store.close()


@pytest.fixture(scope="session")
def qdrant_api_key() -> str | None:
    """API key of the server under test (only a real Qdrant set through QDRANT_URL has one)."""
    return os.environ.get("QDRANT_API_KEY") if os.environ.get("QDRANT_URL") else None


@pytest.fixture(scope="module")
def embedded(qdrant_url: str, qdrant_api_key: str | None) -> QdrantClient:
    """qdrant-client over REST on the server under test: how the embedded server's tests talk to it."""
    from reference_client import official_client

    return official_client(qdrant_url, qdrant_api_key)


@pytest.fixture
def http(qdrant_url: str, qdrant_api_key: str | None) -> QdrantHttp:
    """The library's REST client on the server under test."""
    from dagster_qdrant.http import QdrantHttp
    from dagster_qdrant.options import ConnectionOptions

    return QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key))


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    """Every test starts and ends with no pooled HTTP session.

    A pooled session carries its headers and its open connections into the next test that asks for the
    same endpoint; connections opened outside a cassette would bypass it, and ones opened under a
    cassette would replay into a test that has none.
    """
    import dagster_qdrant.http as qdrant_http

    qdrant_http._sessions.clear()
    yield
    qdrant_http._sessions.clear()


@pytest.fixture
def collection_name(request: pytest.FixtureRequest) -> str:
    """A collection name no other test uses, readable in server logs."""
    base = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    return f"t_{base}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def spark():
    """A local SparkSession with the qdrant data source registered, shared by the whole run."""
    from pyspark.sql import SparkSession

    from dagster_qdrant import register_qdrant_data_source

    # Spark's Python workers must run this interpreter (it has pyarrow and dagster_qdrant), even when the
    # virtual environment was not activated.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

    session = (
        SparkSession.builder.master("local[2]")
        .appName("dagster-qdrant-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    register_qdrant_data_source(session)
    yield session
    session.stop()


@dataclass(frozen=True)
class Sent:
    """One HTTP request as this process sent it: method, path with query, body decoded from JSON."""

    method: str
    path: str
    body: Any


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every request this test's process sends, in order, captured above any cassette.

    A cassette's ``requests`` are the recorded file, not this run; this list is what the code under
    test sent now, whether the response comes from the server or is replayed.
    """
    import requests

    captured: list[Sent] = []
    lock = threading.Lock()
    original = requests.Session.send

    def send(self: requests.Session, prepared: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = prepared.body
        if isinstance(body, (bytes, bytearray)):
            body = bytes(body).decode(errors="replace")
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = body  # not JSON: kept as sent
        with lock:
            captured.append(Sent(prepared.method or "", prepared.path_url, decoded))
        return original(self, prepared, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)
    return captured


@pytest.fixture(scope="module")
def vcr_config(request: pytest.FixtureRequest, qdrant_url: str) -> dict[str, Any]:
    """How every ``vcr`` test records and replays: secrets filtered, requests matched on what they ask.

    Matched without host and port (the embedded server's port changes every run). Taking ``qdrant_url``
    starts the server before the first cassette is entered, so its readiness probe is never recorded.
    ``record_mode`` is set here because pytest-recording lets this dict override the command line.
    """
    return {
        "filter_headers": ["api-key", "authorization"],
        "record_mode": request.config.getoption("--record-mode") or "once",
        "match_on": ["method", "path", "query", "body"],
    }


@pytest.fixture(autouse=True)
def _every_recorded_interaction_played_once(request: pytest.FixtureRequest) -> Iterator[None]:
    """A replayed cassette must be played whole, each interaction once (repeats are refused by vcrpy)."""
    if request.node.get_closest_marker("vcr") is None:
        yield
        return
    cassette = request.getfixturevalue("vcr")
    yield
    if cassette.write_protected and cassette.rewound:
        unplayed = [f"{r.method} {r.path}" for i, (r, _) in enumerate(cassette.data) if not cassette.play_counts[i]]
        assert cassette.all_played and cassette.play_count == len(cassette), (
            f"{len(unplayed)} recorded request(s) were not sent this run: {unplayed[:5]}"
        )
