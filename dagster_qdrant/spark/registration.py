"""``register_qdrant_data_source``: ``format("qdrant")`` in a Spark session, once per session.

Apart from the data source itself because registering is about the session (its active thread, its
parallelism, the Python its workers run), not about reading or writing.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from typing import Any

from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.options import QDRANT_FORMAT
from dagster_qdrant.spark.datasource import QdrantDataSource

PUSHDOWN_CONF = "spark.sql.python.filterPushdown.enabled"
"""Spark's switch for Python data source filter pushdown (off by default)."""


def register_qdrant_data_source(spark: Any) -> None:
    """Make ``format("qdrant")`` available in ``spark`` and turn on Python filter pushdown.

    The registered class is a subclass carrying the session's default parallelism, because the data
    source runs in Python workers that cannot ask Spark for it; Spark ships the class by value.

    It also makes ``spark`` the active session of the calling thread: Spark finds a Python data source
    through the active session of the JVM thread that runs the query, and with PySpark's pinned threads a
    thread other than the main one starts with none, so ``format("qdrant")`` would not be found there
    (``DATA_SOURCE_NOT_FOUND``). Call this in every thread that reads or writes; the IO manager does.

    The class is registered once per session: registering again would only make Spark log that the
    data source "replaced a previously registered data source" on every call.
    """
    _make_active(spark)
    spark.conf.set(PUSHDOWN_CONF, "true")
    if _registered_in(spark):
        return
    source: type[QdrantDataSource] = QdrantDataSource
    try:
        context = spark.sparkContext
        parallelism = int(context.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext: fall back to num_partitions or 1.
        context, parallelism = None, None
    if context is not None and str(context.master).startswith("local"):
        check_worker_python(context.pythonExec)
    if parallelism:
        source = type(
            "QdrantDataSource",
            (QdrantDataSource,),
            {"default_num_partitions": parallelism, "__module__": QdrantDataSource.__module__, "__doc__": QdrantDataSource.__doc__},
        )
    spark.dataSource.register(source)
    _remember_registration(spark)


def _registry_entry(spark: Any) -> Any:
    """The session's JVM registry entry for ``qdrant`` (None on Spark Connect, which has no JVM here)."""
    jsession = getattr(spark, "_jsparkSession", None)
    if jsession is None:
        return None
    manager = jsession.sessionState().dataSourceManager()
    return manager.lookupDataSource(QDRANT_FORMAT) if manager.dataSourceExists(QDRANT_FORMAT) else None


def _registered_in(spark: Any) -> bool:
    """True when this session's ``qdrant`` entry is still the one this module registered in it."""
    remembered = getattr(spark, _REGISTRATION_ATTRIBUTE, None)
    return remembered is not None and remembered == _registry_entry(spark)


def _remember_registration(spark: Any) -> None:
    entry = _registry_entry(spark)
    if entry is not None:
        setattr(spark, _REGISTRATION_ATTRIBUTE, entry)


_REGISTRATION_ATTRIBUTE = "_dagster_qdrant_data_source"
"""Attribute of a SparkSession holding the registry entry ``register_qdrant_data_source`` made."""


def _make_active(spark: Any) -> None:
    """Make ``spark`` the active session of this thread, in Python and in its JVM thread (as
    ``createDataFrame`` does). Spark Connect sessions have no JVM here and look data sources up by session."""
    from pyspark.sql import SparkSession

    jvm = getattr(spark, "_jvm", None)
    jsession = getattr(spark, "_jsparkSession", None)
    if jvm is None or jsession is None or not isinstance(spark, SparkSession):
        return
    SparkSession._activeSession = spark
    SparkSession._get_j_spark_session_class(jvm).setActiveSession(jsession)


def check_worker_python(python: str) -> None:
    """Refuse, with the fix, a local Spark whose Python workers cannot import this package.

    Spark starts its Python workers with ``PYSPARK_PYTHON``, else whatever ``python3`` is on PATH, not with
    the interpreter running the driver. Run from a virtual environment that is not activated, every task
    would fail with a bare ``ModuleNotFoundError`` deep in a worker's traceback.
    """
    if python != sys.executable and not _imports_this_package(python):
        raise QdrantConfigError(
            f"Spark's Python workers run {python!r}, which cannot import dagster_qdrant. Set PYSPARK_PYTHON="
            f"{sys.executable} before the SparkSession starts (or activate the virtual environment that has "
            "dagster_qdrant installed)."
        )


@functools.lru_cache(maxsize=8)
def _imports_this_package(python: str) -> bool:
    """Asked once per interpreter and process: registration happens on every IO manager call."""
    try:
        probe = subprocess.run([python, "-c", "import dagster_qdrant"], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


__all__ = ["check_worker_python", "register_qdrant_data_source"]
