"""QdrantIOManager: the DataFrames of an asset (Spark, pandas, Arrow) into a Qdrant collection and back.

Dagster glue: the collection lifecycle is ``collections.QdrantCollections``', and what depends on the kind
of DataFrame is a type handler's (``type_handlers.py``), chosen by the annotation of the output or input
(else by the output's type), as in Dagster's database IO managers. Spark frames move through the
``qdrant`` data source, in parallel from and to the Spark tasks, and the driver only does the few
collection-level requests (aliases, deletes, counts); pandas and Arrow frames move in this process
through ``write_qdrant_points``' and ``read_qdrant_points``' road, with no Spark session.

- Unpartitioned assets replace the whole collection with no moment where readers see it half-written
  (``replace_collection``: a fresh version, then one atomic alias update); each run's metadata names the
  version it served.
- Partitioned assets (static, time-window, multi-dimensional) share one plain collection ``{name}``; each
  point carries its partition key in a payload field (``_partition``), so a partition is replaced by a
  delete-by-filter then an upsert (``replace_partition``), and reads ask only for the partitions they need.
- A run of several partitions (a single-run backfill, a partition range) takes each row's partition from
  the column named by the ``partition_expr`` metadata, checks every row's key is in the range before
  anything is deleted, then replaces the range's partitions one after the other, each as a run of that
  partition alone would: a reader sees each partition old, then being replaced, then new, and at most one
  partition of the range being replaced at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
)
from dagster_pyspark import PySparkResource
from pydantic import ConfigDict, Field

from dagster_qdrant import collection_versions as versions
from dagster_qdrant import collections as lifecycle
from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.filters import all_of
from dagster_qdrant.options import WriteOptions
from dagster_qdrant.dagster_io.asset_options import asset_write_options, input_read_options, plain, projection
from dagster_qdrant.dagster_io.output_metadata import speed_metadata, table_metadata, vector_metadata
from dagster_qdrant.dagster_io.partition_keys import check_partition_keys, partition_column
from dagster_qdrant.dagster_io.resources import QdrantReadConfig, QdrantResource, QdrantWriteConfig
from dagster_qdrant.dagster_io.type_handlers import (
    InputSource,
    QdrantTypeHandler,
    annotation_of,
    default_type_handlers,
    handler_for,
    plain_type,
    register_data_source,
    type_name,
)

VERSION_SEPARATOR = versions.VERSION_SEPARATOR
"""Between a collection's name and its version: ``documents__20240503120000a1b2_r1a2b3c4d_h...p...``."""


