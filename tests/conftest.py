"""Shared fixtures: one embedded Qdrant (or the server named by QDRANT_URL), one local SparkSession.

Set QDRANT_URL (and QDRANT_API_KEY) to run the whole suite against any real Qdrant instead.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest


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


@pytest.fixture(scope="session")
def qdrant_api_key() -> str | None:
    """API key of the server under test (only a real Qdrant set through QDRANT_URL has one)."""
    return os.environ.get("QDRANT_API_KEY") if os.environ.get("QDRANT_URL") else None


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
