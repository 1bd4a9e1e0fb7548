"""QdrantPySparkIOManager: Spark DataFrames of an asset into a Qdrant collection and back.

Dagster glue: the collection lifecycle is ``collections.QdrantCollections``' and the points move through
the ``qdrant`` Spark data source, in parallel from and to the Spark tasks; the driver only does the few
collection-level requests (aliases, deletes, counts).

- Unpartitioned assets replace the whole collection with no moment where readers see it half-written
  (``replace_collection``: a fresh version, then one atomic alias update); each run's metadata names the
  version it served.
- Partitioned assets (static, time-window, multi-dimensional) share one plain collection ``{name}``; each
  point carries its partition key in a payload field (``_partition``), so a partition is replaced by a
  delete-by-filter then an upsert (``replace_partition``), and reads ask only for the partitions they need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
)
from dagster_pyspark import PySparkResource
from pydantic import Field

from dagster_qdrant import collections as lifecycle
from dagster_qdrant.spark_fuse_compat import unknown_option_error
from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.filters import all_of
from dagster_qdrant.option_parsers import optional_columns
from dagster_qdrant.options import QDRANT_FORMAT, ReadOptions, WriteOptions
from dagster_qdrant.spark.schema import VECTOR_COLUMN
from dagster_qdrant.dagster_io.output_metadata import speed_metadata, table_metadata
from dagster_qdrant.dagster_io.resources import QdrantReadConfig, QdrantResource, QdrantWriteConfig
from dagster_qdrant.vector_config import VectorConfig

VERSION_SEPARATOR = lifecycle.VERSION_SEPARATOR
"""Between a collection's name and its version: ``documents__20240503120000a1b2_r1a2b3c4d_h...p...``."""


