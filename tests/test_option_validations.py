"""How often the options are validated on each road: once on the driver, once per Spark-side rebuild.

``ConnectionOptions.__post_init__`` is the one place every ``ReadOptions`` / ``WriteOptions`` is
validated. It is counted here in this process (the driver), and in Spark's Python workers (where Spark
rebuilds the options from their string form in ``schema()``, ``reader()`` and ``writer()``) through a
``sitecustomize`` module put on the workers' ``PYTHONPATH`` for the duration of the test only.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import build_input_context, build_output_context

from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
from dagster_qdrant.dagster_io.resources import QdrantResource
from dagster_qdrant.options import ConnectionOptions
from dagster_qdrant.spark.datasource import QdrantDataSource
from dagster_qdrant.spark.registration import register_qdrant_data_source

LOG_VARIABLE = "DAGSTER_QDRANT_TEST_VALIDATION_LOG"
SITECUSTOMIZE = f"""
import os, sys
_log = os.environ.get({LOG_VARIABLE!r})
if _log:
    from dagster_qdrant.options import ConnectionOptions
    _validate = ConnectionOptions.__post_init__

    def _counted(self):
        where = "other"
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename.endswith("datasource.py"):
                where = frame.f_code.co_name
                break
            frame = frame.f_back
        with open(_log, "a") as log:
            log.write(type(self).__name__ + " " + where + "\\n")
        _validate(self)

    ConnectionOptions.__post_init__ = _counted
"""


class Validations:
    """Validations seen on the driver (this process) and in Spark's workers, by options class."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.driver: Counter[str] = Counter()

    def workers(self) -> Counter[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return Counter(lines)

    def reset(self) -> None:
        self.driver.clear()
        self.log.write_text("")


@pytest.fixture
def validations(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Validations]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    seen = Validations(tmp_path / "validations.log")
    original = ConnectionOptions.__post_init__

    def counted(self: ConnectionOptions) -> None:
        seen.driver[type(self).__name__] += 1
        original(self)

    monkeypatch.setattr(ConnectionOptions, "__post_init__", counted)
    # Spark starts the workers of a data source with the environment the session had when the source was
    # registered (registration captures it): a fresh worker pool that imports the hook.
    environment = spark.sparkContext.environment
    saved = {key: environment.get(key) for key in ("PYTHONPATH", LOG_VARIABLE)}
    python_path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH", ""), *sys.path[:1]]))
    environment["PYTHONPATH"] = python_path
    environment[LOG_VARIABLE] = str(seen.log)
    _register_again(spark)
    try:
        yield seen
    finally:
        for key, value in saved.items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        _register_again(spark)


def _register_again(spark: Any) -> None:
    """Register anew, so that Spark captures the environment as it is now: the data source is registered
    once per session, and again only when the session's ``qdrant`` entry changed (as it has here)."""
    spark.dataSource.register(QdrantDataSource)
    register_qdrant_data_source(spark)


SCHEMA = "id long, text string, vector array<float>"


def _frame(spark: Any) -> Any:
    return spark.createDataFrame([(i, f"document {i}", [float(i), 1.0]) for i in range(20)], SCHEMA).repartition(2)


def test_io_manager_validates_each_direction_once_on_the_driver_and_once_per_spark_rebuild(
    spark: Any, qdrant_url: str, qdrant_api_key: str | None, collection_name: str, validations: Validations
) -> None:
    manager = QdrantPySparkIOManager(
        qdrant=QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key), progress_interval=3600
    )
    frame = _frame(spark)
    validations.reset()
    with build_output_context(asset_key=collection_name) as context:
        manager.handle_output(context, frame)
    # The resource builds its connection options once, for the collection-level requests (aliases, counts).
    assert dict(validations.driver) == {"WriteOptions": 1, "ConnectionOptions": 1}
    assert dict(validations.workers()) == {"WriteOptions writer": 1}

    validations.reset()
    upstream = build_output_context(asset_key=collection_name)
    with build_input_context(asset_key=collection_name, upstream_output=upstream) as context:
        assert manager.load_input(context).count() == 20
    # The upstream asset's writer options name the id and vector columns the read gives back.
    assert dict(validations.driver) == {"ReadOptions": 1, "WriteOptions": 1}
    assert dict(validations.workers()) == {"ReadOptions schema": 1, "ReadOptions reader": 1}


def test_data_source_validates_once_on_the_driver_and_once_per_spark_rebuild(
    spark: Any, qdrant_url: str, qdrant_api_key: str | None, collection_name: str, validations: Validations
) -> None:
    resource = QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key)
    frame = _frame(spark)
    validations.reset()
    options = resource.spark_write_options(collection_name, create_collection=True)
    frame.write.format("qdrant").options(**options).mode("append").save()
    assert (dict(validations.driver), dict(validations.workers())) == ({"WriteOptions": 1}, {"WriteOptions writer": 1})

    validations.reset()
    options = resource.spark_read_options(collection_name, num_partitions=2)
    assert spark.read.format("qdrant").options(**options).load().count() == 20
    assert dict(validations.driver) == {"ReadOptions": 1}
    assert dict(validations.workers()) == {"ReadOptions schema": 1, "ReadOptions reader": 1}

    validations.reset()
    assert spark.read.format("qdrant").option("endpoint", qdrant_url).option(
        "api_key", qdrant_api_key or ""
    ).option("collection", collection_name).load().count() == 20
    assert (dict(validations.driver), dict(validations.workers())) == (
        {},
        {"ReadOptions schema": 1, "ReadOptions reader": 1},
    )