class QdrantIOManager(ConfigurableIOManager):
    """Stores DataFrames (PySpark, pandas, pyarrow) in Qdrant collections named after the asset key.

    The handler of an output is the one for its annotation, else for the returned object's type; an input
    loads as its annotation says (unannotated: ``default_load_type()``; here none, so annotate inputs).
    Extend it as Dagster's database IO managers are extended: a subclass whose ``type_handlers()`` returns
    more handlers (``QdrantTypeHandler`` subclasses), or fewer.

    Per asset (definition metadata): ``collection`` (the name), any writer option (``vector_field``,
    ``id_field``, ``payload_fields``, ``distance``, ``batch_size``, ...), and ``partition_expr``: the
    column holding each row's partition key, needed to write several partitions in one run. Per input
    (``AssetIn`` metadata): ``columns`` (the columns to return), ``filter`` (a Qdrant filter),
    ``with_vectors`` and any other reader option but the collection and the server; an unknown key is refused.
    """

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, never silently ignored

    qdrant: Optional[QdrantResource] = Field(
        default=None, description="The Qdrant connection (unset: the embedded Qdrant or QDRANT_URL)."
    )
    pyspark: Optional[PySparkResource] = Field(
        default=None,
        description="Where the SparkSession for loading inputs comes from (unset: the active session).",
    )
    collection_prefix: str = Field(
        default="", description="Prepended to every collection name, e.g. 'dev_'."
    )
    key_separator: str = Field(
        default="_", description="Joins the parts of an asset key into a collection name."
    )
    partition_field: str = Field(
        default="_partition", description="Payload field that holds the partition key of each point."
    )
    write: QdrantWriteConfig = Field(
        default_factory=QdrantWriteConfig, description="Writer options; asset metadata overrides them."
    )
    read: QdrantReadConfig = Field(
        default_factory=QdrantReadConfig, description="Reader options; AssetIn metadata overrides them."
    )
    progress_interval: float = Field(
        default=10.0, description="Seconds between progress log lines during a write."
    )
    stale_after: float = Field(
        default=versions.STALE_AFTER_SECONDS,
        description=(
            "Seconds without a sign of life after which an unfinished version written from another host is "
            "treated as abandoned and dropped by the next materialization (versions written on this host are "
            "dropped as soon as their process is gone)."
        ),
    )

    # ------------------------------------------------------------------ type handlers

    def type_handlers(self) -> Sequence[QdrantTypeHandler[Any]]:
        """The kinds of DataFrame stored and loaded; override to add a handler (or to leave some out)."""
        return default_type_handlers(spark=self._spark_session)

    def default_load_type(self) -> Optional[type]:
        """The type an unannotated input loads as (None: such an input is refused, asking for an annotation)."""
        return None

    def _handler_for(self, kind: Any) -> Optional[QdrantTypeHandler[Any]]:
        return handler_for(self.type_handlers(), kind, type(self).__name__)

    def _supported_names(self) -> str:
        return ", ".join(name for handler in self.type_handlers() for name in handler.type_names())

    def _output_handler(self, context: OutputContext, obj: Any) -> QdrantTypeHandler[Any]:
        """The handler of the output's annotation when it has one for it and the object is one, else of its type."""
        annotation = plain_type(annotation_of(context))
        handler = self._handler_for(annotation)
        if handler is None or not isinstance(obj, annotation):
            handler = self._handler_for(type(obj))
        if handler is None:
            raise QdrantConfigError(
                f"{type(self).__name__} stores {self._supported_names()} outputs, but {_node_name(context)} "
                f"returned {type_name(type(obj))}: return one of those, give this asset another "
                "io_manager_key, or add a type handler for it (override type_handlers())"
            )
        return handler

    def _input_handler(self, context: InputContext) -> QdrantTypeHandler[Any]:
        annotation = annotation_of(context)
        kind = self.default_load_type() if annotation is Any else annotation
        handler = self._handler_for(kind)
        if handler is None:
            what = "has no type annotation" if kind is None else f"is annotated {type_name(kind)}"
            raise QdrantConfigError(
                f"The input {_node_name(context)} {what}; {type(self).__name__} loads "
                f"{self._supported_names()}: annotate the input with one of those"
            )
        return handler

    # ------------------------------------------------------------------ handle_output

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        handler = self._output_handler(context, obj)
        connection = self._connection()
        connection.http().check_answers()  # seconds, before the write, if the server never answers
        name = self.collection_name(context)
        write_options = self._write_options(
            name, context.definition_metadata or {}, partitioned=context.has_asset_partitions
        )
        if context.has_asset_partitions:
            metadata = self._write_partitions(context, connection, name, handler, obj, write_options)
        else:
            metadata = self._replace_collection(context, connection, name, handler, obj, write_options)
        metadata.update(
            table_metadata(
                name, handler.column_schema(obj), handler.columns(obj), context.definition_metadata, context.log
            )
        )
        metadata["dagster/uri"] = MetadataValue.url(connection.collection_url(name))
        context.add_output_metadata(metadata)

    def _replace_collection(
        self,
        context: OutputContext,
        connection: QdrantResource,
        alias: str,
        handler: QdrantTypeHandler[Any],
        frame: Any,
        write_options: WriteOptions,
    ) -> dict[str, Any]:
        """A fresh version behind the alias (``QdrantCollections.replace_collection``)."""
        replaced = self._collections(context, connection).replace_collection(
            alias,
            lambda version: handler.write(frame, version, write_options),
            run=_run_id_block(context),
        )
        return {
            "dagster/row_count": replaced.points,
            "collection": replaced.version,
            "alias": alias,
            **vector_metadata(replaced.vectors),
            **speed_metadata(replaced.points, replaced.seconds),
        }

    def _write_partitions(
        self,
        context: OutputContext,
        connection: QdrantResource,
        collection: str,
        handler: QdrantTypeHandler[Any],
        frame: Any,
        write_options: WriteOptions,
    ) -> dict[str, Any]:
        """Replace the run's partitions (``QdrantCollections.replace_partition``), one after the other.

        One partition: its points carry its key. Several (a range, a single-run backfill): each row's key
        comes from the ``partition_expr`` column, checked for every row before anything is deleted.
        """
        keys = [str(key) for key in context.asset_partition_keys]
        if self.partition_field in handler.columns(frame):
            raise QdrantConfigError(
                f"The DataFrame of {context.asset_key.to_user_string()} has a column "
                f"{self.partition_field!r}, the payload field that holds partition keys: rename the "
                "column or set the IO manager's partition_field to another name"
            )
        collections = self._collections(context, connection)
        field = self.partition_field

        def writer(rows: Any) -> Any:
            return lambda target: handler.write(rows, target, write_options)

        column = partition_column(context, keys, handler.columns(frame))
        if column is None:
            tagged = handler.with_value(frame, field, keys[0])
            replaced = [collections.replace_partition(collection, field, keys[0], writer(tagged))]
        else:
            with handler.partitioned(frame, column) as rows:
                check_partition_keys(context, column, keys, rows.counts)
                replaced = [
                    collections.replace_partition(
                        collection, field, key,
                        writer(rows.rows(key, field)) if rows.counts.get(key) else (lambda target: None),
                    )
                    for key in keys
                ]
        partition_points = sum(item.partition_points for item in replaced)
        if not any(item.exists for item in replaced):
            return {"dagster/row_count": 0, "dagster/partition_row_count": 0, "collection": collection}
        final = next(item for item in reversed(replaced) if item.exists)
        seconds = sum(item.seconds for item in replaced)
        metadata = {
            "dagster/row_count": final.points,
            "dagster/partition_row_count": partition_points,
            "collection": collection,
            "partition_field": self.partition_field,
            **vector_metadata(final.vectors),
            **speed_metadata(partition_points, seconds),
        }
        if len(replaced) > 1:
            metadata["partitions"] = MetadataValue.json({item.key: item.partition_points for item in replaced})
        return metadata

    def _collections(self, context: OutputContext, connection: QdrantResource) -> lifecycle.QdrantCollections:
        return lifecycle.QdrantCollections(
            connection.http(), log=context.log, stale_after=self.stale_after, progress_interval=self.progress_interval
        )

    # ------------------------------------------------------------------ load_input

    def load_input(self, context: InputContext) -> Any:
        handler = self._input_handler(context)
        name, columns, write_options = self._input_source(context)
        source = InputSource(
            collection=name,
            read_options=self._input_read_options(context, columns, write_options),
            columns=columns,
            write_options=write_options,
            partition_field=self.partition_field,
            asset=context.asset_key.to_user_string() if context.has_asset_key else context.name,
        )
        return handler.load(source, self._connection())

    def input_read_options(self, context: InputContext) -> dict[str, str]:
        """The data source options ``load_input`` reads with.

        The asked partitions (a filter on the partition field) and columns (a payload and vector selection)
        are part of them, so Qdrant sends only those points and fields.
        """
        name, columns, write_options = self._input_source(context)
        return self._connection().read_options(name, **self._input_read_options(context, columns, write_options)).spark_options()

    def _input_source(self, context: InputContext) -> tuple[str, Optional[list[str]], WriteOptions]:
        """The collection an input reads, the columns it asks for, and the upstream asset's writer options
        (which name the id and vector columns the read gives back)."""
        upstream = context.upstream_output
        upstream_metadata = (upstream.definition_metadata if upstream is not None else None) or {}
        columns = plain((context.definition_metadata or {}).get("columns"))
        name = self.collection_name(context, upstream_metadata)
        return name, columns, self._write_options(name, upstream_metadata)

    def _input_read_options(
        self, context: InputContext, columns: Optional[list[str]], write_options: WriteOptions
    ) -> dict[str, Any]:
        """The reader options (native values) of an input: its own, its partitions', its columns'."""
        read_options = self._read_options(context.definition_metadata or {})
        if context.has_asset_partitions:
            partition_filter = lifecycle.partition_filter(self.partition_field, context.asset_partition_keys)
            read_options["filter"] = all_of(read_options.get("filter"), partition_filter)
        if columns is not None:
            read_options.update(projection(columns, write_options))
        return read_options

    # ------------------------------------------------------------------ helpers

    def collection_name(
        self, context: OutputContext | InputContext, metadata: Optional[Mapping[str, Any]] = None
    ) -> str:
        """``collection`` metadata, else the prefix + the asset key parts joined by the separator."""
        if metadata is None:
            metadata = context.definition_metadata or {}
        explicit = plain(metadata.get("collection"))
        if explicit:
            return str(explicit)
        if context.has_asset_key:
            return self.collection_prefix + self.key_separator.join(context.asset_key.path)
        output = context if isinstance(context, OutputContext) else context.upstream_output
        if output is None:
            raise QdrantConfigError(
                "Cannot name the collection of an op input with no upstream output: "
                "set 'collection' in the output metadata"
            )
        return f"{self.collection_prefix}{output.step_key}{self.key_separator}{output.name}"

    def _connection(self) -> QdrantResource:
        return self.qdrant if self.qdrant is not None else QdrantResource()

    def _write_options(
        self, collection: str, metadata: Mapping[str, Any], *, partitioned: bool = False
    ) -> WriteOptions:
        """The IO manager's write config with the asset's metadata over it, validated once.

        A partitioned asset's points also carry the partition field, so a ``payload_fields`` list gets it.
        """
        options = asset_write_options(
            self.write.to_options(), metadata, partition_field=self.partition_field if partitioned else None
        )
        return self._connection().write_options(collection, create_collection=True, **options)

    def _read_options(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The IO manager's read config with the input's metadata over it (``asset_options.py``)."""
        return input_read_options(self.read.to_options(), metadata)

    def _spark_session(self) -> Any:
        from pyspark.sql import SparkSession

        from dagster_qdrant.spark.java import java_required

        if self.pyspark is not None:
            spark = self.pyspark.spark_session
        else:
            with java_required():
                spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        return register_data_source(spark)


class QdrantPySparkIOManager(QdrantIOManager):
    """``QdrantIOManager`` whose unannotated inputs load as ``pyspark.sql.DataFrame``.

    It stores and loads pandas and pyarrow frames too, by annotation; its name is kept for the code that
    already uses it.
    """

    def default_load_type(self) -> Optional[type]:
        from pyspark.sql import DataFrame

        return DataFrame


def _node_name(context: Union[OutputContext, InputContext]) -> str:
    return context.asset_key.to_user_string() if context.has_asset_key else context.name


def _run_id_block(context: OutputContext) -> str:
    try:
        run_id = context.run_id
    except Exception:  # an output context built in a test without a run raises on access
        return ""
    return (run_id or "").split("-")[0]