class QdrantPySparkIOManager(ConfigurableIOManager):
    """Stores PySpark DataFrames in Qdrant collections named after the asset key.

    Per asset (definition metadata): ``collection`` (the name), any writer option (``vector_field``,
    ``id_field``, ``payload_fields``, ``distance``, ``batch_size``, ...). Per input (``AssetIn`` metadata):
    ``columns`` (the columns to return), ``filter`` (a Qdrant filter), ``with_vectors`` and any other reader
    option but the collection and the server; an unknown key is refused.
    """

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
        default=lifecycle.STALE_AFTER_SECONDS,
        description=(
            "Seconds without a sign of life after which an unfinished version written from another host is "
            "treated as abandoned and dropped by the next materialization (versions written on this host are "
            "dropped as soon as their process is gone)."
        ),
    )

    # ------------------------------------------------------------------ handle_output

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        _require_dataframe(obj, context)
        connection = self._connection()
        connection.http().check_answers()  # seconds, before the Spark write, if the server never answers
        _registered(obj.sparkSession)
        name = self.collection_name(context)
        write_options = self._write_options(
            name, context.definition_metadata or {}, partitioned=context.has_asset_partitions
        )
        if context.has_asset_partitions:
            metadata = self._write_partition(context, connection, name, obj, write_options)
        else:
            metadata = self._replace_collection(context, connection, name, obj, write_options)
        metadata.update(table_metadata(name, obj, context.definition_metadata, context.log))
        metadata["dagster/uri"] = MetadataValue.url(connection.collection_url(name))
        context.add_output_metadata(metadata)

    def _replace_collection(
        self,
        context: OutputContext,
        connection: QdrantResource,
        alias: str,
        frame: Any,
        write_options: WriteOptions,
    ) -> dict[str, Any]:
        """A fresh version behind the alias (``QdrantCollections.replace_collection``)."""
        replaced = self._collections(context, connection).replace_collection(
            alias,
            lambda version: self._write_frame(version, frame, write_options),
            run=_run_id_block(context),
        )
        return {
            "dagster/row_count": replaced.points,
            "collection": replaced.version,
            "alias": alias,
            **_vector_metadata(replaced.vectors),
            **speed_metadata(replaced.points, replaced.seconds),
        }

    def _write_partition(
        self,
        context: OutputContext,
        connection: QdrantResource,
        collection: str,
        frame: Any,
        write_options: WriteOptions,
    ) -> dict[str, Any]:
        """Replace one partition (``QdrantCollections.replace_partition``): its points carry its key."""
        partition_key = _single_partition_key(context)
        if self.partition_field in frame.columns:
            raise QdrantConfigError(
                f"The DataFrame of {context.asset_key.to_user_string()} has a column "
                f"{self.partition_field!r}, the payload field that holds partition keys: rename the "
                "column or set the IO manager's partition_field to another name"
            )
        from pyspark.sql import functions

        tagged = frame.withColumn(self.partition_field, functions.lit(partition_key))
        replaced = self._collections(context, connection).replace_partition(
            collection,
            self.partition_field,
            partition_key,
            lambda target: self._write_frame(target, tagged, write_options),
        )
        if not replaced.exists:
            return {"dagster/row_count": 0, "dagster/partition_row_count": 0, "collection": collection}
        return {
            "dagster/row_count": replaced.points,
            "dagster/partition_row_count": replaced.partition_points,
            "collection": collection,
            "partition_field": self.partition_field,
            **_vector_metadata(replaced.vectors),
            **speed_metadata(replaced.partition_points, replaced.seconds),
        }

    def _collections(self, context: OutputContext, connection: QdrantResource) -> lifecycle.QdrantCollections:
        return lifecycle.QdrantCollections(
            connection.http(), log=context.log, stale_after=self.stale_after, progress_interval=self.progress_interval
        )

    def _write_frame(
        self, collection: str, frame: Any, write_options: WriteOptions
    ) -> None:
        """Run the Spark write into ``collection`` (created if needed)."""
        frame.write.format(QDRANT_FORMAT).options(**write_options.spark_options(collection)).mode("append").save()

    # ------------------------------------------------------------------ load_input

    def load_input(self, context: InputContext) -> Any:
        name, columns, write_options = self._input_source(context)
        options = self._input_options(context, name, columns, write_options)
        frame = self._spark_session().read.format(QDRANT_FORMAT).options(**options).load()
        frame = _restore_column_names(frame, write_options)
        if columns is not None:
            missing = [column for column in columns if column not in frame.columns]
            if missing:
                raise QdrantConfigError(
                    f"Column(s) {missing!r} asked for in the input metadata of "
                    f"{context.asset_key.to_user_string()} are not in collection {name!r}; "
                    f"it has {frame.columns!r}"
                )
            return frame.select(*columns)
        if self.partition_field in frame.columns:
            frame = frame.drop(self.partition_field)
        return frame

    def input_read_options(self, context: InputContext) -> dict[str, str]:
        """The data source options ``load_input`` reads with.

        The asked partitions (a filter on the partition field) and columns (a payload and vector selection)
        are part of them, so Qdrant sends only those points and fields.
        """
        return self._input_options(context, *self._input_source(context))

    def _input_source(self, context: InputContext) -> tuple[str, Optional[list[str]], WriteOptions]:
        """The collection an input reads, the columns it asks for, and the upstream asset's writer options
        (which name the id and vector columns the read gives back)."""
        upstream = context.upstream_output
        upstream_metadata = (upstream.definition_metadata if upstream is not None else None) or {}
        columns = _plain((context.definition_metadata or {}).get("columns"))
        name = self.collection_name(context, upstream_metadata)
        return name, columns, self._write_options(name, upstream_metadata)

    def _input_options(
        self, context: InputContext, name: str, columns: Optional[list[str]], write_options: WriteOptions
    ) -> dict[str, str]:
        read_options = self._read_options(context.definition_metadata or {})
        if context.has_asset_partitions:
            partition_filter = lifecycle.partition_filter(self.partition_field, context.asset_partition_keys)
            read_options["filter"] = all_of(read_options.get("filter"), partition_filter)
        if columns is not None:
            read_options.update(_projection(columns, write_options))
        return self._connection().read_options(name, **read_options).spark_options()

    # ------------------------------------------------------------------ helpers

    def collection_name(
        self, context: OutputContext | InputContext, metadata: Optional[Mapping[str, Any]] = None
    ) -> str:
        """``collection`` metadata, else the prefix + the asset key parts joined by the separator."""
        if metadata is None:
            metadata = context.definition_metadata or {}
        explicit = _plain(metadata.get("collection"))
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
        options = self.write.to_options()
        for key in options:
            if key in metadata:
                options[key] = _plain(metadata[key])
        payload_fields = options.get("payload_fields")
        if partitioned and payload_fields is not None:
            options["payload_fields"] = [*optional_columns("payload_fields", payload_fields), self.partition_field]
        return self._connection().write_options(collection, create_collection=True, **options)

    def _read_options(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The IO manager's read config with the input's metadata over it: every reader option is honoured.

        The collection and the server (``endpoint``, ``api_key``) are the IO manager's; any other key that
        is neither a reader option nor ``columns`` is refused with its nearest known key, never dropped.
        """
        options = self.read.to_options()
        owned = sorted(key for key in metadata if key in ("collection", "endpoint", "api_key"))
        if owned:
            raise QdrantConfigError(
                f"Input metadata cannot set {owned!r}: the collection is the upstream asset's "
                "('collection' in its definition metadata) and the server is the IO manager's QdrantResource"
            )
        unknown = [key for key in metadata if key not in _INPUT_METADATA_KEYS]
        if unknown:
            raise unknown_option_error(unknown, _INPUT_METADATA_KEYS, "the input metadata (AssetIn metadata)")
        for key, value in metadata.items():
            if key != "columns":
                options[key] = _plain(value)
        return options

    def _spark_session(self) -> Any:
        from pyspark.sql import SparkSession

        from dagster_qdrant.spark.java import java_required

        if self.pyspark is not None:
            spark = self.pyspark.spark_session
        else:
            with java_required():
                spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        return _registered(spark)


_INPUT_METADATA_KEYS = frozenset(
    {"columns", *ReadOptions.option_names()} - {"collection", "endpoint", "api_key"}
)


def _registered(spark: Any) -> Any:
    """The session with the ``qdrant`` format registered (idempotent; needed once per session)."""
    from dagster_qdrant.spark.datasource import register_qdrant_data_source

    register_qdrant_data_source(spark)
    return spark


def _require_dataframe(obj: Any, context: OutputContext) -> None:
    from pyspark.sql import DataFrame

    if not isinstance(obj, DataFrame):
        raise QdrantConfigError(
            f"QdrantPySparkIOManager stores pyspark.sql.DataFrame outputs, but "
            f"{context.asset_key.to_user_string() if context.has_asset_key else context.name} returned "
            f"{type(obj).__name__}: return a Spark DataFrame, or give this asset another io_manager_key"
        )


def _plain(value: Any) -> Any:
    """Definition metadata may arrive wrapped in MetadataValue objects: unwrap to the raw value."""
    if isinstance(value, MetadataValue):
        return value.value
    return value


def _run_id_block(context: OutputContext) -> str:
    try:
        run_id = context.run_id
    except Exception:  # an output context built in a test without a run raises on access
        return ""
    return (run_id or "").split("-")[0]


def _single_partition_key(context: OutputContext) -> str:
    keys = context.asset_partition_keys
    if len(keys) != 1:
        raise QdrantConfigError(
            f"{context.asset_key.to_user_string()}: one run wrote {len(keys)} partitions at once; the "
            "Qdrant IO manager stores one partition per run, so its points can carry their key: "
            "use a backfill policy of one partition per run (BackfillPolicy.multi_run(1))"
        )
    return str(keys[0])


def _projection(columns: Sequence[str], write_options: WriteOptions) -> dict[str, Any]:
    """Ask the server only for the payload keys and vectors among the columns asked for."""
    vector_columns = set(write_options.dense_vector_columns()) | set(write_options.sparse_vector_fields)
    payload = [c for c in columns if c not in write_options.excluded_from_payload()]
    return {
        "with_payload": payload if payload else False,
        "with_vectors": any(column in vector_columns for column in columns),
    }


def _restore_column_names(frame: Any, write_options: WriteOptions) -> Any:
    """The reader names columns after Qdrant (``id``, ``vector``, named vectors by their names): give back
    the column names the asset wrote them from."""
    renames: dict[str, Optional[str]] = {"id": write_options.id_field}
    named = {**write_options.dense_vector_columns(), **write_options.sparse_vector_fields}
    renames.update({vector_name or VECTOR_COLUMN: column for column, vector_name in named.items()})
    for reader_name, asset_name in renames.items():
        if asset_name and asset_name != reader_name and reader_name in frame.columns:
            if asset_name not in frame.columns:
                frame = frame.withColumnRenamed(reader_name, asset_name)
    return frame


def _vector_metadata(vectors: Optional[VectorConfig]) -> dict[str, Any]:
    """Vector size and distance from the collection's config: one value, or one per named vector."""
    if vectors is None or not vectors.dense:
        return {}
    if vectors.unnamed:
        return {"vector_size": vectors.dense[0].size, "distance": vectors.dense[0].distance}
    return {
        "vector_size": MetadataValue.json({vector.name: vector.size for vector in vectors.dense}),
        "distance": MetadataValue.json({vector.name: vector.distance for vector in vectors.dense}),
    }


