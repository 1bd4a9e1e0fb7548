"""Type handlers: what the Qdrant IO manager does that depends on the kind of DataFrame (Spark, pandas, Arrow).

As Dagster's ``DbTypeHandler`` is to its database IO managers: the IO manager picks a handler by the
output's or input's annotation (else the output's type) and keeps the rest, the collection lifecycle
(``collections.QdrantCollections``: versions, alias swap, partition replace), naming and metadata, for
every kind alike. A handler writes a frame into a collection it is given, tags and splits rows by
partition, describes the frame's columns, and loads a selection back as its kind.

- ``PySparkTypeHandler``: the ``qdrant`` Spark data source, in parallel from and to the Spark tasks.
- ``PandasTypeHandler`` and ``ArrowTypeHandler``: ``write_qdrant_points``' road (rows -> points -> HTTP)
  and ``read_qdrant_points``' scroll loop, in this process; they need no Spark session.

Users extend the IO manager with their own handler (a subclass of ``QdrantTypeHandler``) by overriding
``QdrantIOManager.type_handlers()``.
"""

from __future__ import annotations

import collections
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Optional, TypeVar, Union

from dagster import DagsterInvariantViolationError, InputContext, OutputContext, TableColumn, TableSchema

from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.options import QDRANT_FORMAT, ReadOptions, WriteOptions
from dagster_qdrant.points.records_to_table import VECTOR_COLUMN

if TYPE_CHECKING:
    from dagster_qdrant.dagster_io.resources import QdrantResource

T = TypeVar("T")


@dataclass(frozen=True)
class InputSource:
    """What an input reads: the collection, the reader options (partition filter and column projection
    included), the columns asked for (None: all), and the upstream asset's writer options, whose column
    names (``id_field``, ``vector_field``, ...) the loaded frame takes back."""

    collection: str
    read_options: Mapping[str, Any]
    columns: Optional[list[str]]
    write_options: WriteOptions
    partition_field: str
    asset: str = ""


@dataclass
class PartitionedRows(Generic[T]):
    """A frame's rows by the partition key a column gives them: ``counts`` (key -> rows; ``None`` for
    rows with no key) and ``rows(key, field)``, the rows of one key with ``field`` set to it."""

    counts: Mapping[Optional[str], int]
    rows: Callable[[str, str], T]


class QdrantTypeHandler(ABC, Generic[T]):
    """Stores and loads one kind of DataFrame; the IO manager does the rest (module docstring)."""

    @property
    @abstractmethod
    def supported_types(self) -> Sequence[type]:
        """The types this handler stores and loads (an output or annotation that is a subclass counts)."""

    @abstractmethod
    def columns(self, obj: T) -> list[str]:
        """The frame's column names."""

    @abstractmethod
    def column_schema(self, obj: T) -> TableSchema:
        """The frame's columns and their types, for ``dagster/column_schema``."""

    @abstractmethod
    def with_value(self, obj: T, column: str, value: str) -> T:
        """The frame with a string column holding ``value`` on every row (the partition key)."""

    @abstractmethod
    @contextmanager
    def partitioned(self, obj: T, column: str) -> Iterator[PartitionedRows[T]]:
        """The frame's rows grouped by the text of ``column`` (a range of partitions in one run)."""

    @abstractmethod
    def write(self, obj: T, collection: str, write_options: WriteOptions) -> None:
        """Write the rows as points into ``collection``, creating it from the data if it does not exist."""

    @abstractmethod
    def load(self, source: InputSource, connection: QdrantResource) -> T:
        """The points of ``source`` as this handler's kind of frame."""

    def type_names(self) -> list[str]:
        """How errors name the supported types."""
        return [type_name(kind) for kind in self.supported_types]


# ----- PySpark ---------------------------------------------------------------------------------------


class PySparkTypeHandler(QdrantTypeHandler[Any]):
    """``pyspark.sql.DataFrame`` through the ``qdrant`` data source; ``spark`` gives the session for loads."""

    def __init__(self, spark: Optional[Callable[[], Any]] = None) -> None:
        self._spark = spark

    @property
    def supported_types(self) -> Sequence[type]:
        from pyspark.sql import DataFrame

        return [DataFrame]

    def type_names(self) -> list[str]:
        return ["pyspark.sql.DataFrame"]

    def columns(self, obj: Any) -> list[str]:
        return list(obj.columns)

    def column_schema(self, obj: Any) -> TableSchema:
        return TableSchema(
            columns=[TableColumn(name=item.name, type=item.dataType.simpleString()) for item in obj.schema.fields]
        )

    def with_value(self, obj: Any, column: str, value: str) -> Any:
        from pyspark.sql import functions

        return obj.withColumn(column, functions.lit(value))

    @contextmanager
    def partitioned(self, obj: Any, column: str) -> Iterator[PartitionedRows[Any]]:
        from pyspark.sql import functions

        # One pass counts the keys; each key's write then reads the cached rows, not the source again.
        persisted = not obj.is_cached
        if persisted:
            obj = obj.persist()
        try:
            key = functions.col(column).cast("string")
            counts = {row["key"]: row["count"] for row in obj.groupBy(key.alias("key")).count().collect()}

            def rows(value: str, field: str) -> Any:
                return obj.where(key == value).withColumn(field, functions.lit(value))

            yield PartitionedRows(counts, rows)
        finally:
            if persisted:
                obj.unpersist()

    def write(self, obj: Any, collection: str, write_options: WriteOptions) -> None:
        register_data_source(obj.sparkSession)
        obj.write.format(QDRANT_FORMAT).options(**write_options.spark_options(collection)).mode("append").save()

    def load(self, source: InputSource, connection: QdrantResource) -> Any:
        spark = register_data_source(self._spark() if self._spark is not None else _active_session())
        options = connection.read_options(source.collection, **source.read_options).spark_options()
        frame = spark.read.format(QDRANT_FORMAT).options(**options).load()
        frame = _restore_column_names(frame, source.write_options)
        if source.columns is not None:
            _require_columns(source, list(frame.columns))
            return frame.select(*source.columns)
        if source.partition_field in frame.columns:
            frame = frame.drop(source.partition_field)
        return frame


