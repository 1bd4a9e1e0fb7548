"""This data source through Spark (local mode, all cores): write a DataFrame into Qdrant, read it all back.

Write: the generated Parquet file, split into one input partition per core, is written with
``df.write.format("qdrant")`` into a collection created beforehand. The time to read the Parquet file alone
(the same plan into the ``noop`` sink) is measured too, so the share of the source is known.
Read: ``spark.read.format("qdrant")`` with vectors, every column materialized by the ``noop`` sink; an
``Observation`` counts the rows on the way, so the count is verified without a second read.
Memory: the sampler's ``jvm`` and ``workers`` groups (Spark's Python workers live under the JVM).
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

from benchmarks.data import Dataset
from benchmarks.measure import READ, WRITE, Result, timed
from benchmarks.server import Target


def start_spark(cores: int | None = None, driver_memory: str = "2g") -> Any:
    """A local SparkSession on every core (or ``cores``) with the qdrant data source registered."""
    from pyspark.sql import SparkSession

    from dagster_qdrant import register_qdrant_data_source

    # Spark's Python workers must run this interpreter (with pyarrow and dagster_qdrant), not "python3" on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    master = f"local[{cores}]" if cores else "local[*]"
    session = (
        SparkSession.builder.master(master)
        .appName("dagster-qdrant-benchmark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(cores or os.cpu_count() or 2))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    register_qdrant_data_source(session)
    return session


def stop_spark(session: Any) -> None:
    """Stop the session and end its JVM, which PySpark otherwise keeps until this process exits."""
    from pyspark import SparkContext

    session.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    process = getattr(gateway, "proc", None)
    if process is not None:
        process.stdin.close() if process.stdin else None
        process.wait(timeout=60)
    SparkContext._gateway = None
    SparkContext._jvm = None


def _parallelism(spark: Any) -> int:
    return int(spark.sparkContext.defaultParallelism)


def _input(spark: Any, dataset: Dataset) -> Any:
    """The Parquet file as a DataFrame with one partition per core."""
    split = max(1 << 20, math.ceil(dataset.bytes_on_disk / _parallelism(spark)) + (1 << 16))
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(split))
    spark.conf.set("spark.sql.files.openCostInBytes", "0")
    return spark.read.parquet(str(dataset.path))


def _noop(frame: Any) -> None:
    frame.write.format("noop").mode("overwrite").save()


def warm_up(spark: Any, target: Target, dataset: Dataset, rows: int = 200) -> dict[str, float]:
    """Write and read a few rows once, untimed by the benchmark, and say how long that took.

    The first data source write and read of a session start Spark's Python planning and task workers
    (interpreter start, imports, JIT of the JVM paths): seconds that do not depend on N. Paying them here lets
    the timed runs show the data path's throughput; the returned seconds are reported as the first-use cost.
    """
    collection = "bench_warm_up"
    target.create_collection(collection, dataset.dim)
    small = _input(spark, dataset).limit(rows).repartition(_parallelism(spark))
    options = {"endpoint": target.url, "collection": collection, **({"api_key": target.api_key} if target.api_key else {})}
    started = time.perf_counter()
    small.write.format("qdrant").options(**options).mode("append").save()
    middle = time.perf_counter()
    _noop(spark.read.format("qdrant").options(**options, with_vectors="true").load())
    ended = time.perf_counter()
    target.delete_collection(collection)
    return {"first_write_seconds": round(middle - started, 3), "first_read_seconds": round(ended - middle, 3)}


def measure_write(
    spark: Any, target: Target, dataset: Dataset, collection: str, options: dict[str, str] | None = None
) -> Result:
    frame = _input(spark, dataset)
    _noop(frame)  # warm the file cache and the JVM's Parquet path, untimed
    source = timed("spark parquet source only", WRITE, lambda: _noop(frame) or dataset.points, server_pid=None)
    target.create_collection(collection, dataset.dim)
    settings = {"endpoint": target.url, "collection": collection, **(options or {})}
    if target.api_key:
        settings["api_key"] = target.api_key

    def write() -> int:
        frame.write.format("qdrant").options(**settings).mode("append").save()
        return dataset.points

    result = timed("spark data source", WRITE, write, server_pid=target.pid, settings=_shown(settings))
    result.verified = target.count(collection) == dataset.points
    result.details = {
        "input_partitions": frame.rdd.getNumPartitions(),
        "parquet_source_seconds": round(source.seconds, 3),
    }
    return result


def measure_read(
    spark: Any, target: Target, dataset: Dataset, collection: str, options: dict[str, str] | None = None
) -> Result:
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    settings = {"endpoint": target.url, "collection": collection, "with_vectors": "true", **(options or {})}
    if target.api_key:
        settings["api_key"] = target.api_key
    observed: dict[str, Any] = {}

    def read() -> int:
        frame = spark.read.format("qdrant").options(**settings).load()
        observed["columns"] = frame.columns
        observation = Observation("rows")
        _noop(frame.observe(observation, F.count(F.lit(1)).alias("rows")))
        return int(observation.get["rows"])

    result = timed("spark data source", READ, read, server_pid=target.pid, settings=_shown(settings))
    result.verified = result.points == dataset.points
    result.details = {"columns": observed.get("columns")}
    return result


def _shown(settings: dict[str, str]) -> dict[str, str]:
    return {key: ("***" if key == "api_key" else value) for key, value in settings.items() if key != "endpoint"}
