"""QdrantPySparkIOManager: Spark DataFrames of an asset into a Qdrant collection and back.

Writes and reads go through the ``qdrant`` Spark data source, so points move in parallel from and to the
Spark tasks; the driver only does the few collection-level requests (aliases, deletes, counts).

- Unpartitioned assets replace the whole collection with no moment where readers see it half-written:
  the DataFrame goes into a fresh version collection (``collections.new_version_name``: the time, the run
  and this process), then one atomic alias update moves the alias ``{name}`` to it, and the previous
  version is dropped. A failed write drops the fresh collection and leaves the alias on the previous one.
  Every materialization ends with a sweep (``collections.sweep``): versions another run displaced and
  versions of dead runs are dropped, versions live runs are still writing are kept, so after any mix of
  concurrent, failed and killed runs one version per asset remains. Two concurrent runs: the last swap
  wins; each run's metadata names the version it served.
- Partitioned assets (static, time-window, multi-dimensional) share one plain collection ``{name}``; each
  point carries its partition key in a payload field (``_partition``), so a partition is replaced by a
  delete-by-filter then an upsert, and reads ask only for the partitions they need.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from dagster_qdrant.errors import QdrantConfigError, QdrantError
from dagster_qdrant.options import QDRANT_FORMAT, ReadOptions
from dagster_qdrant.dagster_io.output_metadata import speed_metadata, table_metadata
from dagster_qdrant.dagster_io.resources import QdrantReadConfig, QdrantResource, QdrantWriteConfig

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
        write_options = self._write_options(context.definition_metadata or {})
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
        write_options: dict[str, Any],
    ) -> dict[str, Any]:
        """Write a fresh version, move the alias to it in one request, drop the old version, sweep."""
        http = connection.http()
        version = lifecycle.new_version_name(
            alias, run=_run_id_block(context), owner=lifecycle.Owner.this_process()
        )
        context.log.info(f"Writing {alias!r} into the new collection {version!r}")
        try:
            with lifecycle.Heartbeat(http, version):
                seconds = self._write_frame(context, connection, version, frame, write_options)
            if not http.collection_exists(version):  # an empty DataFrame writes no point, creates nothing
                _create_empty(context, http, version, lifecycle.alias_target(http, alias))
            # Counted before the swap: once served, a later run may replace and drop it at any moment.
            points = http.count(version, exact=True)
            info = http.collection_info(version)
        except BaseException:
            _drop_quietly(context, http, version)
            raise
        previous = self._move_alias(context, http, alias, version)
        if previous is not None and previous != version and lifecycle.drop_quietly(http, previous):
            context.log.info(f"Dropped the previous version {previous!r}")
        for name in lifecycle.sweep(http, alias, stale_after=self.stale_after, keep=[version]):
            context.log.info(f"Dropped {name!r}, a version no run will serve (displaced, or of a dead run)")
        serving = lifecycle.alias_target(http, alias)
        if serving != version:
            context.log.warning(
                f"A concurrent materialization of {alias!r} swapped in {serving!r} after this run served {version!r}"
            )
            lifecycle.sweep(http, alias, stale_after=self.stale_after)
        return {
            "dagster/row_count": points,
            "collection": version,
            "alias": alias,
            **_vector_metadata(info),
            **speed_metadata(points, seconds),
        }

    def _move_alias(self, context: OutputContext, http: Any, alias: str, version: str) -> Optional[str]:
        """Point the alias at the version (atomically); returns what it served before."""
        if lifecycle.alias_target(http, alias) is not None or alias not in http.list_collections():
            return lifecycle.swap_alias(http, alias, version)
        # A plain collection holds the name (made by hand, by another tool, or by this asset when it was
        # partitioned). An alias cannot share a collection's name, so it goes first: this one switch has a
        # moment with no collection under the name; every later one is atomic.
        context.log.warning(
            f"A plain collection {alias!r} holds the asset's name: dropping it so that the alias "
            f"{alias!r} can point to {version!r}; from now on every materialization swaps atomically"
        )
        lifecycle.drop_quietly(http, alias)
        return lifecycle.swap_alias(http, alias, version)

    def _write_partition(
        self,
        context: OutputContext,
        connection: QdrantResource,
        collection: str,
        frame: Any,
        write_options: dict[str, Any],
    ) -> dict[str, Any]:
        """Replace one partition: delete its points by filter, then upsert the new ones."""
        partition_key = _single_partition_key(context)
        if self.partition_field in frame.columns:
            raise QdrantConfigError(
                f"The DataFrame of {context.asset_key.to_user_string()} has a column "
                f"{self.partition_field!r}, the payload field that holds partition keys: rename the "
                "column or set the IO manager's partition_field to another name"
            )
        from pyspark.sql import functions

        tagged = frame.withColumn(self.partition_field, functions.lit(partition_key))
        if write_options.get("payload_fields") is not None:
            write_options["payload_fields"] = [*write_options["payload_fields"], self.partition_field]
        http = connection.http()
        partition_filter = _partition_filter(self.partition_field, [partition_key])
        existed = http.collection_exists(collection)
        if existed:
            http.delete_points(collection, {"filter": partition_filter}, wait=True)
        context.log.info(f"Writing partition {partition_key!r} into {collection!r}")
        seconds = self._write_frame(
            context, connection, collection, tagged, write_options, count_filter=partition_filter
        )
        if not existed and not http.collection_exists(collection):
            context.log.warning(f"Partition {partition_key!r} is empty and {collection!r} does not exist yet")
            return {"dagster/row_count": 0, "dagster/partition_row_count": 0, "collection": collection}
        if not existed:
            _index_partition_field(context, http, collection, self.partition_field)
        partition_points = http.count(collection, filter=partition_filter, exact=True)
        return {
            "dagster/row_count": http.count(collection, exact=True),
            "dagster/partition_row_count": partition_points,
            "collection": collection,
            "partition_field": self.partition_field,
            **_vector_metadata(http.collection_info(collection)),
            **speed_metadata(partition_points, seconds),
        }

    def _write_frame(
        self,
        context: OutputContext,
        connection: QdrantResource,
        collection: str,
        frame: Any,
        write_options: dict[str, Any],
        count_filter: Optional[dict[str, Any]] = None,
    ) -> float:
        """Run the Spark write (creating the collection if needed); returns the seconds it took."""
        options = connection.spark_write_options(collection, create_collection=True, **write_options)
        started = time.monotonic()
        with _progress_logger(context, connection, collection, count_filter, self.progress_interval):
            frame.write.format(QDRANT_FORMAT).options(**options).mode("append").save()
        return time.monotonic() - started

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

    def _input_source(self, context: InputContext) -> tuple[str, Optional[list[str]], dict[str, Any]]:
        """The collection an input reads, the columns it asks for, and the upstream asset's writer options."""
        upstream = context.upstream_output
        upstream_metadata = (upstream.definition_metadata if upstream is not None else None) or {}
        columns = _plain((context.definition_metadata or {}).get("columns"))
        return self.collection_name(context, upstream_metadata), columns, self._write_options(upstream_metadata)

    def _input_options(
        self, context: InputContext, name: str, columns: Optional[list[str]], write_options: dict[str, Any]
    ) -> dict[str, str]:
        read_options = self._read_options(context.definition_metadata or {})
        if context.has_asset_partitions:
            partition_filter = _partition_filter(self.partition_field, context.asset_partition_keys)
            read_options["filter"] = _all_of(read_options.get("filter"), partition_filter)
        if columns is not None:
            read_options.update(_projection(columns, write_options))
        return self._connection().spark_read_options(name, **read_options)

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

    def _write_options(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        options = self.write.to_options()
        for key in options:
            if key in metadata:
                options[key] = _plain(metadata[key])
        return options

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

        if self.pyspark is not None:
            spark = self.pyspark.spark_session
        else:
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


def _drop_quietly(context: OutputContext, http: Any, collection: str) -> None:
    """After a failed write: drop the half-written version; the original error is what matters."""
    try:
        if http.collection_exists(collection):
            http.delete_collection(collection)
    except QdrantError as error:
        lifecycle.mark_settled(collection)  # the next materialization's sweep drops it
        context.log.warning(f"Could not drop the unfinished collection {collection!r}: {error}")


def _create_empty(context: OutputContext, http: Any, version: str, previous: Optional[str]) -> None:
    """An empty version for an empty DataFrame, configured like the previous one when there is one."""
    params = (((http.collection_info(previous) if previous else None) or {}).get("config") or {}).get("params") or {}
    body = {"vectors": params.get("vectors") or {}}
    if params.get("sparse_vectors"):
        body["sparse_vectors"] = params["sparse_vectors"]
    context.log.warning(f"The DataFrame is empty: {version!r} is created with no points")
    http.create_collection(version, body)


def _single_partition_key(context: OutputContext) -> str:
    keys = context.asset_partition_keys
    if len(keys) != 1:
        raise QdrantConfigError(
            f"{context.asset_key.to_user_string()}: one run wrote {len(keys)} partitions at once; the "
            "Qdrant IO manager stores one partition per run, so its points can carry their key: "
            "use a backfill policy of one partition per run (BackfillPolicy.multi_run(1))"
        )
    return str(keys[0])


def _partition_filter(field: str, keys: Sequence[str]) -> dict[str, Any]:
    keys = sorted(str(key) for key in keys)  # Dagster may hand them in any order: the same request each time
    if len(keys) == 1:
        return {"must": [{"key": field, "match": {"value": keys[0]}}]}
    return {"must": [{"key": field, "match": {"any": keys}}]}


def _all_of(*filters: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """A filter that every given filter must pass (Qdrant nests filters as conditions)."""
    present = [dict(item) for item in filters if item]
    if len(present) == 1:
        return present[0]
    return {"must": present}


def _index_partition_field(context: OutputContext, http: Any, collection: str, field: str) -> None:
    """A keyword index makes partition deletes and reads fast (and is required by strict-mode servers)."""
    try:
        http.create_payload_index(collection, field, "keyword")
    except QdrantError as error:
        context.log.warning(f"No payload index on {field!r} in {collection!r}: {error}")


def _projection(columns: Sequence[str], write_options: Mapping[str, Any]) -> dict[str, Any]:
    """Ask the server only for the payload keys and vectors among the columns asked for."""
    vector_columns = set(write_options.get("vector_fields") or {})
    if write_options.get("vector_field") and not vector_columns:
        vector_columns = {write_options["vector_field"]}
    vector_columns |= set(write_options.get("sparse_vector_fields") or {})
    payload = [c for c in columns if c not in vector_columns and c != write_options.get("id_field")]
    return {
        "with_payload": payload if payload else False,
        "with_vectors": any(column in vector_columns for column in columns),
    }


def _restore_column_names(frame: Any, write_options: Mapping[str, Any]) -> Any:
    """The reader names columns after Qdrant (``id``, ``vector``, named vectors by their names): give back
    the column names the asset wrote them from."""
    renames = {"id": write_options.get("id_field")}
    named = {**(write_options.get("vector_fields") or {}), **(write_options.get("sparse_vector_fields") or {})}
    if not write_options.get("vector_fields"):
        renames["vector"] = write_options.get("vector_field")
    renames.update({vector_name: column for column, vector_name in named.items()})
    for reader_name, asset_name in renames.items():
        if asset_name and asset_name != reader_name and reader_name in frame.columns:
            if asset_name not in frame.columns:
                frame = frame.withColumnRenamed(reader_name, asset_name)
    return frame


def _vector_metadata(info: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Vector size and distance from the collection's config: one value, or one per named vector."""
    vectors = (((info or {}).get("config") or {}).get("params") or {}).get("vectors") or {}
    if "size" in vectors:
        return {"vector_size": vectors["size"], "distance": vectors.get("distance")}
    if vectors:
        return {
            "vector_size": MetadataValue.json({name: params.get("size") for name, params in vectors.items()}),
            "distance": MetadataValue.json(
                {name: params.get("distance") for name, params in vectors.items()}
            ),
        }
    return {}


@contextmanager
def _progress_logger(
    context: OutputContext,
    connection: QdrantResource,
    collection: str,
    count_filter: Optional[dict[str, Any]],
    interval: float,
) -> Iterator[None]:
    """Log the points count every ``interval`` seconds while a long write runs."""
    stop = threading.Event()

    def report() -> None:
        http = connection.http()
        started = time.monotonic()
        while not stop.wait(interval):
            try:
                if not http.collection_exists(collection):
                    continue
                points = http.count(collection, filter=count_filter, exact=False)
            except QdrantError:
                continue
            elapsed = time.monotonic() - started
            context.log.info(f"{points} points in {collection!r} after {elapsed:.0f}s")

    thread = threading.Thread(target=report, name="qdrant-write-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)