def register_data_source(spark: Any) -> Any:
    """The session with the ``qdrant`` format registered (idempotent; needed once per session)."""
    from dagster_qdrant.spark.registration import register_qdrant_data_source

    register_qdrant_data_source(spark)
    return spark


def _active_session() -> Any:
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()


def _restore_column_names(frame: Any, write_options: WriteOptions) -> Any:
    """The reader names columns after Qdrant (``id``, ``vector``, named vectors by their names): give back
    the column names the asset wrote them from."""
    for reader_name, asset_name in _column_names(write_options).items():
        if asset_name and asset_name != reader_name and reader_name in frame.columns:
            if asset_name not in frame.columns:
                frame = frame.withColumnRenamed(reader_name, asset_name)
    return frame


def _column_names(write_options: WriteOptions) -> dict[str, Optional[str]]:
    """The reader's column name (``id``, ``vector``, a vector's name) -> the asset's column name."""
    renames: dict[str, Optional[str]] = {"id": write_options.id_field}
    named = {**write_options.dense_vector_columns(), **write_options.sparse_vector_fields}
    renames.update({vector_name or VECTOR_COLUMN: column for column, vector_name in named.items()})
    return renames


def _require_columns(source: InputSource, present: Sequence[str]) -> None:
    missing = [column for column in source.columns or [] if column not in present]
    if missing:
        raise QdrantConfigError(
            f"Column(s) {missing!r} asked for in the input metadata of {source.asset} are not in collection "
            f"{source.collection!r}; it has {list(present)!r}"
        )


# ----- pandas and Arrow, without Spark ---------------------------------------------------------------

SPARK_ONLY_READ_OPTIONS = (
    "infer_schema", "num_partitions", "partitioning", "schema", "sample_size", "schema_mismatch",
    "payload_layout", "missing_columns",
)
"""Reader options of the Spark data source alone: a pandas or Arrow load reads every payload key as a
column, in this process, so a value other than the default is refused rather than ignored."""


class ArrowTypeHandler(QdrantTypeHandler[Any]):
    """``pyarrow.Table``, written and read in this process (``write_qdrant_points``' and
    ``read_qdrant_points``' road; column types: ``points/records_to_table.py``)."""

    @property
    def supported_types(self) -> Sequence[type]:
        import pyarrow as pa

        return [pa.Table]

    def columns(self, obj: Any) -> list[str]:
        return list(obj.column_names)

    def column_schema(self, obj: Any) -> TableSchema:
        return TableSchema(columns=[TableColumn(name=item.name, type=str(item.type)) for item in obj.schema])

    def with_value(self, obj: Any, column: str, value: str) -> Any:
        import pyarrow as pa

        return obj.append_column(column, pa.array([value] * obj.num_rows, pa.string()))

    @contextmanager
    def partitioned(self, obj: Any, column: str) -> Iterator[PartitionedRows[Any]]:
        import pyarrow as pa

        keys = _key_texts(obj.column(column).to_pylist())
        yield PartitionedRows(
            collections.Counter(keys),
            lambda value, field: self.with_value(obj.filter(pa.array([key == value for key in keys])), field, value),
        )

    def write(self, obj: Any, collection: str, write_options: WriteOptions) -> None:
        from dagster_qdrant.points.without_spark import write_qdrant_points

        write_qdrant_points(obj, write_options, collection=collection)

    def load(self, source: InputSource, connection: QdrantResource) -> Any:
        from dagster_qdrant.points.records_to_table import records_to_table
        from dagster_qdrant.points.without_spark import read_qdrant_points

        _refuse_spark_only_options(source)
        names = _column_names(source.write_options)
        dense = {name: column for column, name in source.write_options.dense_vector_columns().items()}
        if not dense:
            dense = {"": VECTOR_COLUMN}
        sparse = {name: column for column, name in source.write_options.sparse_vector_fields.items()}
        config = connection.read_options(source.collection, **source.read_options)
        table = records_to_table(
            read_qdrant_points(config),
            id_column=names.get("id") or "id",
            vector_columns=dense,
            sparse_columns=sparse,
            drop_payload=[source.partition_field] if source.columns is None else [],
            collection=source.collection,
        )
        if source.columns is not None:
            _require_columns(source, table.column_names)
            return table.select(source.columns)
        return table


