"""dagster_qdrant: DataFrames of embeddings (PySpark, pandas, Arrow) into Qdrant and back.

The public names are resolved lazily (PEP 562) so that light processes, the embedded server and Spark's
Python workers, never pay for importing Dagster or PySpark they do not use.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("dagster-qdrant")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_PUBLIC_NAMES: dict[str, str] = {
    "QDRANT_FORMAT": "dagster_qdrant.options",
    "QDRANT_CONFIG_OPTION": "dagster_qdrant.options",
    "QDRANT_SCHEMA_OPTION": "dagster_qdrant.options",
    "build_qdrant_config": "dagster_qdrant.options",
    "build_qdrant_write_config": "dagster_qdrant.options",
    "write_qdrant_points": "dagster_qdrant.points.without_spark",
    "read_qdrant_points": "dagster_qdrant.points.without_spark",
    "WriteReport": "dagster_qdrant.points.points_to_qdrant",
    "register_qdrant_data_source": "dagster_qdrant.spark.registration",
    "QdrantDataSource": "dagster_qdrant.spark.datasource",
    "QdrantResource": "dagster_qdrant.dagster_io.resources",
    "QdrantConfig": "dagster_qdrant.dagster_io.community",
    "QdrantReadConfig": "dagster_qdrant.dagster_io.resources",
    "QdrantWriteConfig": "dagster_qdrant.dagster_io.resources",
    "QdrantPySparkIOManager": "dagster_qdrant.dagster_io.io_manager",
    "QdrantComponent": "dagster_qdrant.dagster_io.component",
    "QdrantIOManager": "dagster_qdrant.dagster_io.io_manager",
    "QdrantTypeHandler": "dagster_qdrant.dagster_io.type_handlers",
    "PySparkTypeHandler": "dagster_qdrant.dagster_io.type_handlers",
    "PandasTypeHandler": "dagster_qdrant.dagster_io.type_handlers",
    "ArrowTypeHandler": "dagster_qdrant.dagster_io.type_handlers",
    "ensure_embedded_qdrant": "dagster_qdrant.embedded",
    "QdrantError": "dagster_qdrant.errors",
    "QdrantConfigError": "dagster_qdrant.errors",
    "QdrantSchemaError": "dagster_qdrant.errors",
    "QdrantDataError": "dagster_qdrant.errors",
    "QdrantConnectionError": "dagster_qdrant.errors",
    "QdrantAuthError": "dagster_qdrant.errors",
    "QdrantNotFoundError": "dagster_qdrant.errors",
    "QdrantRequestError": "dagster_qdrant.errors",
    "QdrantWriteError": "dagster_qdrant.errors",
}

__all__ = sorted(_PUBLIC_NAMES)


def __getattr__(name: str) -> Any:
    module_name = _PUBLIC_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'dagster_qdrant' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