class PandasTypeHandler(ArrowTypeHandler):
    """``pandas.DataFrame``, through Arrow (``pyarrow.Table.from_pandas`` / ``to_pandas``): a float column's
    NaN is missing in pandas and is stored as null; an integer column with nulls comes back as floats with
    NaN, as pyarrow's ``to_pandas`` makes it; vectors come back as float32 numpy arrays."""

    @property
    def supported_types(self) -> Sequence[type]:
        import pandas as pd

        return [pd.DataFrame]

    def columns(self, obj: Any) -> list[str]:
        return [str(name) for name in obj.columns]

    def column_schema(self, obj: Any) -> TableSchema:
        return TableSchema(columns=[TableColumn(name=str(name), type=str(kind)) for name, kind in obj.dtypes.items()])

    def with_value(self, obj: Any, column: str, value: str) -> Any:
        return obj.assign(**{column: value})

    @contextmanager
    def partitioned(self, obj: Any, column: str) -> Iterator[PartitionedRows[Any]]:
        keys = _key_texts(obj[column].astype(object).where(obj[column].notna(), None).tolist())
        yield PartitionedRows(
            collections.Counter(keys),
            lambda value, field: obj[[key == value for key in keys]].assign(**{field: value}),
        )

    def load(self, source: InputSource, connection: QdrantResource) -> Any:
        return super().load(source, connection).to_pandas()


def _key_texts(values: list[Any]) -> list[Optional[str]]:
    return [None if value is None else str(value) for value in values]


def _refuse_spark_only_options(source: InputSource) -> None:
    defaults = ReadOptions.__dataclass_fields__
    set_here = [
        name for name in SPARK_ONLY_READ_OPTIONS
        if name in source.read_options and source.read_options[name] != defaults[name].default
    ]
    if set_here:
        raise QdrantConfigError(
            f"Reader option(s) {set_here!r} of the input {source.asset} apply to Spark reads only: a pandas or "
            "Arrow input reads every payload key as a column, in this process. Leave them out for this input "
            "(in its AssetIn metadata or the IO manager's read config), or annotate it as a pyspark.sql.DataFrame"
        )


def handler_for(
    handlers: Sequence[QdrantTypeHandler[Any]], kind: Any, owner: str = "the IO manager"
) -> Optional[QdrantTypeHandler[Any]]:
    """The handler whose supported types include ``kind`` (or a base of it); two handlers for one type are
    refused, as Dagster's database IO managers refuse them: leave the default one out to replace it."""
    taken: dict[type, QdrantTypeHandler[Any]] = {}
    for handler in handlers:
        for supported in handler.supported_types:
            if supported in taken:
                raise QdrantConfigError(
                    f"{owner} has two type handlers for {type_name(supported)}: {type(taken[supported]).__name__} "
                    f"and {type(handler).__name__}; return only one of them from type_handlers()"
                )
            taken[supported] = handler
    kind = plain_type(kind)
    if not isinstance(kind, type):
        return None
    return next((handler for supported, handler in taken.items() if issubclass(kind, supported)), None)


def annotation_of(context: Union[OutputContext, InputContext]) -> Any:
    """The output's or input's annotation (``Any`` when it has none)."""
    try:
        dagster_type = context.dagster_type
    except DagsterInvariantViolationError:  # a context built in a test without a type
        return Any
    return getattr(dagster_type, "typing_type", Any)


def plain_type(kind: Any) -> Any:
    """``list[dict]`` -> ``list``, ``Optional[pd.DataFrame]`` -> ``pd.DataFrame``: the class a handler is for."""
    if typing.get_origin(kind) is Union:
        others = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        kind = others[0] if len(others) == 1 else kind
    return typing.get_origin(kind) or kind


def type_name(kind: Any) -> str:
    """``pandas.DataFrame``, ``list``: a type as a user writes it (its package, not the module it is in)."""
    kind = plain_type(kind)
    module = getattr(kind, "__module__", "")
    name = getattr(kind, "__qualname__", None) or repr(kind)
    return name if module in ("builtins", "") else f"{module.split('.')[0]}.{name}"


def default_type_handlers(spark: Optional[Callable[[], Any]] = None) -> list[QdrantTypeHandler[Any]]:
    """PySpark, pandas and Arrow: what ``QdrantIOManager`` stores and loads unless told otherwise."""
    return [PySparkTypeHandler(spark), PandasTypeHandler(), ArrowTypeHandler()]


__all__ = [
    "ArrowTypeHandler",
    "InputSource",
    "PandasTypeHandler",
    "PartitionedRows",
    "PySparkTypeHandler",
    "QdrantTypeHandler",
    "SPARK_ONLY_READ_OPTIONS",
    "annotation_of",
    "default_type_handlers",
    "handler_for",
    "plain_type",
    "register_data_source",
    "type_name",
]
